package buildah

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.podman.io/storage"
)

func TestPruneCacheKeepsNamedImagesAndLayersOthersUse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("containers/storage needs root (or a user namespace) outside kimia-bud's re-exec")
	}
	dir := t.TempDir()
	s, err := storage.GetStore(storage.StoreOptions{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), GraphDriverName: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(true)
	layer := func(parent string) string {
		l, err := s.CreateLayer("", parent, nil, "", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return l.ID
	}
	image := func(top string, names ...string) string {
		img, err := s.CreateImage("", names, top, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		return img.ID
	}
	base := layer("")
	baseImg := image(base, "example.com/base:1")
	step1 := layer(base)
	step1Img := image(step1)
	step2 := layer(step1)
	step2Img := image(step2)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	pruneCache(s, time.Hour, log)
	for _, id := range []string{baseImg, step1Img, step2Img} {
		if _, err := s.Image(id); err != nil {
			t.Errorf("a fresh image was pruned: %v", err)
		}
	}
	time.Sleep(10 * time.Millisecond)
	pruneCache(s, time.Millisecond, log)
	if _, err := s.Image(baseImg); err != nil {
		t.Errorf("the named base image was pruned: %v", err)
	}
	for _, id := range []string{step1Img, step2Img} {
		if _, err := s.Image(id); err == nil {
			t.Errorf("an expired step image %s was kept", id)
		}
	}
	if _, err := s.Layer(base); err != nil {
		t.Errorf("the base image's layer was removed: %v", err)
	}
	if _, err := s.Layer(step2); err == nil {
		t.Errorf("the expired step's layer was kept")
	}
}
