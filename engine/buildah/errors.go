package buildah

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"github.com/openshift/imagebuilder/dockerfile/parser"
	"go.podman.io/image/v5/docker"

	"github.com/rapidfort/kimia/engine"
)

// stepRE finds the instruction in Buildah's step errors:
// building at STEP "RUN false": ...
var stepRE = regexp.MustCompile(`building at STEP "((?:[^"\\]|\\.)*)"`)

// classify gives a Buildah error its kind and names what failed: the
// Dockerfile line of a failing step, the registry of a failing pull.
func classify(ctx context.Context, err error, req *engine.Request, plat engine.Platform, foreign bool) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return engine.Wrap(engine.KindCanceled, err)
	}
	msg := err.Error()
	where := ""
	if m := stepRE.FindStringSubmatch(msg); m != nil {
		if line := instructionLine(req.Dockerfile, m[1]); line > 0 {
			where = fmt.Sprintf("%s:%d: ", dockerfileName(req), line)
		}
	}
	switch {
	case foreign && (errors.Is(err, syscall.ENOEXEC) || strings.Contains(msg, "exec format error")):
		return missingEmulator(plat, err)
	case isAuthError(err):
		return engine.Wrap(engine.KindAuth, fmt.Errorf("%s%w (check the credentials in %s)", where, err, credentialsSource(req)))
	case isRegistryError(err):
		return engine.Wrap(engine.KindRegistry, fmt.Errorf("%s%w", where, err))
	case strings.Contains(msg, "was not found in the provided Dockerfile") || strings.Contains(msg, "the target") && strings.Contains(msg, "not found"):
		return engine.Errorf(engine.KindUsage, "--target=%s: no such stage in %s: %v", req.Target, dockerfileName(req), err)
	}
	return engine.Wrap(engine.KindBuild, fmt.Errorf("%s%w", where, err))
}

func dockerfileName(req *engine.Request) string {
	if req.Source.Dockerfile != "" {
		return req.Source.Dockerfile
	}
	return req.Dockerfile
}

func credentialsSource(req *engine.Request) string {
	if req.Registry.DockerConfigDir == "" {
		return "a docker config.json (none was found: set DOCKER_CONFIG)"
	}
	return req.Registry.DockerConfigDir + "/config.json"
}

// instructionLine finds the line of the first instruction of the
// Dockerfile whose text is step (whitespace-insensitive).
func instructionLine(dockerfile, step string) int {
	f, err := os.Open(dockerfile)
	if err != nil {
		return 0
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil || res.AST == nil {
		return 0
	}
	want := strings.Join(strings.Fields(step), " ")
	for _, n := range res.AST.Children {
		if strings.EqualFold(strings.Join(strings.Fields(n.Original), " "), want) {
			return n.StartLine
		}
	}
	// ONBUILD triggers and expanded arguments do not match the source;
	// fall back to the instruction's first word and its arguments.
	for _, n := range res.AST.Children {
		if strings.HasPrefix(strings.ToUpper(want), strings.ToUpper(n.Value)+" ") && strings.Contains(want, strings.Join(strings.Fields(restOf(n.Original)), " ")) {
			return n.StartLine
		}
	}
	return 0
}

func restOf(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[i+1:]
	}
	return ""
}

func isAuthError(err error) bool {
	var unauth docker.ErrUnauthorizedForCredentials
	if errors.As(err, &unauth) {
		return true
	}
	var ec errcode.Error
	if errors.As(err, &ec) && (ec.Code == errcode.ErrorCodeUnauthorized || ec.Code == errcode.ErrorCodeDenied) {
		return true
	}
	var ecs errcode.Errors
	if errors.As(err, &ecs) {
		for _, e := range ecs {
			if c, ok := e.(errcode.Error); ok && (c.Code == errcode.ErrorCodeUnauthorized || c.Code == errcode.ErrorCodeDenied) {
				return true
			}
		}
	}
	msg := err.Error()
	return strings.Contains(msg, "authentication required") || strings.Contains(msg, "unauthorized:") || strings.Contains(msg, "401 Unauthorized")
}

func isRegistryError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &ne) {
		return true
	}
	var ec errcode.Error
	var ecs errcode.Errors
	if errors.As(err, &ec) || errors.As(err, &ecs) || errors.Is(err, docker.ErrTooManyRequests) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{
		"pinging container registry", "manifest unknown", "name unknown", v2.ErrorCodeManifestUnknown.Message(),
		"initializing source docker://", "reading manifest", "connection refused", "no such host",
		"http: server gave HTTP response to HTTPS client", "x509:", "tls:", "repository name not known",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
