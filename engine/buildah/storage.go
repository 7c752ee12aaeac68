package buildah

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"go.podman.io/storage"
	"golang.org/x/sys/unix"

	"github.com/rapidfort/kimia/engine"
)

// Graph drivers of containers/storage.
const (
	driverVFS     = "vfs"
	driverOverlay = "overlay"
)

// storeDirs says where one build's store lives.
type storeDirs struct {
	// Base is removed after the build unless Persistent.
	Base       string
	GraphRoot  string
	RunRoot    string
	Persistent bool
}

// storeLocation places the store: under the cache directory, one store
// per driver (a graph root cannot change driver), when caching; in the
// build's temporary directory otherwise.
func storeLocation(c engine.Cache, work, driver string) storeDirs {
	if c.Enabled && c.Dir != "" {
		base := filepath.Join(c.Dir, "buildah", driver)
		return storeDirs{Base: base, GraphRoot: filepath.Join(base, "root"), RunRoot: filepath.Join(base, "runroot"), Persistent: true}
	}
	base := filepath.Join(work, "store")
	return storeDirs{Base: base, GraphRoot: filepath.Join(base, "root"), RunRoot: filepath.Join(base, "runroot")}
}

// openedStore is a store and how it was chosen.
type openedStore struct {
	storage.Store
	Dirs   storeDirs
	Driver string // driverVFS or driverOverlay
	// Name is what the request calls the driver: native or overlay.
	Name string
	// PrivateMounts is set when the process has a mount namespace of its
	// own (the rootless re-exec), so no other build's mounts are visible.
	PrivateMounts bool
	// ClampTimes is the time file times in new layers are clamped to
	// (SOURCE_DATE_EPOCH), for the differ; nil when they are kept.
	ClampTimes *time.Time
}

// openStore opens the store for req. A storage driver asked for must
// work; without one, overlay is used when it mounts here and vfs
// otherwise, and the choice is logged with its reason.
func openStore(req *engine.Request, work string, log *slog.Logger) (*openedStore, error) {
	switch req.StorageDriver {
	case engine.StorageNative:
		return tryStore(req, work, driverVFS, nil)
	case engine.StorageOverlay:
		s, err := openOverlay(req, work, log)
		if err != nil {
			return nil, engine.Errorf(engine.KindEnvironment, "%s=overlay: overlay cannot be mounted here (%v); use %s=native", engine.FieldStorageDriver, err, engine.FieldStorageDriver)
		}
		return s, nil
	case "":
		s, err := openOverlay(req, work, log)
		if err == nil {
			log.Info("storage driver: overlay (probe: overlay mounts here)")
			return s, nil
		}
		log.Info("storage driver: native (vfs); overlay does not work here", "reason", err.Error())
		return tryStore(req, work, driverVFS, nil)
	}
	return nil, badStorageDriver(req.StorageDriver)
}

// openOverlay opens an overlay store with the kernel's overlayfs, and
// with fuse-overlayfs only when the kernel's cannot be used and /dev/fuse
// can. containers/storage probes the mount itself when the driver
// starts, in the graph root's own file system.
func openOverlay(req *engine.Request, work string, log *slog.Logger) (*openedStore, error) {
	s, kernelErr := tryStore(req, work, driverOverlay, nil)
	if kernelErr == nil {
		return s, nil
	}
	prog, err := exec.LookPath("fuse-overlayfs")
	if err != nil {
		return nil, kernelErr
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%v; fuse-overlayfs needs /dev/fuse: %v", kernelErr, err)
	}
	f.Close()
	s, err = tryStore(req, work, driverOverlay, []string{"overlay.mount_program=" + prog})
	if err != nil {
		return nil, fmt.Errorf("kernel overlay: %v; fuse-overlayfs: %v", kernelErr, err)
	}
	log.Info("storage: kernel overlayfs does not work here; using fuse-overlayfs", "reason", kernelErr.Error())
	return s, nil
}

// overlayMountOpts are the overlay mount options kimia-bud uses; the
// naive-diff record below is keyed by them.
const overlayMountOpts = "nodev"

func tryStore(req *engine.Request, work, driver string, opts []string) (*openedStore, error) {
	dirs := storeLocation(req.Cache, work, driver)
	for _, d := range []string{dirs.GraphRoot, dirs.RunRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, engine.Wrap(engine.KindEnvironment, fmt.Errorf("creating the store directory %q: %w", d, err))
		}
	}
	if driver == driverOverlay {
		opts = append(opts, "overlay.mountopt="+overlayMountOpts)
		if err := forceNaiveDiff(dirs.RunRoot); err != nil {
			return nil, engine.Wrap(engine.KindEnvironment, err)
		}
	}
	so := storage.StoreOptions{
		GraphRoot:          dirs.GraphRoot,
		RunRoot:            dirs.RunRoot,
		GraphDriverName:    driver,
		GraphDriverOptions: opts,
		// A store that lives for one build needs no crash safety.
		TransientStore: !dirs.Persistent,
	}
	st, err := storage.GetStore(so)
	if err != nil {
		if !dirs.Persistent {
			os.RemoveAll(dirs.Base)
		}
		return nil, err
	}
	name := engine.StorageNative
	if driver == driverOverlay {
		name = engine.StorageOverlay
	}
	return &openedStore{Store: st, Dirs: dirs, Driver: driver, Name: name}, nil
}

// forceNaiveDiff makes the overlay driver compute layer diffs the way vfs
// does, by comparing the layer with its parent, instead of taking the
// upper directory as it is. The upper directory also holds files that a
// step only touched without changing (chown to the same owner, say), so
// the two drivers would give different layers, and different digests,
// for the same build; BuildKit's differs skip such files too. The
// driver reads its decision from this record in the run root (written
// by containers/storage itself after its own probe), so it is written
// before the store opens.
func forceNaiveDiff(runRoot string) error {
	dir := filepath.Join(runRoot, driverOverlay)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	name := fmt.Sprintf("native-diff(%s)", overlayMountOpts)
	os.Remove(filepath.Join(dir, name+"-true"))
	return os.WriteFile(filepath.Join(dir, name+"-false"), []byte("kimia-bud: naive diff, so that layers do not depend on the storage driver"), 0o600)
}

// close shuts the store down and removes a temporary store. A temporary
// store is this build's alone: every layer is unmounted by force and any
// mount point left under it is detached, so a failed build never leaves a
// mount behind. A store in the cache directory may be shared with other kimia-bud
// processes building at the same time; their layers stay mounted (forcing
// them off would pull the root filesystem from under a running RUN), and
// mount points are swept only where this process has a mount namespace of
// its own (rootless), in which every mount point under the store is ours.
func (s *openedStore) close(log *slog.Logger) error {
	var errs []error
	if !s.Dirs.Persistent {
		if _, err := s.Shutdown(true); err != nil {
			errs = append(errs, fmt.Errorf("shutting down the store: %w", err))
		}
	} else if mounted, err := s.Shutdown(false); err != nil {
		if !errors.Is(err, storage.ErrLayerUsedByContainer) {
			errs = append(errs, fmt.Errorf("shutting down the store: %w", err))
		} else {
			log.Info("cache store still in use by another build; its layers stay mounted", "dir", s.Dirs.Base, "layers", len(mounted))
		}
	}
	if !s.Dirs.Persistent || s.PrivateMounts {
		if err := unmountUnder(s.Dirs.Base); err != nil {
			errs = append(errs, err)
		}
	}
	if !s.Dirs.Persistent {
		if err := os.RemoveAll(s.Dirs.Base); err != nil {
			errs = append(errs, fmt.Errorf("removing the store %q: %w", s.Dirs.Base, err))
		}
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount point below dir, deepest first.
func unmountUnder(dir string) error {
	points, err := mountsUnder(dir)
	if err != nil || len(points) == 0 {
		return err
	}
	var errs []error
	for i := len(points) - 1; i >= 0; i-- {
		if err := unix.Unmount(points[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %q: %w", points[i], err))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points at or below dir in mount order.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir = filepath.Clean(dir)
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, sc.Err()
}

// unescapeMount undoes the octal escapes of /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// pruneCache deletes cached images (the unnamed step images of earlier
// builds) whose newest layer was made longer than ttl ago, before the
// build looks for cache hits: the cache TTL, and a cache directory that does
// not grow without bound. Age is taken from the store's own record of
// when a layer was made: an image's created time may be
// SOURCE_DATE_EPOCH, which is why Buildah's own CacheTTL is not used.
// Layers that newer images build on stay.
func pruneCache(s storage.Store, ttl time.Duration, log *slog.Logger) {
	if ttl <= 0 {
		return
	}
	images, err := s.Images()
	if err != nil {
		log.Debug("listing cached images", "error", err)
		return
	}
	cutoff := time.Now().Add(-ttl)
	n := 0
	for _, img := range images {
		if len(img.Names) > 0 || img.TopLayer == "" {
			continue
		}
		l, err := s.Layer(img.TopLayer)
		if err != nil || l.Created.After(cutoff) {
			continue
		}
		if _, err := s.DeleteImage(img.ID, true); err == nil {
			n++
		}
	}
	if n > 0 {
		log.Info(fmt.Sprintf("cache: removed entries older than %s", engine.FieldCacheTTL), "images", n, "ttl", ttl.String())
	}
}
