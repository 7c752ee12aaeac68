package buildah

import (
	"os"

	"go.podman.io/image/v5/docker/reference"

	"github.com/rapidfort/kimia/engine"
)

// Validate implements engine.Validator: what the options, the store and
// the secrets would refuse, checked before the context is fetched and the
// store opened.
func (e *Engine) Validate(req *engine.Request) error {
	if _, err := parseOptions(req.EngineOptions); err != nil {
		return err
	}
	switch req.StorageDriver {
	case "", "native", "overlay":
	default:
		return badStorageDriver(req.StorageDriver)
	}
	if req.Cache.Repo != "" {
		if _, err := cacheRepository(req.Cache.Repo); err != nil {
			return err
		}
	}
	for _, s := range req.Secrets {
		if err := checkSecret(s); err != nil {
			return err
		}
	}
	for _, s := range req.SSH {
		if len(s.Paths) == 0 && os.Getenv("SSH_AUTH_SOCK") == "" {
			return noAgent(s)
		}
	}
	return nil
}

func badStorageDriver(d string) error {
	return engine.Errorf(engine.KindUsage, "%s=%s: want native or overlay", engine.FieldStorageDriver, d)
}

// cacheRepository parses the cache repository: a name without a tag or
// digest (Buildah tags it by each step's cache key).
func cacheRepository(repo string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, engine.Errorf(engine.KindUsage, "%s %q: %v", engine.FieldCacheRepo, repo, err)
	}
	if !reference.IsNameOnly(named) {
		return nil, engine.Errorf(engine.KindUsage, "%s %q: give a repository without a tag or digest", engine.FieldCacheRepo, repo)
	}
	return named, nil
}

func checkSecret(s engine.Secret) error {
	switch {
	case s.Env == "" && s.Src == "":
		return engine.Errorf(engine.KindUsage, "%s id=%s: give src=FILE or env=VARIABLE", engine.FieldSecrets, s.ID)
	case s.Env != "":
		if _, ok := os.LookupEnv(s.Env); !ok {
			return engine.Errorf(engine.KindUsage, "%s id=%s,env=%s: the environment variable is not set", engine.FieldSecrets, s.ID, s.Env)
		}
	}
	return nil
}

func noAgent(s engine.SSH) error {
	return engine.Errorf(engine.KindUsage, "%s %s: SSH_AUTH_SOCK is not set; start an agent or give key files (%s %s=KEYFILE)", engine.FieldSSH, s.ID, engine.FieldSSH, s.ID)
}
