package buildah

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
	"golang.org/x/sys/unix"
)

// Diff implements storage.Store. For the layer of a build step (a
// container's layer: it has a parent and no stored tar) it finds the
// step's changes as BuildKit's differ does (see changed; the directories
// of changed entries included) and writes them with containers/storage's
// tar writer (archive.ExportChanges), so that a step gives the layer
// kimia gives, on either driver. Against containers/storage's naive
// differ, that means:
//
//   - times are compared exactly. The naive differ treats a time of whole
//     seconds as equal to any time within that second (tar keeps whole
//     seconds), and so has to sleep until the next second after every
//     layer it writes: up to a second per build step.
//   - a directory whose only change is its time is not written, and
//     xattrs other than the file capability are not compared.
//   - a changed file's other names (hard links) are written too, so that
//     a set of hard links stays one file in later steps, as in BuildKit;
//     the naive differ writes only the names whose metadata changed, and
//     the next step gets a copy.
//
// With overlay only the layer's upper directory is walked, not the whole
// tree. Every other layer (pulled or committed: they have a stored tar)
// is read as containers/storage reads it.
func (s *openedStore) Diff(from, to string, options *storage.DiffOptions) (io.ReadCloser, error) {
	if from != "" || (options != nil && options.Compression != nil && *options.Compression != archive.Uncompressed) {
		return s.Store.Diff(from, to, options)
	}
	l, err := s.Store.Layer(to)
	if err != nil || l.Parent == "" || l.UncompressedDigest != "" || len(l.UIDMap) > 0 || len(l.GIDMap) > 0 {
		return s.Store.Diff(from, to, options)
	}
	newDir, err := s.Store.Mount(to, l.MountLabel)
	if err != nil {
		return nil, fmt.Errorf("mounting layer %s: %w", to, err)
	}
	oldDir, err := s.Store.Mount(l.Parent, "")
	if err != nil {
		s.Store.Unmount(to, false)
		return nil, fmt.Errorf("mounting layer %s: %w", l.Parent, err)
	}
	unmount := func() error {
		_, err1 := s.Store.Unmount(l.Parent, false)
		_, err2 := s.Store.Unmount(to, false)
		return errors.Join(err1, err2)
	}
	d := &differ{newDir: newDir, oldDir: oldDir, changes: map[string]archive.ChangeType{}}
	if s.ClampTimes != nil {
		ts := unix.NsecToTimespec(s.ClampTimes.UnixNano())
		d.clamp = &ts
	}
	if upper := s.upperDir(to); upper != "" {
		err = d.walkUpper(upper)(".")
	} else {
		err = d.walkBoth(".")
	}
	if err == nil {
		err = d.completeHardLinks()
	}
	if err != nil {
		unmount()
		return nil, fmt.Errorf("finding the changes of layer %s: %w", to, err)
	}
	changes := d.list()
	rc, err := archive.ExportChanges(newDir, changes, nil, nil)
	if err == nil && needsWalkOrder(changes) {
		rc, err = inWalkOrder(rc, s.Dirs.Base)
	}
	if err != nil {
		unmount()
		return nil, err
	}
	return &closeFunc{ReadCloser: rc, after: unmount}, nil
}

// upperDir is the overlay upper directory of layer id, or "" with vfs.
func (s *openedStore) upperDir(id string) string {
	if s.Driver != driverOverlay {
		return ""
	}
	p := filepath.Join(s.Dirs.GraphRoot, "overlay", id, "diff")
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return p
	}
	return ""
}

type closeFunc struct {
	io.ReadCloser
	after func() error
}

func (c *closeFunc) Close() error {
	return errors.Join(c.ReadCloser.Close(), c.after())
}

// entry is what the naive differ compares of a file.
type entry struct {
	st         unix.Stat_t
	capability []byte
	xattrs     map[string]string
	target     string
}

func (e *entry) isDir() bool { return e.st.Mode&unix.S_IFMT == unix.S_IFDIR }

func lstatEntry(p string) (*entry, error) {
	e := &entry{}
	if err := unix.Lstat(p, &e.st); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil, nil
		}
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	if c, err := getxattr(p, "security.capability"); err == nil {
		e.capability = c
	}
	if names, err := listxattr(p); err == nil {
		for _, n := range names {
			if strings.HasPrefix(n, "user.") {
				if v, err := getxattr(p, n); err == nil {
					if e.xattrs == nil {
						e.xattrs = map[string]string{}
					}
					e.xattrs[n] = string(v)
				}
			}
		}
	}
	if e.st.Mode&unix.S_IFMT == unix.S_IFLNK {
		t, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		e.target = t
	}
	return e, nil
}

func getxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func listxattr(p string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, err
		}
		var out []string
		for _, s := range bytes.Split(buf[:n], []byte{0}) {
			if len(s) > 0 {
				out = append(out, string(s))
			}
		}
		return out, nil
	}
}

// changed is BuildKit's comparison (its overlay differ's sameDirent,
// continuity's sameFile), so that both engines put the same entries in a
// layer: type and mode, owner, device and file capability always; for
// anything but a directory, also size and time, and when both times are
// whole seconds (as files unpacked from a tar have, or rewritten with the
// time set back: shadow's /etc/group-) the content or link target. A
// directory whose only change is its time (an entry added or removed) is
// not a change itself; list adds it as the parent of its changes. Other
// xattrs are not compared, as in BuildKit.
//
// With clamp (SOURCE_DATE_EPOCH, --reproducible) times are compared as
// clamped: the parent is a committed layer whose times were clamped when
// it was written, where BuildKit compares with a snapshot that kept the
// times and clamps only on export. Without it a file copied again with
// its own time (COPY package.json, then COPY . .) would differ from its
// clamped self and be written again.
func changed(a, b *entry, oldPath, newPath string, clamp *unix.Timespec) (bool, error) {
	if a.st.Mode != b.st.Mode || a.st.Uid != b.st.Uid || a.st.Gid != b.st.Gid || a.st.Rdev != b.st.Rdev ||
		!bytes.Equal(a.capability, b.capability) {
		return true, nil
	}
	if a.isDir() {
		return false, nil
	}
	if a.st.Size != b.st.Size {
		return true, nil
	}
	ta, tb := clampTime(a.st.Mtim, clamp), clampTime(b.st.Mtim, clamp)
	if ta.Sec != tb.Sec {
		return true, nil
	}
	if ta.Nsec != 0 || tb.Nsec != 0 {
		return ta.Nsec != tb.Nsec, nil
	}
	switch {
	case a.st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return a.target != b.target, nil
	case a.st.Size == 0:
		return false, nil
	}
	same, err := sameContent(oldPath, newPath)
	return !same, err
}

func clampTime(t unix.Timespec, clamp *unix.Timespec) unix.Timespec {
	if clamp != nil && (t.Sec > clamp.Sec || (t.Sec == clamp.Sec && t.Nsec > clamp.Nsec)) {
		return *clamp
	}
	return t
}

func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
}

// differ collects the changes between newDir and oldDir, by path relative
// to the roots ("." is the root, never a change).
type differ struct {
	newDir, oldDir string
	changes        map[string]archive.ChangeType
	// links are changed regular files with other names, by inode.
	links map[uint64]bool
	// clamp, when set, is the time file times are clamped to in layers.
	clamp *unix.Timespec
}

func (d *differ) record(rel string, kind archive.ChangeType, e *entry) {
	d.changes[rel] = kind
	if e != nil && e.st.Mode&unix.S_IFMT == unix.S_IFREG && e.st.Nlink > 1 {
		if d.links == nil {
			d.links = map[uint64]bool{}
		}
		d.links[e.st.Ino] = true
	}
}

// compare records what became of rel, an entry of the new tree, and
// walks into it when it is a directory that existed before.
func (d *differ) compare(rel string, walk func(string) error) error {
	newPath, oldPath := filepath.Join(d.newDir, rel), filepath.Join(d.oldDir, rel)
	ne, err := lstatEntry(newPath)
	if err != nil || ne == nil {
		return err
	}
	oe, err := lstatEntry(oldPath)
	if err != nil {
		return err
	}
	if oe == nil {
		d.record(rel, archive.ChangeAdd, ne)
		if ne.isDir() {
			return d.addAll(rel)
		}
		return nil
	}
	if c, err := changed(oe, ne, oldPath, newPath, d.clamp); err != nil {
		return err
	} else if c {
		d.record(rel, archive.ChangeModify, ne)
	}
	if !ne.isDir() {
		return nil
	}
	if !oe.isDir() {
		// A file became a directory: everything in it is new.
		return d.addAll(rel)
	}
	return walk(rel)
}

// walkBoth compares directory rel of both trees, entry by entry (vfs).
func (d *differ) walkBoth(rel string) error {
	newNames, err := readNames(filepath.Join(d.newDir, rel))
	if err != nil {
		return err
	}
	oldNames, err := readNames(filepath.Join(d.oldDir, rel))
	if err != nil {
		return err
	}
	for _, n := range newNames {
		if err := d.compare(path.Join(rel, n), d.walkBoth); err != nil {
			return err
		}
	}
	d.deleted(rel, oldNames, newNames)
	return nil
}

// walkUpper compares what overlay's upper directory holds of directory
// rel: everything else is the parent's, unchanged. A whiteout is a
// deletion; an opaque directory hides all the parent had in it.
func (d *differ) walkUpper(upper string) func(string) error {
	var walk func(rel string) error
	walk = func(rel string) error {
		dir := filepath.Join(upper, rel)
		names, err := readNames(dir)
		if err != nil {
			return err
		}
		for _, n := range names {
			r := path.Join(rel, n)
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dir, n), &st); err != nil {
				return err
			}
			if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
				if oe, err := lstatEntry(filepath.Join(d.oldDir, r)); err != nil {
					return err
				} else if oe != nil {
					d.changes[r] = archive.ChangeDelete
				}
				continue
			}
			if err := d.compare(r, walk); err != nil {
				return err
			}
		}
		if rel != "." && opaque(dir) {
			oldNames, err := readNames(filepath.Join(d.oldDir, rel))
			if err != nil {
				return err
			}
			newNames, err := readNames(filepath.Join(d.newDir, rel))
			if err != nil {
				return err
			}
			d.deleted(rel, oldNames, newNames)
		}
		return nil
	}
	return walk
}

func opaque(dir string) bool {
	for _, x := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if v, err := getxattr(dir, x); err == nil && string(v) == "y" {
			return true
		}
	}
	return false
}

// deleted records the entries of directory rel that only the old tree has.
func (d *differ) deleted(rel string, oldNames, newNames []string) {
	for _, n := range oldNames {
		if _, ok := slices.BinarySearch(newNames, n); !ok {
			d.changes[path.Join(rel, n)] = archive.ChangeDelete
		}
	}
}

// addAll records everything under directory rel of the new tree as added.
func (d *differ) addAll(rel string) error {
	names, err := readNames(filepath.Join(d.newDir, rel))
	if err != nil {
		return err
	}
	for _, n := range names {
		r := path.Join(rel, n)
		e, err := lstatEntry(filepath.Join(d.newDir, r))
		if err != nil || e == nil {
			return err
		}
		d.record(r, archive.ChangeAdd, e)
		if e.isDir() {
			if err := d.addAll(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// completeHardLinks adds the unchanged names of changed files that have
// other names, so that the layer keeps them one file.
func (d *differ) completeHardLinks() error {
	if len(d.links) == 0 {
		return nil
	}
	return filepath.WalkDir(d.newDir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || !d.links[st.Ino] {
			return err
		}
		rel, err := filepath.Rel(d.newDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if _, ok := d.changes[rel]; ok {
			return nil
		}
		oe, err := lstatEntry(filepath.Join(d.oldDir, rel))
		if err != nil {
			return err
		}
		if oe == nil {
			d.changes[rel] = archive.ChangeAdd
		} else {
			d.changes[rel] = archive.ChangeModify
		}
		return nil
	})
}

// list returns the changes as the naive differ lists them: with the
// directories that hold a change (unless added or changed themselves) as
// modified, in path order.
func (d *differ) list() []archive.Change {
	all := maps.Clone(d.changes)
	for rel := range d.changes {
		for p := path.Dir(rel); p != "." && p != "/"; p = path.Dir(p) {
			if _, ok := all[p]; !ok {
				all[p] = archive.ChangeModify
			}
		}
	}
	out := make([]archive.Change, 0, len(all))
	for rel, kind := range all {
		out = append(out, archive.Change{Path: "/" + rel, Kind: kind})
	}
	slices.SortFunc(out, func(a, b archive.Change) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// readNames lists a directory, sorted; a missing directory has none.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}
