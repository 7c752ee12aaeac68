package buildctx

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rapidfort/kimia/engine"
)

// entry is one tar entry for tests: a file (Body), a directory (name
// ending in "/"), a symbolic link (Symlink) or a hard link (Hardlink).
type entry struct {
	Name, Body, Symlink, Hardlink string
	Mode                          int64
	Type                          byte
}

func makeTar(t *testing.T, gz bool, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = tar.NewWriter(zw)
	} else {
		w = tar.NewWriter(&buf)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: e.Mode, ModTime: time.Unix(1700000000, 0)}
		switch {
		case e.Type != 0:
			h.Typeflag = e.Type
		case strings.HasSuffix(e.Name, "/"):
			h.Typeflag = tar.TypeDir
		case e.Symlink != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Symlink
		case e.Hardlink != "":
			h.Typeflag, h.Linkname = tar.TypeLink, e.Hardlink
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			w.Write([]byte(e.Body))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

var discard = slog.New(slog.DiscardHandler)

func TestExtract(t *testing.T) {
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		data := makeTar(t, gz,
			entry{Name: "./"},
			entry{Name: "Dockerfile", Body: "FROM scratch\n"},
			entry{Name: "bin/", Mode: 0o555},
			entry{Name: "bin/run.sh", Body: "#!/bin/sh\n", Mode: 0o755},
			entry{Name: "deep/a/b/c.txt", Body: "implicit parents"},
			entry{Name: "link", Symlink: "bin/run.sh"},
			entry{Name: "deep/a/up", Symlink: "../../Dockerfile"},
			entry{Name: "hard", Hardlink: "Dockerfile"},
			entry{Name: "dup.txt", Body: "first"},
			entry{Name: "dup.txt", Body: "second"},
			entry{Name: "fifo", Type: tar.TypeFifo},
		)
		n, err := extract(context.Background(), bytes.NewReader(data), dir, 0, discard)
		if err != nil {
			t.Fatalf("gzip=%v: %v", gz, err)
		}
		if want := int64(len("FROM scratch\n") + len("#!/bin/sh\n") + len("implicit parents") + len("first") + len("second")); n != want {
			t.Errorf("gzip=%v: %d bytes, want %d", gz, n, want)
		}
		check := func(name, want string) {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || string(b) != want {
				t.Errorf("gzip=%v: %s = %q, %v; want %q", gz, name, b, err, want)
			}
		}
		check("Dockerfile", "FROM scratch\n")
		check("deep/a/b/c.txt", "implicit parents")
		check("dup.txt", "second")
		check("hard", "FROM scratch\n")
		if l, err := os.Readlink(filepath.Join(dir, "link")); err != nil || l != "bin/run.sh" {
			t.Errorf("link: %q %v", l, err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "bin", "run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("bin/run.sh mode: %v %v", fi.Mode(), err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "bin")); err != nil || fi.Mode().Perm() != 0o555 {
			t.Errorf("bin mode: %v %v", fi.Mode(), err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil || !fi.ModTime().Equal(time.Unix(1700000000, 0)) {
			t.Errorf("Dockerfile mtime: %v %v", fi.ModTime(), err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "fifo")); !os.IsNotExist(err) {
			t.Errorf("a fifo was created: %v", err)
		}
		if err := removeAll(dir); err != nil {
			t.Errorf("removing an extraction with a read-only directory: %v", err)
		}
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		msg     string
	}{
		{"an absolute path", []entry{{Name: "/etc/evil", Body: "x"}}, `"/etc/evil" has an absolute path`},
		{"a path that climbs out", []entry{{Name: "../evil", Body: "x"}}, `"../evil" leaves the context`},
		{"a path that climbs out after a directory", []entry{{Name: "a/../../evil", Body: "x"}}, "leaves the context"},
		{"an absolute symbolic link", []entry{{Name: "passwd", Symlink: "/etc/passwd"}}, "absolute target leaves the context"},
		{"a symbolic link that climbs out", []entry{{Name: "a/up", Symlink: "../../outside"}}, "target leaves the context"},
		{"a file written through a link to outside", []entry{
			{Name: "sub/", Mode: 0o755},
			{Name: "sub/l", Symlink: ".."},
			{Name: "sub/l/l2", Symlink: "../x"}}, "leaves the context"},
		{"links that combine to leave", []entry{
			{Name: "q", Symlink: "s/.."},
			{Name: "s", Symlink: "."}}, "leaves the context through other links"},
		{"a hard link to an absolute path", []entry{{Name: "shadow", Hardlink: "/etc/shadow"}}, "absolute path"},
		{"a hard link that climbs out", []entry{{Name: "h", Hardlink: "../../etc/shadow"}}, "leaves the context"},
		{"a hard link to a file not in the tarball", []entry{{Name: "h", Hardlink: "nothere"}}, "not a file earlier in the tarball"},
		{"a hard link through a symbolic link", []entry{
			{Name: "d/", Mode: 0o755},
			{Name: "d/in", Symlink: "."},
			{Name: "h", Hardlink: "d/in/../../../etc/passwd"}}, "leaves the context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "ctx")
			os.Mkdir(dir, 0o755)
			_, err := extract(context.Background(), bytes.NewReader(makeTar(t, true, tc.entries...)), dir, 0, discard)
			if err == nil {
				t.Fatalf("extraction succeeded, want an error containing %q", tc.msg)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
			entries, _ := os.ReadDir(parent)
			if len(entries) != 1 {
				t.Errorf("something was written next to the extraction directory: %v", entries)
			}
		})
	}
}

func TestExtractSizeLimit(t *testing.T) {
	data := makeTar(t, true, entry{Name: "a", Body: strings.Repeat("x", 600)}, entry{Name: "b", Body: strings.Repeat("y", 600)})
	_, err := extract(context.Background(), bytes.NewReader(data), t.TempDir(), 1000, discard)
	if err == nil || !strings.Contains(err.Error(), "--context-max-size") || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("got %v, want the size limit hit at entry b", err)
	}
	if _, err := extract(context.Background(), bytes.NewReader(data), t.TempDir(), 1200, discard); err != nil {
		t.Fatalf("exactly at the limit: %v", err)
	}
}

func TestExtractRejectsOtherCompressions(t *testing.T) {
	for name, magic := range map[string][]byte{"xz": {0xfd, '7', 'z', 'X', 'Z', 0, 0}, "zstd": {0x28, 0xb5, 0x2f, 0xfd, 0, 0}} {
		_, err := extract(context.Background(), bytes.NewReader(magic), t.TempDir(), 0, discard)
		if err == nil || !strings.Contains(err.Error(), name+" compression is not supported") {
			t.Errorf("%s: got %v", name, err)
		}
	}
	_, err := extract(context.Background(), strings.NewReader("this is not a tarball at all, just some text that goes on for a while......................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................."), t.TempDir(), 0, discard)
	if err == nil || !strings.Contains(err.Error(), "reading the tarball") {
		t.Errorf("garbage: got %v", err)
	}
}

func TestExtractStopsWhenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := extract(ctx, bytes.NewReader(makeTar(t, false, entry{Name: "a", Body: "x"})), t.TempDir(), 0, discard)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// TestStdinExtractionStopsWhenCanceled: a signal must end a build that
// waits for a tarball on stdin, and remove the extraction directory.
func TestStdinExtractionStopsWhenCanceled(t *testing.T) {
	_, clean := isolate(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	old := stdin
	stdin = pr
	defer func() { stdin = old }()
	go pw.Write(makeTar(t, false, entry{Name: "a", Body: "x"})[:512]) // a header, then nothing
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, err := Prepare(ctx, Source{Context: "tar://stdin"}, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if engine.KindOf(err) != engine.KindCanceled {
			t.Errorf("got %v (kind %v), want canceled", err, engine.KindOf(err))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Prepare still blocked on stdin after cancelation")
	}
	clean()
}
