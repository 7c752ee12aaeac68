package flags

import (
	"io"
	"log/slog"
	"strings"

	"github.com/rapidfort/kimia/engine"
)

// levelTrace is below slog's debug level, for Kaniko's -v=trace.
const levelTrace = slog.LevelDebug - 4

// newLogger builds the process logger from --verbosity, --log-format and
// --log-timestamp. Logs go to stderr; stdout carries results only. Request
// fields in messages and string values are shown as names (their flags).
func newLogger(w io.Writer, verbosity, format string, timestamps bool, names map[engine.Field]string) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(verbosity) {
	case "trace":
		level = levelTrace
	case "debug":
		level = slog.LevelDebug
	case "info", "":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error", "fatal", "panic":
		level = slog.LevelError
	default:
		return nil, usagef("verbosity", "%q is not trace, debug, info, warn or error", verbosity)
	}
	opts := &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindString {
				if v := a.Value.String(); strings.Contains(v, "‹") {
					a.Value = slog.StringValue(engine.NameFields(v, names))
				}
			}
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				if !timestamps {
					return slog.Attr{}
				}
			case slog.LevelKey:
				if l, ok := a.Value.Any().(slog.Level); ok && l <= levelTrace {
					return slog.String(slog.LevelKey, "TRACE")
				}
			}
			return a
		},
	}
	switch strings.ToLower(format) {
	case "text", "color", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, usagef("log-format", "%q is not text, color or json", format)
	}
}
