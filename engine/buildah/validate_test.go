package buildah

import (
	"strings"
	"testing"

	"github.com/rapidfort/kimia/engine"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  engine.Request
		want string // "" for no error
	}{
		{"a good request", engine.Request{EngineOptions: []engine.KeyValue{{Key: "jobs", Value: "2"}}, Cache: engine.Cache{Repo: "r.example/cache"}}, ""},
		{"an unknown engine option", engine.Request{EngineOptions: []engine.KeyValue{{Key: "frobnicate", Value: "1"}}}, engine.FieldEngineOptions.String() + " frobnicate"},
		{"a bad cache repository", engine.Request{Cache: engine.Cache{Repo: "r.example/UPPER"}}, engine.FieldCacheRepo.String()},
		{"a tagged cache repository", engine.Request{Cache: engine.Cache{Repo: "r.example/cache:1"}}, "without a tag"},
		{"an unknown storage driver", engine.Request{StorageDriver: "btrfs"}, engine.FieldStorageDriver.String()},
		{"a secret without a source", engine.Request{Secrets: []engine.Secret{{ID: "t"}}}, "give src=FILE or env=VARIABLE"},
		{"a secret from an unset variable", engine.Request{Secrets: []engine.Secret{{ID: "t", Env: "KIMIA_TEST_UNSET_VARIABLE"}}}, "the environment variable is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := New().Validate(&tc.req)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || engine.KindOf(err) != engine.KindUsage):
				t.Errorf("error %v, want a usage error containing %q", err, tc.want)
			}
		})
	}
}
