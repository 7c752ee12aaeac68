//go:build e2e

package e2e

// kimia's own images, images/kimia and images/kimia-bud, built by kimia
// and by kimia-bud against an offline Debian 12 base image, checked file by
// file, and then run: the image's root filesystem, unpacked, builds and
// pushes an image under runc with the Job's securityContext (pod_test.go
// simulates the pod).

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"
)

// kimiaImages are the images the repository ships, with the bin/ files
// each Dockerfile copies and the binary its entrypoint runs.
var kimiaImages = []struct {
	Name     string
	Binaries []string
}{
	{"kimia", []string{"kimia", "buildkitd", "kimia-sbom"}},
	{"kimia-bud", []string{"kimia-bud", "kimia-sbom"}},
}

// builtImage is one of kimia's images, pushed to the shared registry.
type builtImage struct {
	Name string
	// Ref is repo@digest.
	Ref   string
	Image v1.Image
}

// imageCache keeps the images built in this run, by builder and image, so
// the pod tests run what the image tests built instead of building again.
var imageCache = struct {
	sync.Mutex
	m map[string]*builtImage
}{m: map[string]*builtImage{}}

// kimiaImage returns image name built by sb's binary, building it once per
// run.
func kimiaImage(t *testing.T, sb *Sandbox, name string) *builtImage {
	t.Helper()
	key := sb.Binary + "/" + name
	imageCache.Lock()
	defer imageCache.Unlock()
	if b := imageCache.m[key]; b != nil {
		return b
	}
	b := buildKimiaImage(t, sb, name)
	imageCache.m[key] = b
	return b
}

// buildKimiaImage builds images/NAME/Dockerfile as the documentation says
// (`--context=. --dockerfile=images/NAME/Dockerfile` from a checkout with
// bin/ built), with the sandbox's Debian image as BASE_IMAGE.
func buildKimiaImage(t *testing.T, sb *Sandbox, name string) *builtImage {
	t.Helper()
	sb = sb.For(t)
	var bins []string
	for _, im := range kimiaImages {
		if im.Name == name {
			bins = im.Binaries
		}
	}
	// A checkout in miniature: the Dockerfile and its .dockerignore where
	// the repository keeps them, and the binaries of this run in bin/.
	ctx := sb.Context(map[string]string{
		"images/" + name + "/Dockerfile":              readRepoFile(t, "images/"+name+"/Dockerfile"),
		"images/" + name + "/Dockerfile.dockerignore": readRepoFile(t, "images/"+name+"/Dockerfile.dockerignore"),
		// Kept out by the .dockerignore: a context that sent it would
		// still build, but the test checks the image lacks it.
		"README.md": "not for the image\n",
	})
	binDir := filepath.Dir(sb.Path)
	for _, b := range bins {
		src := filepath.Join(binDir, b)
		if _, err := os.Stat(src); err != nil {
			t.Fatalf("images/%s/Dockerfile copies bin/%s, which is missing next to %s: run make build: %v", name, b, sb.Path, err)
		}
		copyFile(t, src, filepath.Join(ctx, "bin", b), 0o755)
	}
	sb.chown(ctx)

	// The layer cache is kept between runs, keyed by content by the
	// engine itself: the apt step is served from it until the base image
	// or the package list changes.
	cacheDir := filepath.Join(env.CacheDir, "e2e", "image-build", sb.Name)
	if sb.UID != 0 {
		// The unprivileged worker cannot reach a cache in root's home.
		cacheDir = filepath.Join(os.TempDir(), "kimia-e2e-image-build", sb.Name)
		os.MkdirAll(filepath.Dir(cacheDir), 0o755)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// One engine state per cache dir: when another test process holds
	// it, build cold in a private one rather than fail on its lock.
	if lock, err := os.OpenFile(cacheDir+".lock", os.O_CREATE|os.O_RDWR, 0o644); err == nil {
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			lock.Close()
			cacheDir = sb.Join("image-cache-" + name)
			os.MkdirAll(cacheDir, 0o755)
		} else {
			t.Cleanup(func() { lock.Close() })
		}
	}
	// Only the directory: what the engine keeps in it is owned by the
	// user namespace's ids and must stay so.
	if sb.UID != 0 {
		os.Lchown(cacheDir, sb.UID, sb.GID)
	}
	repo := freshRepo(sb, "image-"+name)
	ref := sb.Registry.Ref(repo + ":test")
	digestFile := sb.Join("digest-" + name)
	args := append([]string{
		"--context=" + ctx, "--dockerfile=images/" + name + "/Dockerfile",
		"--destination=" + ref, "--build-arg=BASE_IMAGE=" + sb.Debian(),
		"--digest-file=" + digestFile,
		"--cache", "--cache-dir=" + cacheDir, "--no-push-cache",
	}, sb.Registry.Flags()...)
	sb.MustKimia(args...)
	dg, err := os.ReadFile(digestFile)
	if err != nil {
		t.Fatalf("reading --digest-file: %v", err)
	}
	b := &builtImage{Name: name, Ref: sb.Registry.Ref(repo + "@" + string(dg))}
	b.Image = sb.Registry.Image(t, b.Ref)
	return b
}

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.RepoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tarHeaders flattens img and returns every entry's header (with its PAX
// records, where extended attributes travel).
func tarHeaders(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading image filesystem: %v", err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = h
	}
}

// fileCaps decodes a security.capability extended attribute
// (struct vfs_cap_data): its revision, the effective flag and the
// permitted set's low 32 bits.
func fileCaps(raw string) (revision uint32, effective bool, permitted uint32, err error) {
	b := []byte(raw)
	if len(b) < 12 {
		return 0, false, 0, fmt.Errorf("%d bytes, too short for vfs_cap_data", len(b))
	}
	magic := binary.LittleEndian.Uint32(b[0:4])
	return magic & 0xff000000, magic&0x1 != 0, binary.LittleEndian.Uint32(b[4:8]), nil
}

const (
	vfsCapRevision2 = 0x02000000
	capSetgid       = 6
	capSetuid       = 7
	xattrCapability = "SCHILY.xattr.security.capability"
)

func TestKimiaImages(t *testing.T) {
	Run(t, func(t *testing.T, sb *Sandbox) {
		for _, im := range kimiaImages {
			t.Run(im.Name, func(t *testing.T) {
				b := kimiaImage(t, sb, im.Name)
				checkKimiaImage(t, sb, b, im.Binaries)
				// The image works: a rootless build under the Job's
				// securityContext, pushed to the registry.
				runJobBuild(t, sb, b)
			})
		}
	})
}

func checkKimiaImage(t *testing.T, sb *Sandbox, b *builtImage, bins []string) {
	t.Helper()
	cf := Config(t, b.Image)
	if got := strings.Join(cf.Config.Entrypoint, " "); got != b.Name {
		t.Errorf("entrypoint %q, want %q", got, b.Name)
	}
	if cf.Config.User != "1000:1000" {
		t.Errorf("user %q, want 1000:1000 (numeric, so runAsNonRoot can be verified)", cf.Config.User)
	}
	if cf.Config.WorkingDir != "/workspace" {
		t.Errorf("working dir %q, want /workspace (Kaniko's)", cf.Config.WorkingDir)
	}
	for _, want := range []string{"DOCKER_CONFIG=/kaniko/.docker", "HOME=/home/kimia"} {
		if !containsString(cf.Config.Env, want) {
			t.Errorf("env %v lacks %s", cf.Config.Env, want)
		}
	}

	hs := tarHeaders(t, b.Image)
	files := Files(t, b.Image)
	binDir := filepath.Dir(sb.Path)
	for _, bin := range bins {
		f, ok := files["usr/local/bin/"+bin]
		if !ok {
			t.Errorf("image lacks /usr/local/bin/%s", bin)
			continue
		}
		if want := fileSHA256(t, filepath.Join(binDir, bin)); f.SHA256 != want {
			t.Errorf("/usr/local/bin/%s is not bin/%s of this run", bin, bin)
		}
	}
	// What each engine needs at run time, and what it does not.
	need := []string{"usr/bin/runc", "usr/bin/git", "etc/ssl/certs/ca-certificates.crt", "usr/bin/newuidmap", "usr/bin/newgidmap"}
	absent := []string{"usr/sbin/setcap", "usr/bin/qemu-aarch64-static", "README.md", "bin/kimia"}
	if b.Name == "kimia" {
		need = append(need, "usr/bin/rootlesskit")
	} else {
		absent = append(absent, "usr/bin/rootlesskit", "usr/local/bin/buildkitd", "usr/local/bin/kimia")
	}
	for _, p := range need {
		if _, ok := files[p]; !ok {
			t.Errorf("image lacks /%s", p)
		}
	}
	for _, p := range absent {
		if _, ok := files[p]; ok {
			t.Errorf("image has /%s, which it should not", p)
		}
	}
	for p := range files {
		if strings.HasPrefix(p, "var/lib/apt/lists/") && p != "var/lib/apt/lists/partial" && p != "var/lib/apt/lists/lock" {
			t.Errorf("image keeps apt lists (%s)", p)
			break
		}
	}

	// newuidmap/newgidmap: file capabilities, not setuid root.
	for tool, bit := range map[string]uint32{"usr/bin/newuidmap": capSetuid, "usr/bin/newgidmap": capSetgid} {
		h, ok := hs[tool]
		if !ok {
			continue
		}
		if h.Mode&0o6000 != 0 {
			t.Errorf("/%s is setuid/setgid (mode %o): a pod with only SETUID and SETGID cannot use a setuid-root helper", tool, h.Mode)
		}
		raw, ok := h.PAXRecords[xattrCapability]
		if !ok {
			t.Errorf("/%s has no security.capability attribute in the layer", tool)
			continue
		}
		rev, eff, perm, err := fileCaps(raw)
		if err != nil {
			t.Errorf("/%s: %v", tool, err)
			continue
		}
		// Revision 3 would carry a namespace root id and work only in the
		// user namespace that wrote it.
		if rev != vfsCapRevision2 || !eff || perm != 1<<bit {
			t.Errorf("/%s capabilities: revision %#x effective %v permitted %#x, want revision 2, effective, only bit %d", tool, rev, eff, perm, bit)
		}
	}

	fileIs(t, files, "etc/subuid", "kimia:100000:65536\n", 0o644, 0, 0)
	fileIs(t, files, "etc/subgid", "kimia:100000:65536\n", 0o644, 0, 0)
	if !strings.Contains(files["etc/passwd"].Content, "kimia:x:1000:1000:") {
		t.Errorf("/etc/passwd lacks the kimia user with uid 1000")
	}
	for _, d := range []string{"workspace", "home/kimia"} {
		if f := files[d]; f.Type != tar.TypeDir || f.UID != 1000 || f.GID != 1000 {
			t.Errorf("/%s: type %c uid %d gid %d, want a directory owned by 1000:1000", d, f.Type, f.UID, f.GID)
		}
	}
	if f := files["kaniko/.docker"]; f.Type != tar.TypeDir {
		t.Errorf("image lacks the directory /kaniko/.docker")
	}
	size := int64(0)
	layers, _ := b.Image.Layers()
	for _, l := range layers {
		s, _ := l.Size()
		size += s
	}
	t.Logf("%s image built by %s: %s, %d layers, %.1f MB compressed", b.Name, sb.Name, b.Ref, len(layers), float64(size)/1e6)
}

// unpackImage writes img's flattened filesystem into dir, with owners,
// modes (setuid included) and extended attributes (file capabilities), as
// a container runtime's snapshotter would. idShift is added to every uid
// and gid (for a user-namespace pod's id-mapped root filesystem).
func unpackImage(t *testing.T, img v1.Image, dir string, idShift int) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	type dirMeta struct {
		path string
		mode int64
	}
	var dirs []dirMeta
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("unpacking image: %v", err)
		}
		rel := filepath.Clean("/" + h.Name)
		if rel == "/" {
			continue
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, dirMeta{p, h.Mode})
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		case tar.TypeSymlink:
			os.Remove(p)
			if err := os.Symlink(h.Linkname, p); err != nil {
				t.Fatal(err)
			}
		case tar.TypeLink:
			os.Remove(p)
			if err := os.Link(filepath.Join(dir, filepath.Clean("/"+h.Linkname)), p); err != nil {
				t.Fatal(err)
			}
			continue
		case tar.TypeFifo:
			if err := unix.Mkfifo(p, uint32(h.Mode&0o777)); err != nil {
				t.Fatal(err)
			}
		default:
			// Device nodes: a runtime provides /dev itself.
			continue
		}
		// chown before chmod and before file capabilities: chown clears
		// both the setuid bit and security.capability.
		if err := os.Lchown(p, h.Uid+idShift, h.Gid+idShift); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeSymlink && h.Typeflag != tar.TypeDir {
			if err := unix.Chmod(p, uint32(h.Mode&0o7777)); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range h.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if err := unix.Lsetxattr(p, name, []byte(v), 0); err != nil {
					t.Fatalf("setting %s on %s: %v", name, rel, err)
				}
			}
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Chmod(dirs[i].path, uint32(dirs[i].mode&0o7777)); err != nil {
			t.Fatal(err)
		}
	}
}
