package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "linux/amd64", want: "linux/amd64"},
		{in: " Linux/X86_64 ", want: "linux/amd64"},
		{in: "linux/aarch64", want: "linux/arm64"},
		{in: "linux/arm64/v8", want: "linux/arm64"},
		{in: "linux/arm", want: "linux/arm/v7"},
		{in: "linux/arm/v6", want: "linux/arm/v6"},
		{in: "linux", err: "want os/arch"},
		{in: "linux//amd64", err: "empty component"},
		{in: "windows/amd64", err: "only linux"},
		{in: "linux/z80", err: "unknown architecture"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParsePlatform(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || p.String() != tc.want {
				t.Errorf("got %s, %v; want %s", p, err, tc.want)
			}
		})
	}
}

func TestParseMirror(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mirror
		err  bool
	}{
		{in: "mirror.gcr.io", want: Mirror{Host: "mirror.gcr.io"}},
		{in: "https://mirror.gcr.io/", want: Mirror{Host: "mirror.gcr.io"}},
		{in: "http://reg:5000", want: Mirror{Host: "reg:5000", PlainHTTP: true}},
		{in: "reg:5000/dockerhub", want: Mirror{Host: "reg:5000", Path: "dockerhub"}},
		{in: "https://reg:5000/v2/", want: Mirror{Host: "reg:5000"}},
		{in: "https://reg:5000/v2/hub", want: Mirror{Host: "reg:5000", Path: "hub"}},
		{in: "", err: true},
		{in: "https://", err: true},
		{in: "user@reg", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			m, err := ParseMirror(tc.in)
			if (err != nil) != tc.err || m != tc.want {
				t.Errorf("got %+v, %v; want %+v (error %v)", m, err, tc.want, tc.err)
			}
		})
	}
	m := Mirror{Host: "reg:5000", Path: "hub"}
	if got := m.Repository("library/busybox"); got != "reg:5000/hub/library/busybox" {
		t.Errorf("Repository = %s", got)
	}
}

func TestRegistryHostPolicy(t *testing.T) {
	rc := RegistryConfig{
		Insecure: true, SkipTLSVerifyPull: true,
		InsecureRegistries:      []string{"Plain.Example:5000"},
		SkipTLSVerifyRegistries: []string{"docker.io"},
		Certificates:            []HostFile{{Host: "ca.example", Path: "/ca.pem"}},
		Mirrors:                 []Mirror{{Host: "m1"}, {Host: "m2", Path: "hub"}},
		Maps:                    []RegistryMap{{From: "quay.io", To: []Mirror{{Host: "q1"}}}},
	}
	for _, tc := range []struct {
		name string
		host string
		op   Op
		want HostSettings
	}{
		{"--insecure is for pushes only", "any.example", Push, HostSettings{PlainHTTP: true}},
		{"--skip-tls-verify-pull is for pulls only", "any.example", Pull, HostSettings{SkipTLSVerify: true}},
		{"a listed registry is plain HTTP both ways, matched without case", "plain.example:5000", Pull, HostSettings{PlainHTTP: true, SkipTLSVerify: true}},
		{"Docker Hub has one name", "index.docker.io", Push, HostSettings{PlainHTTP: true, SkipTLSVerify: true}},
		{"CA files belong to their host", "ca.example", Push, HostSettings{PlainHTTP: true, CAFiles: []string{"/ca.pem"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rc.Host(tc.host, tc.op); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Host(%s) = %+v, want %+v", tc.host, got, tc.want)
			}
		})
	}
	if got := fmt.Sprint(rc.MirrorsFor("registry-1.docker.io")); got != "[m1 m2/hub]" {
		t.Errorf("Docker Hub's mirrors %s", got)
	}
	if got := fmt.Sprint(rc.MirrorsFor("quay.io")); got != "[q1]" {
		t.Errorf("quay.io's mirrors %s", got)
	}
	if got := fmt.Sprint(rc.Hosts()); got != "[plain.example:5000 index.docker.io ca.example m1 m2 quay.io q1]" {
		t.Errorf("Hosts = %s", got)
	}
}

func TestErrorKinds(t *testing.T) {
	inner := Errorf(KindAuth, "registry refused")
	wrapped := fmt.Errorf("pulling: %w", inner)
	if KindOf(wrapped) != KindAuth || !errors.Is(wrapped, ErrAuth) || errors.Is(wrapped, ErrRegistry) {
		t.Errorf("the innermost kind must show through wrapping: %v", KindOf(wrapped))
	}
	if KindOf(Wrap(KindRegistry, wrapped)) != KindAuth {
		t.Error("Wrap replaced an existing kind")
	}
	if Wrap(KindBuild, nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
	if KindOf(errors.New("plain")) != KindInternal {
		t.Error("an error without a kind is internal")
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	if err := Canceled(ctx, inner); err != inner {
		t.Error("Canceled changed an error of a live context")
	}
	cancel(errors.New("interrupted by SIGTERM"))
	err := Canceled(ctx, Errorf(KindBuild, "RUN failed"))
	if KindOf(err) != KindCanceled || !strings.Contains(err.Error(), "interrupted by SIGTERM") || !strings.Contains(err.Error(), "RUN failed") {
		t.Errorf("Canceled = %v (%v)", err, KindOf(err))
	}
}
