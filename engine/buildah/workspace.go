package buildah

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rapidfort/kimia/engine"
)

// workspace is one build's temporary directory: the generated
// configuration, Buildah's scratch files (TMPDIR), the export area and,
// without a cache, the store. close removes all of it.
type workspace struct {
	dir   string
	files *registryFiles
	// emptyIgnore stands for a missing .dockerignore, so that Buildah
	// does not look for a .containerignore; mountsFile replaces
	// /etc/containers/mounts.conf.
	emptyIgnore, mountsFile string
	restoreEnv              func()
}

func newWorkspace(req *engine.Request, rootless bool) (_ *workspace, err error) {
	dir, err := os.MkdirTemp("", "kimia-bud-")
	if err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, fmt.Errorf("creating a temporary directory: %w", err))
	}
	ws := &workspace{dir: dir, restoreEnv: func() {}}
	defer func() {
		if err != nil {
			ws.close()
		}
	}()
	for _, d := range []string{"tmp", "config", "export"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, engine.Wrap(engine.KindEnvironment, err)
		}
	}
	if ws.files, err = writeRegistryFiles(filepath.Join(dir, "config"), &req.Registry, req.Cache.Repo); err != nil {
		return nil, engine.Wrap(engine.KindEnvironment, err)
	}
	if req.Cache.Enabled && req.Cache.Dir != "" {
		// containers/image remembers there which compressed blob each
		// layer became and where it was pushed, so that pushing a cached
		// step's image to the cache repository again finds its blobs there
		// instead of compressing and uploading them again.
		ws.files.BlobInfoCache = filepath.Join(req.Cache.Dir, "buildah", "blob-info-cache")
		if err := os.MkdirAll(ws.files.BlobInfoCache, 0o700); err != nil {
			return nil, engine.Wrap(engine.KindEnvironment, fmt.Errorf("%s: %w", engine.FieldCacheDir, err))
		}
	}
	ws.emptyIgnore = filepath.Join(ws.files.Dir, "empty.dockerignore")
	ws.mountsFile = filepath.Join(ws.files.Dir, "mounts.conf")
	for _, p := range []string{ws.emptyIgnore, ws.mountsFile} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			return nil, engine.Wrap(engine.KindEnvironment, err)
		}
	}
	// Buildah and containers/common read these on their own, outside the
	// SystemContext; point them at the generated files, and keep Buildah's
	// scratch files in the build's temporary directory.
	ws.restoreEnv = setenv(map[string]string{
		"CONTAINERS_CONF":            ws.files.ContainersConf,
		"CONTAINERS_REGISTRIES_CONF": ws.files.RegistriesConf,
		"TMPDIR":                     filepath.Join(dir, "tmp"),
	})
	if rootless {
		if _, err := prepareRuntimeDir(dir); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

func (ws *workspace) close() error {
	ws.restoreEnv()
	if err := os.RemoveAll(ws.dir); err != nil {
		return engine.Wrap(engine.KindEnvironment, fmt.Errorf("removing %q: %w", ws.dir, err))
	}
	return nil
}

// setenv sets variables and returns a function that restores the old
// values.
func setenv(vars map[string]string) func() {
	type old struct {
		v  string
		ok bool
	}
	saved := map[string]old{}
	for k, v := range vars {
		ov, ok := os.LookupEnv(k)
		saved[k] = old{ov, ok}
		os.Setenv(k, v)
	}
	return func() {
		for k, o := range saved {
			if o.ok {
				os.Setenv(k, o.v)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}
