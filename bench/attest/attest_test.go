// Package attestbench measures what --attestation=max --sign adds to a
// build of a Debian-minbase-sized image (about 170 MB, about 90 dpkg
// packages), end to end with the real binaries and registry, and the
// parts of that time in-process. See bench/README.md, "Attestations".
//
//	go test ./bench/attest/ -run '^$' -bench . -benchtime 3x
package attestbench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rapidfort/kimia/attest"
	"github.com/rapidfort/kimia/attest/provenance"
	"github.com/rapidfort/kimia/attest/sbom"
	"github.com/rapidfort/kimia/attest/sbom/syftgen"
	"github.com/rapidfort/kimia/attest/sign"
	"github.com/rapidfort/kimia/internal/testenv"
)

func repoRoot(b *testing.B) string {
	b.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	return root
}

// debian starts a registry with the Debian minbase image and returns it
// with the image's reference.
func debian(b *testing.B) (*testenv.Registry, string) {
	b.Helper()
	reg := testenv.StartRegistry(b, testenv.RegistryOptions{})
	ref, err := testenv.PushDebian(reg, repoRoot(b))
	if err != nil {
		b.Fatalf("Debian base image: %v", err)
	}
	return reg, ref
}

func cosignKey(b *testing.B, dir string) string {
	b.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	p := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

// goBinary builds a small Go program (a Go binary for syft to find) to
// out.
func goBinary(b *testing.B, out string) {
	b.Helper()
	src := b.TempDir()
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module example.com/bench-hello\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nimport \"net/http\"\n\nfunc main() { http.ListenAndServe(\":8080\", nil) }\n"), 0o644)
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0", "GOWORK=off")
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building a Go binary: %v\n%s", err, o)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkBuildWithAttestations builds FROM the Debian image (a COPY'd Go
// binary and a RUN) with each binary, alternately without attestations
// and with --attestation=max --sign, each build from an empty engine
// state, and reports the medians and what attestations add.
func BenchmarkBuildWithAttestations(b *testing.B) {
	binDir := os.Getenv("KIMIA_BIN_DIR")
	if binDir == "" {
		binDir = filepath.Join(repoRoot(b), "bin")
	}
	reg, base := debian(b)
	bins := []string{"kimia", "kimia-bud"}
	if s := os.Getenv("KIMIA_BENCH_BINARIES"); s != "" {
		bins = strings.Split(s, ",")
	}
	for _, bin := range bins {
		b.Run(bin, func(b *testing.B) {
			path := filepath.Join(binDir, bin)
			if _, err := os.Stat(path); err != nil {
				b.Fatalf("%s: run make build (or set KIMIA_BIN_DIR): %v", path, err)
			}
			dir := b.TempDir()
			ctx := filepath.Join(dir, "ctx")
			os.MkdirAll(ctx, 0o755)
			os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+base+"\nCOPY hello /usr/local/bin/hello\nRUN echo built > /built.txt\n"), 0o644)
			goBinary(b, filepath.Join(ctx, "hello"))
			key := cosignKey(b, dir)
			cpus := map[string]time.Duration{}
			run := func(tag string, extra ...string) time.Duration {
				args := append([]string{"--context", ctx, "--destination", reg.Ref("bench/attest:" + tag),
					"--insecure-registry", reg.Host, "--platform", "linux/amd64", "--log-timestamp"}, extra...)
				cmd := exec.Command(path, args...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				start := time.Now()
				if err := cmd.Run(); err != nil {
					b.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
				}
				took := time.Since(start)
				cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
				if os.Getenv("KIMIA_BENCH_VERBOSE") != "" {
					var lines []string
					for _, l := range strings.Split(stderr.String(), "\n") {
						if strings.Contains(l, "msg=") {
							lines = append(lines, l)
						}
					}
					b.Logf("%s %s: %.2fs wall, %.2fs CPU\n%s", bin, tag, took.Seconds(), cpu.Seconds(), strings.Join(lines, "\n"))
				}
				cpus[tag] = cpu
				return took
			}
			var plain, attested, plainCPU, attestedCPU []time.Duration
			for i := 0; i < b.N; i++ {
				pt, at := fmt.Sprintf("plain-%d", i), fmt.Sprintf("max-%d", i)
				plain = append(plain, run(pt, "--attestation=off"))
				attested = append(attested, run(at, "--attestation=max", "--sign", "--cosign-key", key))
				plainCPU, attestedCPU = append(plainCPU, cpus[pt]), append(attestedCPU, cpus[at])
			}
			p, a := median(plain), median(attested)
			// CPU time (kimia and the processes it waited for) is less
			// sensitive than wall time to other work on the machine.
			b.ReportMetric(median(plainCPU).Seconds(), "plain-cpu-s")
			b.ReportMetric(median(attestedCPU).Seconds(), "attested-cpu-s")
			added := a - p
			target := p / 4
			if target < 3*time.Second {
				target = 3 * time.Second
			}
			b.ReportMetric(p.Seconds(), "plain-s")
			b.ReportMetric(a.Seconds(), "attested-s")
			b.ReportMetric(added.Seconds(), "added-s")
			b.ReportMetric(100*added.Seconds()/p.Seconds(), "added-%")
			b.Logf("%s: build %.2fs, with --attestation=max --sign %.2fs: +%.2fs (%.0f%%); target: under %.2fs", bin, p.Seconds(), a.Seconds(), added.Seconds(), 100*added.Seconds()/p.Seconds(), target.Seconds())
			if added > target {
				b.Errorf("attestations add %.2fs, over the target of %.2fs", added.Seconds(), target.Seconds())
			}
		})
	}
}

// BenchmarkSteps times the parts in-process on the Debian image as the
// registry serves it: the SBOM, the provenance, and signing one
// statement. Engine-independent.
func BenchmarkSteps(b *testing.B) {
	_, base := debian(b)
	ref, err := name.ParseReference(base, name.Insecure)
	if err != nil {
		b.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		b.Fatal(err)
	}
	// Read the layers once, as the engine's layout on local disk would
	// be, so the registry is not what is timed.
	dir := b.TempDir()
	img, err = localCopy(img, dir)
	if err != nil {
		b.Fatal(err)
	}
	digest, _ := img.Digest()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := sign.New(k)

	b.Run("sbom-spdx", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			doc, err := syftgen.Generate(context.Background(), img, sbom.Options{Name: "bench/debian", ToolName: "kimia", ToolVersion: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(doc.Packages), "packages")
			b.ReportMetric(float64(len(doc.JSON))/1e6, "MB")
		}
	})
	b.Run("provenance-and-sign", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			pred := provenance.Predicate(provenance.Params{Mode: provenance.ModeMax, Engine: "bench", Started: time.Now(), Finished: time.Now()})
			st, err := attest.NewStatement(attest.PredicateProvenance, []attest.Subject{{Name: "bench", Digest: digest}}, pred)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := signer.SignStatement(context.Background(), st); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// localCopy writes img to an OCI layout in dir and reads it back.
func localCopy(img v1.Image, dir string) (v1.Image, error) {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, err
	}
	if err := p.AppendImage(img); err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return p.Image(d)
}
