//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/rapidfort/kimia/engine"
)

const platformDockerfile = `ARG TARGETPLATFORM
ARG BUILDPLATFORM
ARG TARGETARCH
RUN echo "target=$TARGETPLATFORM build=$BUILDPLATFORM arch=$TARGETARCH machine=$(uname -m)" > /platform.txt
COPY hello.txt /hello.txt
`

func TestTwoPlatformIndex(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureMultiPlatform)
		ctx := sb.Context(map[string]string{
			"Dockerfile": "FROM " + sb.Busybox() + "\n" + platformDockerfile,
			"hello.txt":  "hello\n",
		})
		_, ref, md := buildAndPush(t, sb, "twoplatforms", ctx, "--platform=linux/amd64,linux/arm64")
		idx := sb.Registry.Index(t, ref)
		for _, tc := range []struct{ platform, arch, machine string }{
			{"linux/amd64", "amd64", "x86_64"},
			{"linux/arm64", "arm64", "aarch64"},
		} {
			img := PlatformImage(t, idx, tc.platform)
			cf := Config(t, img)
			if cf.Architecture != tc.arch || cf.OS != "linux" {
				t.Errorf("%s image says %s/%s", tc.platform, cf.OS, cf.Architecture)
			}
			files := Files(t, img)
			want := "target=" + tc.platform + " build=" + engine.HostPlatform().String() + " arch=" + tc.arch + " machine=" + tc.machine + "\n"
			if got := files["platform.txt"].Content; got != want {
				t.Errorf("%s: the RUN step wrote %q, want %q", tc.platform, got, want)
			}
			fileIs(t, files, "hello.txt", "hello\n", 0, 0, 0)
			// The base layer is the platform's own busybox.
			if f := files["bin/busybox"]; f.Size == 0 {
				t.Errorf("%s image lacks /bin/busybox", tc.platform)
			}
		}
		var plats []string
		for _, p := range md.Platforms {
			plats = append(plats, p.Platform)
		}
		if strings.Join(plats, ",") != "linux/amd64,linux/arm64" {
			t.Errorf("metadata platforms = %v", plats)
		}
		if !strings.Contains(md.MediaType, "index") {
			t.Errorf("metadata media type %s, want an index", md.MediaType)
		}
	})
}

func TestCustomPlatformBuildsOneForeignImage(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureMultiPlatform)
		ctx := sb.Context(map[string]string{
			"Dockerfile": "FROM " + sb.Busybox() + "\n" + platformDockerfile,
			"hello.txt":  "hello\n",
		})
		// Kaniko's spelling; one platform gives one image, not an index.
		_, ref, _ := buildAndPush(t, sb, "customplatform", ctx, "--custom-platform=linux/arm64")
		d := sb.Registry.Descriptor(t, ref)
		if !d.MediaType.IsImage() {
			t.Fatalf("%s is a %s, want a single image", ref, d.MediaType)
		}
		img, err := d.Image()
		if err != nil {
			t.Fatal(err)
		}
		if cf := Config(t, img); cf.Architecture != "arm64" {
			t.Errorf("architecture %s, want arm64", cf.Architecture)
		}
		if got := Files(t, img)["platform.txt"].Content; !strings.Contains(got, "machine=aarch64") {
			t.Errorf("the RUN step did not run as arm64: %q", got)
		}
	})
}

func TestCrossCompileStageRunsOnTheBuildPlatform(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		sb.Require(engine.FeatureMultiPlatform)
		ctx := sb.Context(map[string]string{"Dockerfile": "FROM --platform=$BUILDPLATFORM " + sb.Busybox() + " AS build\n" +
			"ARG TARGETARCH\nRUN echo \"built on $(uname -m) for $TARGETARCH\" > /out\n" +
			"FROM " + sb.Busybox() + "\nCOPY --from=build /out /out\n"})
		_, ref, _ := buildAndPush(t, sb, "crosscompile", ctx, "--platform=linux/amd64,linux/arm64")
		idx := sb.Registry.Index(t, ref)
		if got := Files(t, PlatformImage(t, idx, "linux/arm64"))["out"].Content; got != "built on x86_64 for arm64\n" {
			t.Errorf("arm64 image's /out = %q, want the build stage to run natively", got)
		}
	})
}
