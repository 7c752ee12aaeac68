package buildkit

import (
	"context"
	"errors"
	"strings"
	"testing"

	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"

	"github.com/rapidfort/kimia/engine"
)

// withSource attaches a Dockerfile location the way BuildKit does.
func withSource(err error, line int, dockerfile string) error {
	return errdefs.WithSource(err, &errdefs.Source{
		Info:   &pb.SourceInfo{Filename: "Dockerfile", Data: []byte(dockerfile)},
		Ranges: []*pb.Range{{Start: &pb.Position{Line: int32(line)}, End: &pb.Position{Line: int32(line)}}},
	})
}

func TestClassify(t *testing.T) {
	const df = "FROM reg:5000/base:1\nRUN make\nRUN exit 7\n"
	arm := engine.Platform{OS: "linux", Architecture: "arm64"}
	noEmulator := func(p engine.Platform) error {
		if p.Architecture == "arm64" {
			return errors.New("no handler")
		}
		return nil
	}
	exit := func(code uint32) error {
		return &gatewaypb.ExitError{ExitCode: code, Err: errors.New(`process "/bin/sh -c exit 7" did not complete successfully`)}
	}
	tests := []struct {
		name      string
		err       error
		platforms []engine.Platform
		emulator  func(engine.Platform) error
		failedLog string
		kind      engine.Kind
		want      []string
		transient bool
	}{
		{
			name: "a failing RUN is a build error naming its line",
			err:  withSource(exit(7), 3, df),
			kind: engine.KindBuild,
			want: []string{"Dockerfile:3: RUN exit 7: ", "did not complete successfully"},
		},
		{
			name:      "exec format error for a platform without emulator says how to install one",
			err:       withSource(exit(1), 2, df),
			platforms: []engine.Platform{engine.HostPlatform(), arm},
			emulator:  noEmulator,
			failedLog: "exec /bin/sh: exec format error\n",
			kind:      engine.KindEnvironment,
			want:      []string{"Dockerfile:2: RUN make: ", "QEMU binfmt_misc handler for arm64", "qemu-user-static"},
		},
		{
			name:      "exec format error with every emulator present stays a build error",
			err:       withSource(exit(1), 2, df),
			platforms: []engine.Platform{arm},
			emulator:  func(engine.Platform) error { return nil },
			failedLog: "exec /bin/sh: exec format error\n",
			kind:      engine.KindBuild,
		},
		{
			name: "a missing base image is a registry error naming it once",
			err:  withSource(errors.New("reg:5000/base:1: failed to resolve source metadata for reg:5000/base:1: reg:5000/base:1: not found"), 1, df),
			kind: engine.KindRegistry,
			want: []string{"Dockerfile:1: FROM reg:5000/base:1: ", "image reg:5000/base:1 does not exist in registry reg:5000"},
		},
		{
			name:      "an unreachable registry is a registry error worth retrying",
			err:       errors.New(`failed to resolve source metadata for reg:5000/base:1: failed to do request: Head "https://reg:5000/v2/base/manifests/1": dial tcp 10.0.0.1:5000: connect: connection refused`),
			kind:      engine.KindRegistry,
			want:      []string{"registry reg:5000 is unreachable"},
			transient: true,
		},
		{
			name: "refused credentials are an auth error",
			err:  errors.New(`failed to resolve source metadata for reg:5000/base:1: unexpected status from HEAD request to http://reg:5000/v2/base/manifests/1: 401 Unauthorized`),
			kind: engine.KindAuth,
			want: []string{"registry reg:5000 refused the credentials"},
		},
		{
			name: "plain HTTP without --insecure-registry says which flag",
			err:  errors.New(`failed to resolve source metadata for reg:5000/base:1: failed to do request: Head "https://reg:5000/v2/base/manifests/1": http: server gave HTTP response to HTTPS client`),
			kind: engine.KindRegistry,
			want: []string{engine.FieldInsecureRegistries.String() + "=reg:5000"},
		},
		{
			name: "an unknown certificate authority says how to trust it",
			err:  errors.New(`failed to resolve source metadata for reg:5000/base:1: failed to do request: Head "https://reg:5000/v2/base/manifests/1": tls: failed to verify certificate: x509: certificate signed by unknown authority`),
			kind: engine.KindRegistry,
			want: []string{engine.FieldCertificates.String() + "=reg:5000=CA.pem"},
		},
		{
			name:      "a layer download that failed with 503 is worth retrying",
			err:       errors.New(`failed to copy: httpReadSeeker: failed open: unexpected status code GET "http://reg:5000/v2/base/blobs/sha256:abc": 503 Service Unavailable`),
			kind:      engine.KindRegistry,
			transient: true,
		},
		{
			name: "a Dockerfile syntax error is a build error naming its line",
			err:  withSource(errors.New("dockerfile parse error on line 2: unknown instruction: FOO"), 2, "FROM x\nFOO bar\n"),
			kind: engine.KindBuild,
			want: []string{"Dockerfile:2: FOO bar: dockerfile parse error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.emulator != nil {
				old := emulator
				emulator = tt.emulator
				defer func() { emulator = old }()
			}
			req := &engine.Request{Platforms: tt.platforms, DockerfileName: "Dockerfile"}
			err := classify(context.Background(), tt.err, req, tt.failedLog)
			if engine.KindOf(err) != tt.kind {
				t.Errorf("kind = %v, want %v (%v)", engine.KindOf(err), tt.kind, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if got := transientPull(tt.err); got != tt.transient {
				t.Errorf("transientPull = %v, want %v", got, tt.transient)
			}
		})
	}
}

func TestClassifyCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := classify(ctx, errors.New("context canceled"), &engine.Request{}, "")
	if engine.KindOf(err) != engine.KindCanceled {
		t.Errorf("kind = %v, want canceled", engine.KindOf(err))
	}
}
