package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/rapidfort/kimia/engine"
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
		path := filepath.Join(k.dir, config.ConfigFileName)
		f, err := os.Open(path)
		if err != nil {
			k.err = engine.Errorf(engine.KindAuth, "reading the docker config %s: %v; make it readable, or set DOCKER_CONFIG to another directory", path, unwrapPath(err))
			return
		}
		defer f.Close()
		k.cf, err = config.LoadFromReader(f)
		if err != nil {
			k.cf = nil
			k.err = engine.Errorf(engine.KindAuth, "the docker config %s is not valid JSON (%v); correct it, or set DOCKER_CONFIG to a directory whose config.json is", path, jsonProblem(err))
			return
		}
		k.cf.Filename = path
	})
	return k.cf, k.err
}

// Check reads the docker config now, so that a config that cannot be
// read fails before anything is built, naming the file.
func (k *Keychain) Check() error {
	_, err := k.load()
	return err
}

// jsonProblem says where a JSON document went wrong.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v, at byte %d", se, se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%v, at byte %d", te, te.Offset)
	}
	return err.Error()
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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
