//go:build e2e

package e2e

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rapidfort/kimia/engine"
)

// cacheDockerfile has steps whose cache hits are easy to see: a RUN that
// writes a random id, so a rebuild served from cache keeps the old one.
func cacheDockerfile(sb *Sandbox) map[string]string {
	return map[string]string{
		"Dockerfile": "FROM " + sb.Busybox() + "\n" +
			"RUN cat /proc/sys/kernel/random/uuid > /built-at\n" +
			"COPY a.txt /a.txt\n" +
			"RUN cat /a.txt /built-at > /combined\n",
		"a.txt": "one\n",
	}
}

func TestCachedRebuildIsServedFromCache(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureLocalCache)
		ctx := sb.Context(cacheDockerfile(sb))
		cacheDir := sb.Join("cache")
		args := []string{"--cache", "--cache-dir=" + cacheDir, "--no-push-cache"}
		_, ref1, md1 := buildAndPush(t, sb, "cached", ctx, args...)
		if md1.Cache == nil || md1.Cache.Steps < 3 || md1.Cache.Cached != 0 {
			t.Errorf("first build: cache stats %+v, want 3 or more steps, none cached", md1.Cache)
		}
		r, ref2, md2 := buildAndPush(t, sb, "cached", ctx, args...)
		if md2.Cache == nil || md2.Cache.Steps != md1.Cache.Steps || md2.Cache.Cached != md2.Cache.Steps {
			t.Errorf("rebuild: cache stats %+v, want all %d steps cached", md2.Cache, md1.Cache.Steps)
		}
		f1 := Files(t, sb.Registry.Image(t, ref1))
		f2 := Files(t, sb.Registry.Image(t, ref2))
		if f1["built-at"].Content == "" || f1["built-at"].Content != f2["built-at"].Content {
			t.Errorf("RUN ran again: /built-at %q then %q", f1["built-at"].Content, f2["built-at"].Content)
		}
		if !strings.Contains(strings.ToLower(r.Stderr), "cache") {
			t.Errorf("the rebuild's progress does not mention the cache:\n%s", r.Stderr)
		}

		// A changed file re-runs what depends on it, not what precedes it.
		os.WriteFile(ctx+"/a.txt", []byte("two\n"), 0o644)
		_, ref3, md3 := buildAndPush(t, sb, "cached", ctx, args...)
		f3 := Files(t, sb.Registry.Image(t, ref3))
		if f3["built-at"].Content != f1["built-at"].Content {
			t.Errorf("the first RUN ran again although nothing it depends on changed")
		}
		if !strings.HasPrefix(f3["combined"].Content, "two\n") {
			t.Errorf("/combined = %q, want the new a.txt", f3["combined"].Content)
		}
		if md3.Cache == nil || md3.Cache.Cached == 0 || md3.Cache.Cached >= md3.Cache.Steps {
			t.Errorf("after a change: cache stats %+v, want some but not all steps cached", md3.Cache)
		}

		// Without --cache nothing is reused.
		_, ref4, md4 := buildAndPush(t, sb, "uncached", ctx)
		if f4 := Files(t, sb.Registry.Image(t, ref4)); f4["built-at"].Content == f3["built-at"].Content {
			t.Errorf("a build without --cache reused a cached RUN")
		}
		if md4.Cache != nil && md4.Cache.Cached != 0 {
			t.Errorf("a build without --cache reports %d cached steps", md4.Cache.Cached)
		}
		assertNoLeftovers(t, sb)
	})
}

func TestCacheRepoIsReusedFromFreshState(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureRegistryCache)
		ctx := sb.Context(cacheDockerfile(sb))
		cacheRepo := sb.Registry.Ref(freshRepo(sb, "cache"))
		_, ref1, _ := buildAndPush(t, sb, "cacherepo", ctx, "--cache", "--cache-repo="+cacheRepo, "--cache-dir="+sb.Join("state-a"))
		repo := strings.TrimPrefix(cacheRepo, sb.Registry.Host+"/")
		if tags := sb.Registry.Tags(t, repo); len(tags) == 0 {
			t.Fatalf("--cache-repo %s holds no cache after the first build", cacheRepo)
		}
		// A second machine: a fresh state dir, the same registry cache.
		_, ref2, md2 := buildAndPush(t, sb, "cacherepo", ctx, "--cache", "--cache-repo="+cacheRepo, "--cache-dir="+sb.Join("state-b"))
		f1 := Files(t, sb.Registry.Image(t, ref1))
		f2 := Files(t, sb.Registry.Image(t, ref2))
		if f1["built-at"].Content != f2["built-at"].Content {
			t.Errorf("the RUN ran again instead of coming from --cache-repo: %q then %q", f1["built-at"].Content, f2["built-at"].Content)
		}
		if md2.Cache == nil || md2.Cache.Cached == 0 {
			t.Errorf("second build: cache stats %+v, want cached steps", md2.Cache)
		}
	})
}

func TestNoPushCacheLeavesTheCacheRepoAlone(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureRegistryCache)
		ctx := sb.Context(cacheDockerfile(sb))
		cacheRepo := sb.Registry.Ref(freshRepo(sb, "nopushcache"))
		buildAndPush(t, sb, "nopushcache", ctx, "--cache", "--cache-repo="+cacheRepo, "--no-push-cache")
		if tags := sb.Registry.Tags(t, strings.TrimPrefix(cacheRepo, sb.Registry.Host+"/")); len(tags) != 0 {
			t.Errorf("--no-push-cache pushed cache tags %v", tags)
		}
	})
}

func TestKanikoDefaultCacheRepo(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureRegistryCache)
		ctx := sb.Context(cacheDockerfile(sb))
		// --cache with a destination and no --cache-repo caches in
		// <destination>/cache, as Kaniko does.
		_, ref, _ := buildAndPush(t, sb, "defaultcache", ctx, "--cache", "--cache-dir="+sb.Join("state"))
		repo := strings.TrimPrefix(strings.TrimSuffix(ref, ":latest"), sb.Registry.Host+"/") + "/cache"
		if tags := sb.Registry.Tags(t, repo); len(tags) == 0 {
			t.Errorf("no cache in %s, Kaniko's default cache repository", repo)
		}
	})
}

func TestConcurrentBuildsOnOneCacheDir(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureLocalCache)
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM " + sb.Busybox() + "\nRUN sleep 4 && date > /t\n"})
		cacheDir := sb.Join("shared-cache")
		var wg sync.WaitGroup
		results := make([]*Result, 2)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i == 1 {
					time.Sleep(1500 * time.Millisecond)
				}
				results[i] = sb.KimiaContext(context.Background(), nil, "--context="+ctx, "--no-push", "--cache", "--cache-dir="+cacheDir)
			}()
		}
		wg.Wait()
		if results[0].Code != 0 {
			t.Fatalf("first build failed:\n%s", results[0])
		}
		// The second either shares the cache dir or refuses clearly; it
		// never corrupts it or hangs.
		if r := results[1]; r.Code != 0 {
			if r.Code != 8 || !strings.Contains(r.Stderr, "--cache-dir") || !strings.Contains(r.Stderr, "in use") {
				t.Errorf("second build on a busy --cache-dir: want success, or exit 8 saying the cache dir is in use:\n%s", r)
			}
		}
		// And the cache dir still works.
		if r := sb.Kimia("--context="+ctx, "--no-push", "--cache", "--cache-dir="+cacheDir); r.Code != 0 {
			t.Errorf("build after the concurrent ones failed:\n%s", r)
		}
		assertNoLeftovers(t, sb)
	})
}
