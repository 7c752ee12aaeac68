package registry

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rapidfort/kimia/engine"
)

// An index pushed to a second repository of one registry is mounted from
// the first; its platform images must be written there before it.
func TestPushIndexToTwoRepositoriesOfOneRegistry(t *testing.T) {
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer s.Close()
	host := strings.TrimPrefix(s.URL, "http://")
	idx, err := random.Index(100, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	c := New(engine.RegistryConfig{InsecureRegistries: []string{host}}, 0, Backoff{})
	if _, err := c.Push(context.Background(), idx, []string{host + "/a:v1", host + "/b:v1"}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	for _, repo := range []string{"a", "b"} {
		ref, _ := name.NewTag(host+"/"+repo+":v1", name.Insecure)
		got, err := remote.Index(ref)
		if err != nil {
			t.Fatalf("%s: %v", repo, err)
		}
		if d, _ := got.Digest(); d != want {
			t.Errorf("%s serves %s, want %s", repo, d, want)
		}
		im, _ := got.IndexManifest()
		for _, m := range im.Manifests {
			if _, err := remote.Image(ref.Context().Digest(m.Digest.String())); err != nil {
				t.Errorf("%s: platform image %s missing: %v", repo, m.Digest, err)
			}
		}
	}
}
