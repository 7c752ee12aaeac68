package buildah

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/rapidfort/kimia/engine"
)

// Buildah logs with logrus. kimia-bud sends those records to the build's
// logger, so that --log-format=json holds for them too, with the values of
// the build's secrets replaced: at debug level Buildah prints the RUN's
// runtime spec, whose environment holds RUN --mount=type=secret,env=...
// values.

// configureLogrus sends Buildah's own log (logrus) to log, as verbose as
// log, with req's secret values redacted.
func configureLogrus(req *engine.Request, log *slog.Logger) {
	ctx := context.Background()
	switch {
	case log.Enabled(ctx, slog.LevelDebug-4):
		logrus.SetLevel(logrus.TraceLevel)
	case log.Enabled(ctx, slog.LevelDebug):
		logrus.SetLevel(logrus.DebugLevel)
	case log.Enabled(ctx, slog.LevelInfo):
		logrus.SetLevel(logrus.WarnLevel)
	default:
		logrus.SetLevel(logrus.ErrorLevel)
	}
	logrus.SetOutput(io.Discard)
	hooks := make(logrus.LevelHooks)
	hooks.Add(&slogHook{log: log, redact: redactor(req)})
	logrus.StandardLogger().ReplaceHooks(hooks)
}

// redactor replaces the values of req's secrets (from files and from
// the environment) with "[secret]".
func redactor(req *engine.Request) *strings.Replacer {
	var values []string
	for _, s := range req.Secrets {
		var v string
		switch {
		case s.Env != "":
			v = os.Getenv(s.Env)
		case s.Src != "":
			if fi, err := os.Stat(s.Src); err == nil && fi.Mode().IsRegular() && fi.Size() <= 1<<20 {
				b, _ := os.ReadFile(s.Src)
				v = string(b)
			}
		}
		// As written, trimmed (a file's final newline), and escaped as Go
		// and JSON escape it inside quotes (%#v, an encoded spec).
		quoted := strconv.Quote(v)
		for _, x := range []string{v, strings.TrimSpace(v), quoted[1 : len(quoted)-1]} {
			if x != "" && !slices.Contains(values, x) {
				values = append(values, x)
			}
		}
	}
	// Longest first, so that a value inside another is not replaced
	// first and the longer one missed.
	slices.SortFunc(values, func(a, b string) int { return len(b) - len(a) })
	var pairs []string
	for _, v := range values {
		pairs = append(pairs, v, "[secret]")
	}
	return strings.NewReplacer(pairs...)
}

type slogHook struct {
	log    *slog.Logger
	redact *strings.Replacer
}

func (h *slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	case e.Level == logrus.InfoLevel:
		level = slog.LevelInfo
	case e.Level == logrus.TraceLevel:
		level = slog.LevelDebug - 4
	}
	attrs := []any{"component", "buildah"}
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		attrs = append(attrs, k, h.redact.Replace(strings.TrimSpace(toString(e.Data[k]))))
	}
	h.log.Log(context.Background(), level, h.redact.Replace(e.Message), attrs...)
	return nil
}

func toString(v any) string {
	switch v := v.(type) {
	case error:
		return v.Error()
	case string:
		return v
	}
	return fmt.Sprint(v)
}

// capHelperLogLevel keeps Buildah's helper processes (the chroot runtime,
// the copier), which log straight to stderr at the level the parent hands
// them in LOGLEVEL, at info at most: at debug they print the runtime spec,
// secret values included, and nothing would redact it there.
func capHelperLogLevel() {
	if v, err := strconv.Atoi(os.Getenv("LOGLEVEL")); err == nil && logrus.Level(v) > logrus.InfoLevel {
		os.Setenv("LOGLEVEL", strconv.Itoa(int(logrus.InfoLevel)))
	}
}
