package buildah

import (
	"archive/tar"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"go.podman.io/storage/pkg/archive"
)

// BuildKit writes a layer's entries in the order of a walk of the tree:
// a directory, then everything in it, siblings by name. containers/storage
// sorts by the whole path, which differs where a directory's name is a
// prefix of a sibling's followed by a byte below '/' ("lodash/" and
// "lodash.merge", "python3/" and "python3.11"): "lodash.merge" sorts
// between "lodash" and "lodash/x". Same files, other bytes, another
// digest; so a layer whose changes sort differently is rewritten in walk
// order.

// walkCompare orders paths as a walk visits them.
func walkCompare(a, b string) int {
	for {
		ai, bi := strings.IndexByte(a, '/'), strings.IndexByte(b, '/')
		ah, bh := a, b
		if ai >= 0 {
			ah = a[:ai]
		}
		if bi >= 0 {
			bh = b[:bi]
		}
		if c := strings.Compare(ah, bh); c != 0 {
			return c
		}
		switch {
		case ai < 0 && bi < 0:
			return 0
		case ai < 0:
			return -1
		case bi < 0:
			return 1
		}
		a, b = a[ai+1:], b[bi+1:]
	}
}

// needsWalkOrder reports whether changes, sorted by path, are not in walk
// order.
func needsWalkOrder(changes []archive.Change) bool {
	for i := 1; i < len(changes); i++ {
		if walkCompare(changes[i-1].Path, changes[i].Path) > 0 {
			return true
		}
	}
	return false
}

// entryPath is the path a tar entry stands for: a whiteout stands for
// what it deletes.
func entryPath(name string) string {
	name = strings.TrimSuffix(name, "/")
	dir, base := path.Split(name)
	if b, ok := strings.CutPrefix(base, archive.WhiteoutPrefix); ok && b != "" && !strings.HasPrefix(base, archive.WhiteoutMetaPrefix) {
		return dir + b
	}
	return name
}

type spooledEntry struct {
	hdr    *tar.Header
	offset int64 // of the content in the spool file
}

// inWalkOrder reads the layer tar rc into a spool file in tmpDir and
// returns it with its entries in walk order. Of a set of hard links the
// first name in the new order carries the content, the others link to it,
// as a tar writer walking the tree writes them.
func inWalkOrder(rc io.ReadCloser, tmpDir string) (io.ReadCloser, error) {
	defer rc.Close()
	spool, err := os.CreateTemp(tmpDir, "layer-*.tar")
	if err != nil {
		return nil, err
	}
	os.Remove(spool.Name()) // the open file is all that is needed
	fail := func(err error) (io.ReadCloser, error) {
		spool.Close()
		return nil, err
	}
	var entries []spooledEntry
	var offset int64
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		n, err := io.Copy(spool, tr)
		if err != nil {
			return fail(err)
		}
		entries = append(entries, spooledEntry{hdr: hdr, offset: offset})
		offset += n
	}
	slices.SortStableFunc(entries, func(a, b spooledEntry) int {
		return walkCompare(entryPath(a.hdr.Name), entryPath(b.hdr.Name))
	})
	relink(entries)

	pr, pw := io.Pipe()
	go func() {
		defer spool.Close()
		tw := tar.NewWriter(pw)
		for _, e := range entries {
			if err := tw.WriteHeader(e.hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if e.hdr.Typeflag == tar.TypeReg && e.hdr.Size > 0 {
				if _, err := io.Copy(tw, io.NewSectionReader(spool, e.offset, e.hdr.Size)); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	return pr, nil
}

// relink makes the first name of each set of hard links, in entries'
// order, the one with the content.
func relink(entries []spooledEntry) {
	index := map[string]int{}
	for i, e := range entries {
		index[e.hdr.Name] = i
	}
	holder := map[string]string{} // old content name → new
	for i := range entries {
		e := &entries[i]
		if e.hdr.Typeflag != tar.TypeLink {
			continue
		}
		target := e.hdr.Linkname
		if h, ok := holder[target]; ok {
			e.hdr.Linkname = h
			continue
		}
		j, ok := index[target]
		if !ok || j < i {
			holder[target] = target
			continue
		}
		// This link comes first: it takes the content (and the
		// target's header, under its own name); the target links to it.
		t := &entries[j]
		name := e.hdr.Name
		content := *t.hdr
		content.Name = name
		e.hdr, e.offset = &content, t.offset
		link := *t.hdr
		link.Typeflag, link.Linkname, link.Size = tar.TypeLink, name, 0
		t.hdr = &link
		holder[target] = name
	}
}
