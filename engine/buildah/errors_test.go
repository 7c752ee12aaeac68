package buildah

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/image/v5/docker"

	"github.com/rapidfort/kimia/engine"
)

func TestClassify(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	os.WriteFile(df, []byte("FROM busybox\nRUN echo first\nRUN echo before && \\\n  exit 7\n"), 0o644)
	req := &engine.Request{Dockerfile: df, DockerfileName: "Dockerfile", Target: "nosuch"}
	exitErr := exec.Command("sh", "-c", "exit 7").Run()
	amd64 := engine.Platform{OS: "linux", Architecture: "amd64"}

	tests := []struct {
		name     string
		err      error
		kind     engine.Kind
		mentions []string
	}{
		{"a failing RUN names its line and is a build error",
			fmt.Errorf("building at STEP \"RUN echo before &&   exit 7\": %w", exitErr),
			engine.KindBuild, []string{"Dockerfile:3: ", "exit status 7"}},
		{"a missing base image names the registry",
			errors.New("creating build container: initializing source docker://127.0.0.1:5000/library/nope:1: reading manifest 1 in 127.0.0.1:5000/library/nope: manifest unknown"),
			engine.KindRegistry, []string{"127.0.0.1:5000", "library/nope", "does not exist"}},
		{"an unreachable registry",
			errors.New(`initializing source docker://127.0.0.1:1/library/busybox:latest: pinging container registry 127.0.0.1:1: Get "https://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused`),
			engine.KindRegistry, []string{"registry 127.0.0.1:1"}},
		{"rejected credentials",
			fmt.Errorf("initializing source docker://reg.example/app:1: %w", docker.ErrUnauthorizedForCredentials{Err: errors.New("401")}),
			engine.KindAuth, []string{"reg.example", "refused the credentials"}},
		{"a missing target stage is a usage error naming the flag",
			errors.New(`the target "nosuch" was not found in the provided Dockerfile`),
			engine.KindUsage, []string{engine.FieldTarget.String() + "=nosuch"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(context.Background(), tc.err, req, amd64, false)
			if k := engine.KindOf(got); k != tc.kind {
				t.Errorf("kind %v, want %v: %v", k, tc.kind, got)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(got.Error(), m) {
					t.Errorf("%q does not mention %q", got, m)
				}
			}
			// The step's exit status must not leak into kimia's.
			var coder interface{ ExitCode() int }
			if errors.As(got, &coder) {
				t.Errorf("the classified error carries an exit code (%d)", coder.ExitCode())
			}
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if k := engine.KindOf(classify(ctx, exitErr, req, amd64, false)); k != engine.KindCanceled {
		t.Errorf("a canceled build: kind %v", k)
	}
}

func TestCheckDockerfile(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	os.WriteFile(df, []byte("# syntax=docker/dockerfile:1\nFROM busybox\nFROBNICATE /x\n"), 0o644)
	err := checkDockerfile(&engine.Request{Dockerfile: df, DockerfileName: "Dockerfile"})
	if engine.KindOf(err) != engine.KindBuild || !strings.Contains(err.Error(), "Dockerfile:3: unknown instruction: FROBNICATE") {
		t.Errorf("err = %v", err)
	}
	os.WriteFile(df, []byte("FROM busybox\nRUN <<EOF\necho hi\nEOF\nHEALTHCHECK CMD true\nONBUILD RUN x\n"), 0o644)
	if err := checkDockerfile(&engine.Request{Dockerfile: df}); err != nil {
		t.Errorf("a valid Dockerfile is refused: %v", err)
	}
}
