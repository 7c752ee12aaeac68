//go:build e2e

package e2e

import (
	"archive/tar"
	"io"
	"strconv"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rapidfort/kimia/engine"
)

func reproducibleContext(sb *Sandbox) string {
	return sb.Context(map[string]string{
		"Dockerfile": "FROM " + sb.Busybox() + "\n" +
			"COPY app/ /app/\n" +
			"RUN echo built > /app/built && mkdir -p /var/lib/app && touch /var/lib/app/state\n" +
			"LABEL org.example.name=repro\n",
		"app/a.txt":     "a\n",
		"app/sub/b.txt": "b\n",
	})
}

// addedLayerTimes returns the modification times of the files in the
// layers the build added on top of the one-layer busybox base.
func addedLayerTimes(t *testing.T, img v1.Image) map[string]time.Time {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, l := range layers[1:] {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = h.ModTime
		}
		rc.Close()
	}
	return out
}

func checkEpoch(t *testing.T, img v1.Image, epoch time.Time) {
	t.Helper()
	cf := Config(t, img)
	if !cf.Created.Time.Equal(epoch) {
		t.Errorf("created = %s, want %s", cf.Created.Time.UTC(), epoch.UTC())
	}
	for _, h := range cf.History {
		if h.Created.Time.After(epoch) {
			t.Errorf("history entry %q created %s, after the epoch", h.CreatedBy, h.Created.Time.UTC())
		}
	}
	times := addedLayerTimes(t, img)
	if len(times) == 0 {
		t.Fatalf("the build added no files")
	}
	for name, mt := range times {
		if mt.After(epoch) {
			t.Errorf("%s has mtime %s, after the epoch %s", name, mt.UTC(), epoch.UTC())
		}
	}
}

func TestReproducibleBuildsHaveEqualDigests(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureReproducible)
		ctx := reproducibleContext(sb)
		_, ref1, md1 := buildAndPush(t, sb, "repro", ctx, "--reproducible")
		time.Sleep(1100 * time.Millisecond) // so that a leaked clock shows
		_, _, md2 := buildAndPush(t, sb, "repro", ctx, "--reproducible")
		// Two more, each with a fresh state (cache) dir of its own.
		_, _, md3 := buildAndPush(t, sb, "repro", ctx, "--reproducible", "--cache", "--cache-dir="+sb.Join("state-a"), "--no-push-cache")
		_, _, md4 := buildAndPush(t, sb, "repro", ctx, "--reproducible", "--cache", "--cache-dir="+sb.Join("state-b"), "--no-push-cache")
		for i, md := range []string{md2.Digest, md3.Digest, md4.Digest} {
			if md != md1.Digest {
				t.Errorf("build %d: digest %s, first build %s", i+2, md, md1.Digest)
			}
		}
		checkEpoch(t, sb.Registry.Image(t, ref1), time.Unix(0, 0))
	})
}

func TestTimestampAndSourceDateEpoch(t *testing.T) {
	const epoch = 1700000000
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureReproducible)
		ctx := reproducibleContext(sb)
		_, ref1, md1 := buildAndPush(t, sb, "timestamp", ctx, "--timestamp="+strconv.Itoa(epoch))
		checkEpoch(t, sb.Registry.Image(t, ref1), time.Unix(epoch, 0))

		sb.Env = append(sb.Env, "SOURCE_DATE_EPOCH="+strconv.Itoa(epoch))
		_, _, md2 := buildAndPush(t, sb, "timestamp", ctx, "--reproducible")
		if md2.Digest != md1.Digest {
			t.Errorf("SOURCE_DATE_EPOCH=%d gave %s, --timestamp=%d gave %s", epoch, md2.Digest, epoch, md1.Digest)
		}
		if md1.Created != "2023-11-14T22:13:20Z" {
			t.Errorf("metadata created = %q", md1.Created)
		}
	})
}
