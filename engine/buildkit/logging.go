package buildkit

import (
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/sirupsen/logrus"
)

var routeOnce sync.Once

// routeLibraryLogs sends what BuildKit's client libraries log through
// logrus (content-store warnings and the like) to kimia's log at debug
// level: libraries are silent, the binary decides.
func routeLibraryLogs(log *slog.Logger) {
	routeOnce.Do(func() {
		logrus.SetOutput(io.Discard)
		logrus.SetLevel(logrus.DebugLevel)
		logrus.AddHook(slogHook{log})
	})
}

type slogHook struct{ log *slog.Logger }

func (h slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	if !h.log.Enabled(context.Background(), slog.LevelDebug) {
		return nil
	}
	args := make([]any, 0, 2*len(e.Data))
	for k, v := range e.Data {
		args = append(args, k, v)
	}
	h.log.Debug("buildkit client: "+e.Message, args...)
	return nil
}
