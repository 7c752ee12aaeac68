package buildah

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/BurntSushi/toml"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"

	"github.com/rapidfort/kimia/engine"
)

func TestRegistriesConf(t *testing.T) {
	tests := []struct {
		name      string
		rc        engine.RegistryConfig
		cacheRepo string
		want      []tomlRegistry
	}{
		{
			name: "nothing configured writes the search registry and plain HTTP for loopback registries",
		},
		{
			name: "insecure and skip-verify registries are insecure, a CA alone is not",
			rc: engine.RegistryConfig{
				InsecureRegistries:      []string{"a:5000"},
				SkipTLSVerifyRegistries: []string{"b.example"},
				Certificates:            []engine.HostFile{{Host: "c.example", Path: "/ca.pem"}},
			},
			want: []tomlRegistry{
				{Prefix: "a:5000", Location: "a:5000", Insecure: true},
				{Prefix: "b.example", Location: "b.example", Insecure: true},
				// a CA alone needs no entry: certs.d carries it
			},
		},
		{
			name:      "--insecure (push) matters for the cache repo only",
			rc:        engine.RegistryConfig{Insecure: true},
			cacheRepo: "cache.example:5000/app/cache",
			want:      []tomlRegistry{{Prefix: "cache.example:5000", Location: "cache.example:5000", Insecure: true}},
		},
		{
			name: "registry mirrors serve Docker Hub, in order, with their own insecure flags",
			rc: engine.RegistryConfig{
				Mirrors:            mirrors("mirror.gcr.io", "http://local:5000/hub"),
				InsecureRegistries: []string{"local:5000"},
			},
			want: []tomlRegistry{
				{Prefix: "docker.io", Location: "docker.io", Mirrors: []tomlMirror{{Location: "mirror.gcr.io"}, {Location: "local:5000/hub", Insecure: true}}},
				{Prefix: "local:5000", Location: "local:5000", Insecure: true},
			},
		},
		{
			name: "skipping the default registry makes the first mirror the location",
			rc: engine.RegistryConfig{
				Mirrors:                     mirrors("m1.example", "m2.example"),
				SkipDefaultRegistryFallback: true,
			},
			want: []tomlRegistry{
				{Prefix: "docker.io", Location: "m1.example", Mirrors: []tomlMirror{{Location: "m2.example"}}},
			},
		},
		{
			name: "a registry map redirects any registry",
			rc: engine.RegistryConfig{
				Maps: []engine.RegistryMap{{From: "quay.io", To: mirrors("q1.example/quay")}, {From: "index.docker.io", To: mirrors("d.example")}},
			},
			want: []tomlRegistry{
				{Prefix: "docker.io", Location: "docker.io", Mirrors: []tomlMirror{{Location: "d.example"}}},
				{Prefix: "quay.io", Location: "quay.io", Mirrors: []tomlMirror{{Location: "q1.example/quay"}}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := registriesConf(&tc.rc, tc.cacheRepo)
			if err != nil {
				t.Fatal(err)
			}
			var got tomlConf
			if _, err := toml.Decode(string(b), &got); err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if !reflect.DeepEqual(got.UnqualifiedSearchRegistries, []string{"docker.io"}) {
				t.Errorf("search registries = %v", got.UnqualifiedSearchRegistries)
			}
			want := tc.want
			for _, h := range []string{"127.0.0.1", "[::1]", "localhost"} {
				want = append(want, tomlRegistry{Prefix: h, Location: h, Insecure: true})
			}
			sort.Slice(want, func(i, j int) bool { return want[i].Prefix < want[j].Prefix })
			if !reflect.DeepEqual(got.Registries, want) {
				t.Errorf("registries:\n got  %+v\n want %+v\n%s", got.Registries, want, b)
			}
			// containers/image must accept what was written.
			path := filepath.Join(t.TempDir(), "registries.conf")
			os.WriteFile(path, b, 0o600)
			sys := &types.SystemContext{SystemRegistriesConfPath: path, SystemRegistriesConfDirPath: t.TempDir()}
			sysregistriesv2.InvalidateCache()
			if _, err := sysregistriesv2.GetRegistries(sys); err != nil {
				t.Errorf("containers/image rejects the file: %v\n%s", err, b)
			}
		})
	}
}

func TestRegistryFilesAndSystemContext(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, []byte("x"), 0o600)
	rc := &engine.RegistryConfig{
		InsecurePull:    true,
		Certificates:    []engine.HostFile{{Host: "reg:5000", Path: ca}},
		ClientCerts:     []engine.ClientCert{{Host: "docker.io", Cert: ca, Key: ca}},
		DockerConfigDir: "/home/u/.docker",
	}
	f, err := writeRegistryFiles(filepath.Join(dir, "config"), rc, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		filepath.Join(f.CertsDir, "reg:5000", "kimia-0.crt"),
		filepath.Join(f.CertsDir, "registry-1.docker.io", "kimia-client-0.cert"),
		filepath.Join(f.CertsDir, "registry-1.docker.io", "kimia-client-0.key"),
		f.PolicyPath, f.RegistriesConf, f.ContainersConf,
	} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
	sys := f.systemContext(rc)
	if sys.AuthFilePath != "/home/u/.docker/config.json" {
		t.Errorf("AuthFilePath = %q", sys.AuthFilePath)
	}
	if sys.DockerInsecureSkipTLSVerify != types.OptionalBoolTrue {
		t.Errorf("--insecure-pull does not turn off verification")
	}
	if sys.SystemRegistriesConfDirPath == "" || sys.SignaturePolicyPath != f.PolicyPath {
		t.Errorf("host configuration may leak in: %+v", sys)
	}

	noCreds, err := writeRegistryFiles(filepath.Join(dir, "config2"), &engine.RegistryConfig{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(noCreds.AuthFile); !os.IsNotExist(err) || filepath.Dir(noCreds.AuthFile) != noCreds.Dir {
		t.Errorf("without a docker config the auth file must be a private, missing file: %q", noCreds.AuthFile)
	}

	_, err = writeRegistryFiles(filepath.Join(dir, "config3"), &engine.RegistryConfig{Certificates: []engine.HostFile{{Host: "r", Path: "/nonexistent.pem"}}}, "")
	if err == nil {
		t.Error("a missing certificate file is accepted")
	}
}

// mirrors parses mirrors as the CLI does.
func mirrors(ss ...string) []engine.Mirror {
	var out []engine.Mirror
	for _, s := range ss {
		m, err := engine.ParseMirror(s)
		if err != nil {
			panic(err)
		}
		out = append(out, m)
	}
	return out
}
