package buildah

import (
	"bytes"
	"strings"
	"testing"

	"go.podman.io/buildah/define"

	"github.com/rapidfort/kimia/engine"
)

func TestProgressCountsStepsAndCacheHits(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&engine.Request{Progress: &out, ProgressMode: engine.ProgressPlain})
	p.log("FROM %s", "busybox")
	p.log("%s", "RUN echo hi")
	p.Write([]byte("--> Using cache 0123abc\n--> 0123"))
	p.Write([]byte("abc\nhi\n"))
	p.log("%s", "COPY a /a")
	p.log("COMMIT %s", "x")
	s := p.stats()
	if s.Steps != 2 || s.Cached != 1 {
		t.Errorf("stats = %+v, want 2 steps, 1 cached", s)
	}
	for _, want := range []string{"#1 FROM busybox", "#1 RUN echo hi", "CACHED 0123abc", "--> 0123abc", "hi", "#1 COPY a /a"} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("progress lacks %q:\n%s", want, out.String())
		}
	}
}

func TestProgressQuietStillCounts(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&engine.Request{Progress: &out, ProgressMode: engine.ProgressQuiet})
	p.log("RUN x")
	p.Write([]byte("--> Using cache 1\n"))
	if out.Len() != 0 {
		t.Errorf("quiet progress printed %q", out.String())
	}
	if s := p.stats(); s.Cached != 1 || s.Steps != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestProgressPlatformPrefix(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&engine.Request{Progress: &out})
	p.setPlatform("[linux/arm64] ")
	p.log("RUN uname -m")
	passthrough{p}.Write([]byte("Copying blob\nCopying config\n"))
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(line, "[linux/arm64] ") {
			t.Errorf("line without the platform: %q", line)
		}
	}
}

func TestChooseIsolation(t *testing.T) {
	tests := []struct {
		name                string
		opt, env            string
		container, rootless bool
		want                define.Isolation
	}{
		{"root on a machine uses runc", "", "", false, false, define.IsolationOCI},
		{"non-root on a machine uses rootless runc", "", "", false, true, define.IsolationOCIRootless},
		{"inside a container uses chroot", "", "", true, true, define.IsolationChroot},
		{"BUILDAH_ISOLATION overrides", "", "oci", true, false, define.IsolationOCI},
		{"oci when rootless means rootless runc", "", "oci", false, true, define.IsolationOCIRootless},
		{"--buildah-opt wins over the environment", "chroot", "oci", false, false, define.IsolationChroot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseIsolation(tc.opt, tc.env, tc.container, tc.rootless)
			if err != nil {
				t.Fatal(err)
			}
			if got.Isolation != tc.want {
				t.Errorf("isolation = %v (%s), want %v", got.Isolation, got.Reason, tc.want)
			}
		})
	}
	if _, err := chooseIsolation("", "vm", false, false); err == nil || !strings.Contains(err.Error(), "BUILDAH_ISOLATION") {
		t.Errorf("a bad BUILDAH_ISOLATION: %v", err)
	}
}

func TestCheckMapping(t *testing.T) {
	if err := checkMapping(idMapping{Rootless: true, UIDs: 65537, GIDs: 65537}, false); err != nil {
		t.Errorf("a full mapping is refused: %v", err)
	}
	if err := checkMapping(idMapping{Rootless: false, UIDs: 1, GIDs: 1}, false); err != nil {
		t.Errorf("root is refused: %v", err)
	}
	err := checkMapping(idMapping{Rootless: true, UIDs: 1, GIDs: 1}, false)
	if err == nil || engine.KindOf(err) != engine.KindEnvironment {
		t.Fatalf("a single-id mapping is accepted silently: %v", err)
	}
	for _, want := range []string{"setcap cap_setuid+ep", "/etc/subuid", "allow-single-id-mapping"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if err := checkMapping(idMapping{Rootless: true, UIDs: 1, GIDs: 1}, true); err != nil {
		t.Errorf("allow-single-id-mapping is ignored: %v", err)
	}
}

func TestNoEngineWork(t *testing.T) {
	for args, want := range map[string]bool{"version": true, "--help": true, "": true, "--context=.": false, "-f": false} {
		var a []string
		if args != "" {
			a = []string{args}
		}
		if got := noEngineWork(a); got != want {
			t.Errorf("noEngineWork(%q) = %v", args, got)
		}
	}
}
