package buildah

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/idtools"
	"golang.org/x/sys/unix"
)

// tree writes files ("path=content"; "path/" a directory; "path=->target"
// a symbolic link, as e2e.WriteFiles writes them), every entry with its
// own whole-second time, as layers applied from a tar have.
func tree(t *testing.T, dir string, files []string) {
	t.Helper()
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, f := range files {
		name, content, _ := strings.Cut(f, "=")
		p := filepath.Join(dir, strings.TrimSuffix(name, "/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(strings.TrimPrefix(content, "->"), p); err != nil {
				t.Fatal(err)
			}
			continue
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		tm := base.Add(time.Duration(i) * time.Second)
		os.Chtimes(p, tm, tm)
	}
}

// copyTree copies old to new as vfs makes a container's layer: times,
// modes and links kept.
func copyTree(t *testing.T, old, new string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", old+"/.", new).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
}

var baseTree = []string{
	"etc/", "etc/passwd=root:x:0:0\n", "etc/group=root:x:0:\n", "bin/", "bin/sh=shell",
	"bin/ls=->sh", "usr/", "usr/lib/", "usr/lib/a.so=a", "usr/lib/b.so=b", "var/", "var/log/", "var/log/old=log",
	"data/", "data/f=1", "usr/share/", "usr/share/doc=doc", "usr/share/man=man",
}

// step changes a tree as a RUN would, at times within the current second,
// the case the naive differ sleeps for.
func step(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0\napp:x:1:1\n"), 0o644)) // content
	must(os.Chmod(filepath.Join(dir, "usr/lib/a.so"), 0o755))                                      // mode only
	must(os.Remove(filepath.Join(dir, "var/log/old")))                                             // deletion
	must(os.RemoveAll(filepath.Join(dir, "usr/lib/b.so")))                                         // deletion
	must(os.MkdirAll(filepath.Join(dir, "opt/app/sub"), 0o755))                                    // new tree
	must(os.WriteFile(filepath.Join(dir, "opt/app/sub/x"), []byte("x"), 0o600))
	must(os.Remove(filepath.Join(dir, "bin/ls")))
	must(os.Symlink("/bin/sh", filepath.Join(dir, "bin/ls"))) // link target
	must(os.RemoveAll(filepath.Join(dir, "data")))
	must(os.WriteFile(filepath.Join(dir, "data"), []byte("now a file"), 0o644)) // directory to file
	must(os.Remove(filepath.Join(dir, "etc/group")))
	must(os.MkdirAll(filepath.Join(dir, "etc/group/d"), 0o755)) // file to directory
	// Rewritten with the same size and its time set back, as shadow
	// writes /etc/group-: only the content tells.
	doc := filepath.Join(dir, "usr/share/doc")
	st0, _ := os.Stat(doc)
	must(os.WriteFile(doc, []byte("DOC"), 0o644))
	must(os.Chtimes(doc, st0.ModTime(), st0.ModTime()))
	// Same size, same whole second as the parent's: only the nanoseconds
	// differ, which the naive differ's rule takes for no change.
	p := filepath.Join(dir, "bin/sh")
	st, _ := os.Stat(p)
	must(os.WriteFile(p, []byte("SHELL"), 0o644))
	must(os.Chtimes(p, st.ModTime().Add(500*time.Millisecond), st.ModTime().Add(500*time.Millisecond)))
}

func paths(cs []archive.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Kind.String()+" "+c.Path)
	}
	slices.Sort(out)
	return out
}

func TestDifferFindsWhatTheNaiveDifferFinds(t *testing.T) {
	old, new := t.TempDir(), t.TempDir()
	tree(t, old, baseTree)
	copyTree(t, old, new)
	step(t, new)

	d := &differ{newDir: new, oldDir: old, changes: map[string]archive.ChangeType{}}
	if err := d.walkBoth("."); err != nil {
		t.Fatal(err)
	}
	got := paths(d.list())
	naive, err := archive.ChangesDirs(new, &idtools.IDMappings{}, old, &idtools.IDMappings{})
	if err != nil {
		t.Fatal(err)
	}
	want := paths(naive)
	// What the naive differ misses: a change within a second, and a
	// change with the time set back.
	want = append(want, "C /bin/sh", "C /usr/share", "C /usr/share/doc")
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("changes:\n got %v\nwant %v", got, want)
	}
}

func TestDifferKeepsHardLinksOfChangedFiles(t *testing.T) {
	old, new := t.TempDir(), t.TempDir()
	tree(t, old, baseTree)
	copyTree(t, old, new)
	// ln /data/f /data/g: f is unchanged, g is new; the layer must carry
	// both, or the next step sees two files.
	if err := os.Link(filepath.Join(new, "data/f"), filepath.Join(new, "data/g")); err != nil {
		t.Fatal(err)
	}
	d := &differ{newDir: new, oldDir: old, changes: map[string]archive.ChangeType{}}
	if err := d.walkBoth("."); err != nil {
		t.Fatal(err)
	}
	if err := d.completeHardLinks(); err != nil {
		t.Fatal(err)
	}
	got := paths(d.list())
	want := []string{"A /data/g", "C /data", "C /data/f"}
	if !slices.Equal(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
}

// With overlay the differ reads only the upper directory; it must find
// what comparing the whole trees finds.
func TestDifferReadsOverlaysUpperDirectoryAlike(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting overlay needs root; the end-to-end tests cover rootless builds")
	}
	dir := t.TempDir()
	lower, upper, work, merged := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		os.MkdirAll(d, 0o755)
	}
	tree(t, lower, baseTree)
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		t.Fatalf("mounting overlay: %v", err)
	}
	defer unix.Unmount(merged, unix.MNT_DETACH)
	step(t, merged)
	// A copy-up that changes nothing must not count.
	f, err := os.OpenFile(filepath.Join(merged, "usr/share/man"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	up := &differ{newDir: merged, oldDir: lower, changes: map[string]archive.ChangeType{}}
	if err := up.walkUpper(upper)("."); err != nil {
		t.Fatal(err)
	}
	both := &differ{newDir: merged, oldDir: lower, changes: map[string]archive.ChangeType{}}
	if err := both.walkBoth("."); err != nil {
		t.Fatal(err)
	}
	if got, want := paths(up.list()), paths(both.list()); !slices.Equal(got, want) {
		t.Errorf("upper-directory changes:\n got %v\nwant %v", got, want)
	}
}

// As in BuildKit: a directory whose only change is its time is no change
// of its own, and with a clamp (--reproducible) a file copied again with
// its source's time matches its clamped self in the parent.
func TestDifferComparesAsBuildKit(t *testing.T) {
	old, new := t.TempDir(), t.TempDir()
	tree(t, old, baseTree)
	copyTree(t, old, new)
	epoch := time.Unix(0, 0)
	// The parent layer was written clamped: its file has the epoch.
	if err := os.Chtimes(filepath.Join(old, "data/f"), epoch, epoch); err != nil {
		t.Fatal(err)
	}
	// The step copies the same file again, with the source's time.
	later := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(new, "data/f"), later, later); err != nil {
		t.Fatal(err)
	}
	// touch -d 0 /var: a directory's time only.
	if err := os.Chtimes(filepath.Join(new, "var"), epoch, epoch); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		clamp *unix.Timespec
		want  []string
	}{
		{"without a clamp the time tells", nil, []string{"C /data", "C /data/f"}},
		{"with a clamp the content tells", &unix.Timespec{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &differ{newDir: new, oldDir: old, changes: map[string]archive.ChangeType{}, clamp: tc.clamp}
			if err := d.walkBoth("."); err != nil {
				t.Fatal(err)
			}
			if got := paths(d.list()); !slices.Equal(got, tc.want) {
				t.Errorf("changes %v, want %v", got, tc.want)
			}
		})
	}
	// Content that differs is a change whatever the clamp.
	if err := os.WriteFile(filepath.Join(new, "data/f"), []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(new, "data/f"), later, later)
	d := &differ{newDir: new, oldDir: old, changes: map[string]archive.ChangeType{}, clamp: &unix.Timespec{}}
	if err := d.walkBoth("."); err != nil {
		t.Fatal(err)
	}
	if got, want := paths(d.list()), []string{"C /data", "C /data/f"}; !slices.Equal(got, want) {
		t.Errorf("changed content: changes %v, want %v", got, want)
	}
}

func TestWalkOrder(t *testing.T) {
	paths := []string{"/a/lodash.merge", "/a/lodash/x", "/a/lodash", "/a", "/a/lodash-es/y", "/a/lodash-es", "/b"}
	slices.SortFunc(paths, walkCompare)
	want := []string{"/a", "/a/lodash", "/a/lodash/x", "/a/lodash-es", "/a/lodash-es/y", "/a/lodash.merge", "/b"}
	if !slices.Equal(paths, want) {
		t.Errorf("walk order %v, want %v", paths, want)
	}
}

// A layer whose changes sort otherwise by path is written in walk order,
// and a hard link set keeps its content on the first name written.
func TestInWalkOrder(t *testing.T) {
	old, new := t.TempDir(), t.TempDir()
	tree(t, old, []string{"a/"})
	copyTree(t, old, new)
	tree(t, new, []string{"a/", "a/lib/", "a/lib/x=1", "a/lib.d=2", "a/lib-2/", "a/lib-2/y=3"})
	// a/lib.d and a/lib/z are one file: by path "a/lib.d" comes first, in
	// walk order "a/lib/z" does.
	if err := os.Link(filepath.Join(new, "a/lib.d"), filepath.Join(new, "a/lib/z")); err != nil {
		t.Fatal(err)
	}
	d := &differ{newDir: new, oldDir: old, changes: map[string]archive.ChangeType{}}
	if err := d.walkBoth("."); err != nil {
		t.Fatal(err)
	}
	changes := d.list()
	if !needsWalkOrder(changes) {
		t.Fatalf("changes %v should need reordering", paths(changes))
	}
	rc, err := archive.ExportChanges(new, changes, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, err = inWalkOrder(rc, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		e := hdr.Name
		if hdr.Typeflag == tar.TypeLink {
			e += " -> " + hdr.Linkname
		} else if hdr.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			e += "=" + string(b)
		}
		got = append(got, e)
	}
	want := []string{"a/", "a/lib/", "a/lib/x=1", "a/lib/z=2", "a/lib-2/", "a/lib-2/y=3", "a/lib.d -> a/lib/z"}
	if !slices.Equal(got, want) {
		t.Errorf("entries\n got %v\nwant %v", got, want)
	}
}
