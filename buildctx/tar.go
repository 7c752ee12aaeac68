package buildctx

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rapidfort/kimia/engine"
)

// stdin is where tar://stdin is read from; tests replace it.
var stdin io.Reader = os.Stdin

// prepareTar extracts tar://FILE or tar://stdin into a temporary
// directory that becomes the context.
func (p *Prepared) prepareTar(ctx context.Context, loc string, max int64, log *slog.Logger) error {
	var r io.Reader
	name := loc
	if loc == "stdin" || loc == "-" {
		r, name = cancelableReader(ctx, stdin), "standard input"
	} else {
		f, err := os.Open(loc)
		if err != nil {
			return engine.Errorf(engine.KindContext, "opening tarball %q: %v", loc, unwrap(err))
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.IsDir() {
			return engine.Errorf(engine.KindContext, "tarball %q is a directory (for a directory context drop the tar:// prefix)", loc)
		}
		r = f
	}
	dir, err := os.MkdirTemp("", "kimia-context-")
	if err != nil {
		return engine.Wrap(engine.KindEnvironment, fmt.Errorf("creating a temporary directory: %w", err))
	}
	p.cleanup = append(p.cleanup, func() error { return removeAll(dir) })
	start := time.Now()
	n, err := extract(ctx, r, dir, max, log)
	if err != nil {
		if ctx.Err() != nil {
			return engine.Wrap(engine.KindCanceled, fmt.Errorf("extracting tarball %q: %w", name, context.Cause(ctx)))
		}
		return engine.Errorf(engine.KindContext, "extracting tarball %q: %v", name, err)
	}
	log.Info("extracted tarball context", "tarball", name, "bytes", n, "seconds", fmt.Sprintf("%.2f", time.Since(start).Seconds()))
	p.Root = dir
	return nil
}

// cancelableReader reads r through a pipe that a canceled ctx closes, so
// that a signal ends an extraction blocked on a read from stdin (a read
// from a terminal or pipe cannot be interrupted). The copying goroutine
// may stay blocked in that read; the process is about to exit.
func cancelableReader(ctx context.Context, r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err)
	}()
	go func() {
		<-ctx.Done()
		pw.CloseWithError(context.Cause(ctx))
	}()
	return pr
}

// decompress detects the compression of r from its first bytes.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(6)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, fmt.Errorf("xz compression is not supported; use gzip (.tar.gz), bzip2 or none")
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, fmt.Errorf("zstd compression is not supported; use gzip (.tar.gz), bzip2 or none")
	}
	return br, nil
}

// extract unpacks the tarball r into dir, which must exist, and returns
// the bytes written. Every entry must stay inside dir: absolute names,
// names with "..", symbolic links whose target leaves dir (absolute, or
// climbing out, also through other links) and hard links to outside are
// refused, never clamped or skipped, so that a crafted tarball fails
// loudly. Writes go through os.Root, which cannot leave dir even through
// a symbolic link. Device files are skipped: a context has no use for
// them and a rootless build could not create them.
func extract(ctx context.Context, r io.Reader, dir string, max int64, log *slog.Logger) (int64, error) {
	dr, err := decompress(r)
	if err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()

	type dirMeta struct {
		name  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dirMeta
	var links []string
	var total int64
	tr := tar.NewReader(dr)
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return total, fmt.Errorf("reading the tarball: %w", err)
		}
		name, err := entryName(h.Name)
		if err != nil {
			return total, err
		}
		if name == "." {
			continue // the top directory is dir itself
		}
		mode := fs.FileMode(h.Mode) & fs.ModePerm
		if h.Mode&04000 != 0 {
			mode |= fs.ModeSetuid
		}
		if h.Mode&02000 != 0 {
			mode |= fs.ModeSetgid
		}
		if h.Mode&01000 != 0 {
			mode |= fs.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := mkdirAll(root, name); err != nil {
				return total, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			dirs = append(dirs, dirMeta{name, mode, h.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			if max > 0 && total+h.Size > max {
				return total, fmt.Errorf("the content exceeds --context-max-size (%d bytes) at entry %q; raise the limit or send less", max, h.Name)
			}
			if err := prepareEntry(root, name); err != nil {
				return total, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return total, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			n, err := io.Copy(f, tr)
			total += n
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return total, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			if err := root.Chmod(name, mode); err != nil {
				return total, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			_ = root.Chtimes(name, h.ModTime, h.ModTime)
		case tar.TypeSymlink:
			if err := linkInside(name, h.Linkname); err != nil {
				return total, fmt.Errorf("symbolic link %q -> %q: %w", h.Name, h.Linkname, err)
			}
			if err := prepareEntry(root, name); err != nil {
				return total, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			if err := root.Symlink(h.Linkname, name); err != nil {
				return total, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			links = append(links, name)
		case tar.TypeLink:
			target, err := entryName(h.Linkname)
			if err != nil {
				return total, fmt.Errorf("hard link %q -> %q: %w", h.Name, h.Linkname, err)
			}
			if err := prepareEntry(root, name); err != nil {
				return total, fmt.Errorf("entry %q: %w", h.Name, err)
			}
			if fi, err := root.Lstat(target); err != nil || fi.IsDir() {
				return total, fmt.Errorf("hard link %q -> %q: the target is not a file earlier in the tarball", h.Name, h.Linkname)
			}
			if err := root.Link(target, name); err != nil {
				return total, fmt.Errorf("hard link %q -> %q: %w", h.Name, h.Linkname, err)
			}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			log.Warn("skipping a device or fifo in the tarball context", "entry", h.Name)
		case tar.TypeXGlobalHeader:
		default:
			return total, fmt.Errorf("entry %q: unsupported tar entry type %q", h.Name, h.Typeflag)
		}
	}
	// Each link was checked against its own path; links can also combine
	// (a -> b/.., then b -> .): resolve every one in the final tree.
	for _, l := range links {
		if err := resolvesInside(dir, l); err != nil {
			t, _ := os.Readlink(filepath.Join(dir, l))
			return total, fmt.Errorf("symbolic link %q -> %q: %w", l, t, err)
		}
	}
	// Directory modes last, deepest first: a read-only directory must not
	// stop its own entries from being written.
	slices.SortStableFunc(dirs, func(a, b dirMeta) int { return strings.Count(b.name, "/") - strings.Count(a.name, "/") })
	for _, d := range dirs {
		if err := root.Chmod(d.name, d.mode); err != nil {
			return total, fmt.Errorf("entry %q: %w", d.name, err)
		}
		_ = root.Chtimes(d.name, d.mtime, d.mtime)
	}
	return total, nil
}

var errLeaves = errors.New("leaves the context")

// entryName cleans a tar entry name, refusing absolute names and names
// that climb out.
func entryName(n string) (string, error) {
	if n == "" {
		return "", fmt.Errorf("an entry has an empty name")
	}
	if strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("entry %q has an absolute path: %w", n, errLeaves)
	}
	if strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("entry %q has a NUL byte in its name", n)
	}
	c := path.Clean(n)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("entry %q %w", n, errLeaves)
	}
	return c, nil
}

// linkInside checks a symbolic link's target against the link's own
// place.
func linkInside(name, target string) error {
	if target == "" {
		return fmt.Errorf("empty target")
	}
	if path.IsAbs(target) {
		return fmt.Errorf("an absolute target %w (use a relative link)", errLeaves)
	}
	c := path.Join(path.Dir(name), target)
	if c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Errorf("the target %w", errLeaves)
	}
	return nil
}

// resolvesInside follows the symbolic link rel (relative to root)
// through the tree, link by link, and fails if the path ever climbs
// above root. Missing components are taken lexically.
func resolvesInside(root, rel string) error {
	var parts []string
	todo := strings.Split(rel, "/")
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(parts) == 0 {
				return fmt.Errorf("the target %w through other links", errLeaves)
			}
			parts = parts[:len(parts)-1]
			continue
		}
		cur := filepath.Join(append([]string{root}, append(parts, c)...)...)
		fi, err := os.Lstat(cur)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			parts = append(parts, c)
			continue
		}
		if hops++; hops > 255 {
			return fmt.Errorf("too many levels of symbolic links")
		}
		t, err := os.Readlink(cur)
		if err != nil {
			return err
		}
		if path.IsAbs(t) {
			return fmt.Errorf("the target %w through an absolute link", errLeaves)
		}
		todo = append(strings.Split(t, "/"), todo...)
	}
	return nil
}

// mkdirAll makes a directory (and its parents) writable by kimia; the
// tarball's mode is applied at the end. An existing non-directory in
// the way is an error.
func mkdirAll(root *os.Root, name string) error {
	if fi, err := root.Lstat(name); err == nil {
		if fi.IsDir() {
			return nil
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return fmt.Errorf("a directory replaces a file of the same name")
		}
	}
	return root.MkdirAll(name, 0o755)
}

// prepareEntry creates name's parent directories and removes what an
// earlier entry put at name (later entries win, as with tar), except a
// directory.
func prepareEntry(root *os.Root, name string) error {
	if d := path.Dir(name); d != "." {
		if err := mkdirAll(root, d); err != nil {
			return err
		}
	}
	fi, err := root.Lstat(name)
	if err != nil {
		return nil
	}
	if fi.IsDir() {
		return fmt.Errorf("replaces a directory of the same name")
	}
	return root.Remove(name)
}

// removeAll removes dir even where an extraction left directories
// without write permission.
func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
