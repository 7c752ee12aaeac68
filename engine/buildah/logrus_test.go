package buildah

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/rapidfort/kimia/engine"
)

func TestLogrusGoesToTheLoggerWithoutSecrets(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(file, []byte("file-secret-value\n"), 0o600)
	t.Setenv("KIMIA_TEST_SECRET", `env "secret" value`)
	req := &engine.Request{Secrets: []engine.Secret{{ID: "a", Src: file}, {ID: "b", Env: "KIMIA_TEST_SECRET"}}}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	defer func() {
		logrus.StandardLogger().ReplaceHooks(make(logrus.LevelHooks))
		logrus.SetOutput(os.Stderr)
		logrus.SetLevel(logrus.InfoLevel)
	}()
	configureLogrus(req, log)
	logrus.Debugf("config = %s", `{"env":["B=env \"secret\" value"],"file":"file-secret-value"}`)
	logrus.WithField("cmd", []string{"sh", `B=env "secret" value`}).Warnf("Running %#v", []string{`env "secret" value`})
	out := buf.String()
	for _, secret := range []string{"file-secret-value", `secret" value`, `secret\" value`} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q:\n%s", secret, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d records, want 2:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("not a JSON record: %s", l)
		}
		if rec["component"] != "buildah" || !strings.Contains(l, "[secret]") {
			t.Errorf("record %s: want component buildah and the secret replaced", l)
		}
	}
}
