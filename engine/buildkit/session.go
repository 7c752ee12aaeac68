package buildkit

import (
	"path/filepath"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"

	"github.com/rapidfort/kimia/engine"
)

// attachables are the services kimia's side of the BuildKit session
// offers the daemon: registry credentials, secret values and SSH
// agents. They are served from the kimia process on demand, so secrets
// never reach buildkitd's command line, environment, configuration or
// state, and never an image layer.
func attachables(req *engine.Request, daemon daemonConfig) ([]session.Attachable, error) {
	cf, err := dockerConfig(req.Registry.DockerConfigDir)
	if err != nil {
		return nil, err
	}
	out := []session.Attachable{authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: authprovider.LoadAuthConfig(cf),
		TLSConfigs:         tokenTLS(daemon),
	})}

	if len(req.Secrets) > 0 {
		var srcs []secretsprovider.Source
		for _, s := range req.Secrets {
			src := secretsprovider.Source{ID: s.ID, FilePath: s.Src, Env: s.Env}
			if err := checkSecretEnv(s); err != nil {
				return nil, err
			}
			srcs = append(srcs, src)
		}
		store, err := secretsprovider.NewStore(srcs)
		if err != nil {
			return nil, engine.Errorf(engine.KindUsage, "%s: %v", engine.FieldSecrets, err)
		}
		out = append(out, secretsprovider.NewSecretProvider(store))
	}

	if len(req.SSH) > 0 {
		var confs []sshprovider.AgentConfig
		for _, s := range req.SSH {
			confs = append(confs, sshprovider.AgentConfig{ID: s.ID, Paths: s.Paths})
		}
		sp, err := sshprovider.NewSSHAgentProvider(confs)
		if err != nil {
			return nil, engine.Errorf(engine.KindUsage, "%s: %v", engine.FieldSSH, err)
		}
		out = append(out, sp)
	}
	return out, nil
}

// dockerConfig loads the docker config.json kimia found (the same one the
// shared push uses); an empty dir means no credentials.
func dockerConfig(dir string) (*configfile.ConfigFile, error) {
	if dir == "" {
		return configfile.New(""), nil
	}
	cf, err := config.Load(dir)
	if err != nil {
		return nil, engine.Errorf(engine.KindAuth, "reading registry credentials %q: %w", filepath.Join(dir, config.ConfigFileName), err)
	}
	return cf, nil
}

// tokenTLS lets the session reach token servers on the registries kimia
// has TLS settings for: the client fetches tokens itself, so the
// credentials stay in this process.
func tokenTLS(d daemonConfig) map[string]*authprovider.AuthTLSConfig {
	out := map[string]*authprovider.AuthTLSConfig{}
	for host, s := range d.Registry {
		c := &authprovider.AuthTLSConfig{RootCAs: s.RootCAs, Insecure: s.Insecure != nil && *s.Insecure}
		for _, kp := range s.KeyPairs {
			c.KeyPairs = append(c.KeyPairs, authprovider.TLSKeyPair{Key: kp.Key, Certificate: kp.Certificate})
		}
		out[host] = c
	}
	return out
}
