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

// stepDump is the Go dump of an imagebuilder step some Buildah errors
// end with.
var stepDump = regexp.MustCompile(`\s*&imagebuilder\.Step\{.*$`)

// pullRef finds the image of a failed pull in containers/image's errors.
var pullRef = regexp.MustCompile(`docker://([^\s:"/]+(?::\d+)?)/([^\s:"@]+)[:@]?`)

// classify gives a Buildah error its kind and names what failed: the
// Dockerfile line of a failing step, the registry of a failing pull. The
// result carries Buildah's message, not its error chain: a failed RUN's
// chain holds the step's *exec.ExitError, whose exit code must not
// become kimia's.
func classify(ctx context.Context, err error, req *engine.Request, plat engine.Platform, foreign bool) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return engine.Errorf(engine.KindCanceled, "building: %v", context.Cause(ctx))
	}
	msg := stepDump.ReplaceAllString(err.Error(), "")
	where := ""
	if m := stepRE.FindStringSubmatch(msg); m != nil {
		if line := instructionLine(req.Dockerfile, m[1]); line > 0 {
			where = fmt.Sprintf("%s:%d: ", dockerfileName(req), line)
		}
	}
	host := ""
	if m := pullRef.FindStringSubmatch(msg); m != nil {
		host = m[1]
	}
	switch {
	case foreign && engine.Emulator(plat) != nil && (strings.Contains(msg, `building at STEP "RUN`) || errors.Is(err, syscall.ENOEXEC) || strings.Contains(msg, "exec format error")):
		// Without a handler the chroot runtime reports only a failed
		// exec, so any failed RUN of a foreign platform means this.
		return fmt.Errorf("%s%w", where, engine.MissingEmulatorError(plat))
	case isAuthError(err):
		return engine.NewPullError(engine.PullError{Where: where, Registry: host, Problem: engine.PullUnauthorized,
			Credentials: engine.CredentialsSource(&req.Registry), Detail: msg})
	case isRegistryError(err):
		e := engine.PullError{Where: where, Registry: host, Detail: msg}
		switch {
		case strings.Contains(msg, "manifest unknown") || strings.Contains(msg, "name unknown") || strings.Contains(msg, "not found"):
			e.Problem = engine.PullNotFound
		case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
			e.Problem = engine.PullPlainHTTP
		case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
			e.Problem = engine.PullTLS
		case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "i/o timeout") || strings.Contains(msg, "network is unreachable"):
			e.Problem = engine.PullUnreachable
		}
		return engine.NewPullError(e)
	case strings.Contains(msg, "was not found in the provided Dockerfile") || strings.Contains(msg, "the target") && strings.Contains(msg, "not found"):
		return engine.Errorf(engine.KindUsage, "%s=%s: no such stage in %s: %s", engine.FieldTarget, req.Target, dockerfileName(req), msg)
	}
	return engine.Errorf(engine.KindBuild, "%s%s", where, msg)
}

// checkDockerfile rejects what Buildah's parser accepts and only fails
// on when the step runs: unknown instructions. The error names the line,
// before any image is pulled.
func checkDockerfile(req *engine.Request) error {
	f, err := os.Open(req.Dockerfile)
	if err != nil {
		return engine.Errorf(engine.KindContext, "reading the Dockerfile %q: %v", dockerfileName(req), err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		return engine.Errorf(engine.KindBuild, "%s: parsing: %v", dockerfileName(req), err)
	}
	for _, n := range res.AST.Children {
		if !knownInstructions[strings.ToLower(n.Value)] {
			return engine.Errorf(engine.KindBuild, "%s:%d: unknown instruction: %s", dockerfileName(req), n.StartLine, strings.ToUpper(n.Value))
		}
	}
	return nil
}

var knownInstructions = map[string]bool{
	"from": true, "run": true, "cmd": true, "label": true, "maintainer": true, "expose": true,
	"env": true, "add": true, "copy": true, "entrypoint": true, "volume": true, "user": true,
	"workdir": true, "arg": true, "onbuild": true, "stopsignal": true, "healthcheck": true, "shell": true,
}

func dockerfileName(req *engine.Request) string {
	if req.DockerfileName != "" {
		return req.DockerfileName
	}
	return req.Dockerfile
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
