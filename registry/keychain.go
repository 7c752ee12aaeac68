package registry

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Keychain resolves registry credentials from one docker config
// directory, including credHelpers and credsStore. Both engines are given
// the same directory, so pulls and pushes use the same credentials.
type Keychain struct {
	dir  string
	once sync.Once
	cf   *configfile.ConfigFile
	err  error
}

var _ authn.Keychain = (*Keychain)(nil)

// NewKeychain reads credentials from dir/config.json; an empty dir means
// anonymous access.
func NewKeychain(dir string) *Keychain { return &Keychain{dir: dir} }

// Dir is the docker config directory, or "".
func (k *Keychain) Dir() string { return k.dir }

func (k *Keychain) load() (*configfile.ConfigFile, error) {
	k.once.Do(func() {
		if k.dir == "" {
			return
		}
		f, err := os.Open(filepath.Join(k.dir, config.ConfigFileName))
		if err != nil {
			k.err = err
			return
		}
		defer f.Close()
		k.cf, k.err = config.LoadFromReader(f)
		if k.cf != nil {
			k.cf.Filename = filepath.Join(k.dir, config.ConfigFileName)
		}
	})
	return k.cf, k.err
}

// Resolve implements authn.Keychain.
func (k *Keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	cf, err := k.load()
	if err != nil {
		return nil, err
	}
	if cf == nil {
		return authn.Anonymous, nil
	}
	key := target.RegistryStr()
	if key == name.DefaultRegistry {
		key = authn.DefaultAuthKey
	}
	ac, err := cf.GetAuthConfig(key)
	if err != nil {
		return nil, err
	}
	if ac == (types.AuthConfig{ServerAddress: ac.ServerAddress}) {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	}), nil
}
