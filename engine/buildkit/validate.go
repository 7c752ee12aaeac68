package buildkit

import (
	"os"

	"github.com/rapidfort/kimia/engine"
)

// Validate implements engine.Validator: what translate and the session
// would refuse, checked before the context is fetched and buildkitd
// started.
func (e *Engine) Validate(req *engine.Request) error {
	if _, err := engineOptions(req.EngineOptions); err != nil {
		return err
	}
	if req.Cache.Repo != "" {
		if _, _, err := cacheRef(req.Cache.Repo); err != nil {
			return err
		}
	}
	for _, s := range req.Secrets {
		if err := checkSecretEnv(s); err != nil {
			return err
		}
	}
	return nil
}

func checkSecretEnv(s engine.Secret) error {
	if s.Env != "" {
		if _, ok := os.LookupEnv(s.Env); !ok {
			return engine.Errorf(engine.KindUsage, "%s id=%s,env=%s: the environment variable is not set", engine.FieldSecrets, s.ID, s.Env)
		}
	}
	return nil
}
