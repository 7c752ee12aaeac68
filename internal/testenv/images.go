package testenv

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// baseTime is the fixed mtime of every file in the base images, so they
// (and reproducible builds on top of them) have stable digests.
var baseTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// BusyboxTags are the tags the busybox index is pushed under, in
// library/busybox and busybox.
var BusyboxTags = []string{"latest", "1.31", "1.36"}

// PushBusybox makes the busybox base index (linux/amd64 and linux/arm64,
// from Debian's busybox-static) and pushes it to reg as library/busybox
// under BusyboxTags. It returns the index digest.
func PushBusybox(reg *Registry, cacheDir string) (v1.Hash, error) {
	amd64, err := busyboxImage("/bin/busybox", "amd64")
	if err != nil {
		return v1.Hash{}, err
	}
	armBin, err := arm64Busybox(cacheDir)
	if err != nil {
		return v1.Hash{}, err
	}
	arm64, err := busyboxImage(armBin, "arm64")
	if err != nil {
		return v1.Hash{}, err
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	for _, repo := range []string{"library/busybox"} {
		for _, tag := range BusyboxTags {
			ref, err := name.NewTag(reg.Ref(repo+":"+tag), reg.NameOptions()...)
			if err != nil {
				return v1.Hash{}, err
			}
			if err := remote.WriteIndex(ref, idx, reg.Options()...); err != nil {
				return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
			}
		}
	}
	return idx.Digest()
}

// arm64Busybox returns the arm64 busybox binary, unpacked from the
// package hack/fetch-test-assets.sh downloads.
func arm64Busybox(cacheDir string) (string, error) {
	debs, _ := filepath.Glob(filepath.Join(cacheDir, "debs", "busybox-static_*_arm64.deb"))
	if len(debs) == 0 {
		return "", fmt.Errorf("no arm64 busybox-static package in %s/debs: run hack/fetch-test-assets.sh (or hack/setup.sh)", cacheDir)
	}
	dir := filepath.Join(cacheDir, "busybox-arm64")
	bin := filepath.Join(dir, "bin", "busybox")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], tmp).CombinedOutput(); err != nil {
		return "", fmt.Errorf("unpacking %s: %v: %s", debs[0], err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return bin, nil
}

// busyboxImage builds a ~1 MB image: busybox, its applet links, a
// minimal /etc, /tmp, and a dpkg status entry so SBOM tools find a
// package.
func busyboxImage(bin, arch string) (v1.Image, error) {
	content, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("reading %s (Debian package busybox-static): %w", bin, err)
	}
	// The applet list is the same for both architectures (same package
	// version); ask the host's busybox.
	out, err := exec.Command("/bin/busybox", "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dirs := map[string]bool{}
	addDir := func(p string, mode int64) {
		if dirs[p] {
			return
		}
		dirs[p] = true
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, ModTime: baseTime})
	}
	addFile := func(p string, mode int64, data []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(data)), ModTime: baseTime})
		tw.Write(data)
	}
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "var", "var/lib", "var/lib/dpkg", "home", "dev", "proc", "sys"} {
		addDir(d, 0o755)
	}
	addDir("root", 0o700)
	addDir("tmp", 0o1777)
	addFile("bin/busybox", 0o755, content)
	for _, applet := range strings.Fields(string(out)) {
		if applet == "bin/busybox" {
			continue
		}
		if d := filepath.Dir(applet); d != "." {
			addDir(d, 0o755)
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: applet, Linkname: "/bin/busybox", Mode: 0o777, ModTime: baseTime})
	}
	addFile("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nbin:x:2:2:bin:/bin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n"))
	addFile("etc/group", 0o644, []byte("root:x:0:\ndaemon:x:1:\nbin:x:2:\ntty:x:5:\nusers:x:100:\nnogroup:x:65534:\n"))
	addFile("etc/hostname", 0o644, []byte("busybox\n"))
	addFile("var/lib/dpkg/status", 0o644, []byte(fmt.Sprintf(`Package: busybox-static
Status: install ok installed
Priority: optional
Section: shells
Installed-Size: 1959
Maintainer: Debian Install System Team <debian-boot@lists.debian.org>
Architecture: %s
Source: busybox (1:1.35.0-4)
Version: 1:1.35.0-4+deb12u1+b1
Description: Standalone rescue shell with tons of builtin utilities

`, arch)))
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := b.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: baseTime}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Cmd = []string{"sh"}
	return mutate.ConfigFile(img, cf)
}

// PushDebian pushes a Debian 12 minbase image (made once by
// hack/make-debian-rootfs.sh) to reg as library/debian:{bookworm,12,latest}.
func PushDebian(reg *Registry, repoRoot string) (string, error) {
	out, err := exec.Command("bash", filepath.Join(repoRoot, "hack", "make-debian-rootfs.sh")).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		return "", fmt.Errorf("making the Debian root filesystem (hack/make-debian-rootfs.sh, needs mmdebstrap and Debian's mirror): %v: %s", err, msg)
	}
	tarPath := strings.TrimSpace(string(out))
	layer, err := tarball.LayerFromFile(tarPath, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return "", err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: baseTime}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Cmd = []string{"bash"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", err
	}
	for _, tag := range []string{"bookworm", "12", "latest"} {
		ref, err := name.NewTag(reg.Ref("library/debian:"+tag), reg.NameOptions()...)
		if err != nil {
			return "", err
		}
		if err := remote.Write(ref, img, reg.Options()...); err != nil {
			return "", fmt.Errorf("pushing %s: %w", ref, err)
		}
	}
	return reg.Ref("library/debian:bookworm"), nil
}
