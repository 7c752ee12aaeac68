package buildah

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/buildah/define"
)

func TestRewriteRunsShebangHeredocsFromAFile(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	src := "FROM busybox\n" +
		"RUN <<EOF\n#!/bin/awk -f\nBEGIN { print \"hi\" }\nEOF\n" +
		"RUN <<-'SCRIPT'\n\t#!/bin/sh\n\techo $0\nSCRIPT\n" +
		"RUN <<EOF\necho plain\nEOF\n" +
		"RUN cat <<EOF > /x\n#!/not/a/script\nEOF\n" +
		"COPY a /a\n"
	os.WriteFile(df, []byte(src), 0o644)
	for _, tc := range []struct {
		iso    define.Isolation
		target string
	}{{define.IsolationChroot, "/run/kimia-heredoc"}, {define.IsolationOCI, "/dev/pipes"}} {
		work := t.TempDir()
		out, ctxs, err := rewriteDockerfile(df, work, tc.iso)
		if err != nil {
			t.Fatal(err)
		}
		if out == df || ctxs[heredocContext] == nil {
			t.Fatalf("nothing rewritten: %s %v", out, ctxs)
		}
		b, _ := os.ReadFile(out)
		got := strings.Split(string(b), "\n")
		want := strings.Split(src, "\n")
		if len(got) != len(want) {
			t.Fatalf("the rewrite has %d lines, the original %d:\n%s", len(got), len(want), b)
		}
		for i, line := range got {
			switch i + 1 {
			case 2:
				if !strings.Contains(line, "--mount=type=bind,from="+heredocContext+",source=") || !strings.HasSuffix(line, " "+tc.target+"/EOF") {
					t.Errorf("line 2: %q", line)
				}
			case 6:
				if !strings.HasSuffix(line, " "+tc.target+"/SCRIPT") {
					t.Errorf("line 6: %q", line)
				}
			case 3, 4, 5, 7, 8, 9:
				if line != "" {
					t.Errorf("line %d of a rewritten RUN: %q, want it blank", i+1, line)
				}
			default:
				if line != want[i] {
					t.Errorf("line %d: %q, want it unchanged (%q)", i+1, line, want[i])
				}
			}
		}
		// The scripts are the heredocs as BuildKit writes them: the text
		// after <<- loses its leading tabs, and every line ends.
		for _, body := range []string{"#!/bin/awk -f\nBEGIN { print \"hi\" }\n", "#!/bin/sh\necho $0\n"} {
			found := false
			entries, _ := os.ReadDir(ctxs[heredocContext].Value)
			for _, e := range entries {
				b, _ := os.ReadFile(filepath.Join(ctxs[heredocContext].Value, e.Name()))
				fi, _ := e.Info()
				if string(b) == body && fi.Mode().Perm() == 0o755 {
					found = true
				}
			}
			if !found {
				t.Errorf("no 0755 script holding %q", body)
			}
		}
	}
}

func TestRewriteLeavesOtherDockerfilesAlone(t *testing.T) {
	df := filepath.Join(t.TempDir(), "Dockerfile")
	os.WriteFile(df, []byte("FROM busybox\nRUN <<EOF\necho hi\nEOF\n"), 0o644)
	out, ctxs, err := rewriteDockerfile(df, t.TempDir(), define.IsolationChroot)
	if err != nil || out != df || ctxs != nil {
		t.Errorf("got %s %v %v, want the original", out, ctxs, err)
	}
}
