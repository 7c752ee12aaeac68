package buildkit

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/errdefs"

	"github.com/rapidfort/kimia/engine"
)

// BuildKit reports registry failures as wrapped text from containerd's
// resolver, without typed causes or gRPC codes, so these patterns pick
// them apart. They only classify an error; the message keeps BuildKit's
// own words.
var (
	sourceRef   = regexp.MustCompile(`failed to resolve source metadata for (\S+): `)
	requestHost = regexp.MustCompile(`(?i)(?:head|get|post|put|patch) "https?://([^/"]+)`)
	authFailed  = []string{"401 Unauthorized", "403 Forbidden", "failed to authorize", "insufficient_scope", "unauthorized:", "denied:"}
	unreachable = []string{"connection refused", "no such host", "i/o timeout", "network is unreachable", "connection reset", "TLS handshake timeout", "context deadline exceeded", "no route to host"}
	notFound    = []string{": not found", "manifest unknown", "name unknown", "404 Not Found"}
	tlsFailed   = []string{"x509:", "tls:", "certificate"}
)

// classify gives a failed solve its kind and a message that names the
// Dockerfile line or the registry. failedLog is the output of the step
// that failed, if any.
func classify(ctx context.Context, err error, req *engine.Request, failedLog string) error {
	if ctx.Err() != nil {
		return engine.Wrap(engine.KindCanceled, fmt.Errorf("building: %w", context.Cause(ctx)))
	}
	msg := strings.TrimPrefix(err.Error(), "failed to solve: ")
	where := sourceLine(err, req)

	var exit *gatewaypb.ExitError
	if errors.As(err, &exit) {
		if strings.Contains(failedLog, "exec format error") {
			want := req.Platforms
			if len(want) == 0 {
				want = []engine.Platform{engine.HostPlatform()}
			}
			if missing := missingPlatforms(want); len(missing) > 0 {
				return fmt.Errorf("%s%w", where, engine.MissingEmulatorError(missing[0]))
			}
		}
		return engine.Errorf(engine.KindBuild, "%s%s", where, msg)
	}

	if m := sourceRef.FindStringSubmatch(msg); m != nil || requestHost.MatchString(msg) {
		host := ""
		if m != nil {
			host, _ = imageHost(m[1])
		} else {
			host = requestHost.FindStringSubmatch(msg)[1]
		}
		ref := ""
		if m != nil {
			ref = m[1]
		}
		return registryError(where, msg, host, ref, req)
	}
	return engine.Errorf(engine.KindBuild, "%s%s", where, msg)
}

// registryError classifies a failed pull from host.
func registryError(where, msg, host, ref string, req *engine.Request) error {
	// The resolver repeats the reference; the message says it once.
	short := msg
	if m := sourceRef.FindStringIndex(short); m != nil {
		short = short[m[1]:]
	}
	if ref != "" {
		short = strings.TrimPrefix(short, ref+": ")
	}
	e := engine.PullError{Where: where, Registry: host, Image: ref, Detail: short}
	switch {
	case containsAny(msg, authFailed):
		e.Problem, e.Credentials = engine.PullUnauthorized, engine.CredentialsSource(&req.Registry)
	case containsAny(msg, notFound):
		e.Problem = engine.PullNotFound
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		e.Problem = engine.PullPlainHTTP
	case containsAny(msg, tlsFailed):
		e.Problem = engine.PullTLS
	case containsAny(msg, unreachable):
		e.Problem = engine.PullUnreachable
	}
	return engine.NewPullError(e)
}

// transientPull reports whether a failed solve is worth another try
// (Request.ImageDownloadRetry): a registry that failed in a way that may pass,
// never a failed RUN or a Dockerfile error.
func transientPull(err error) bool {
	var exit *gatewaypb.ExitError
	if errors.As(err, &exit) {
		return false
	}
	msg := err.Error()
	return (sourceRef.MatchString(msg) || requestHost.MatchString(msg)) && engine.TransientText(msg)
}

// sourceLine names the Dockerfile line an error is about, as
// "Dockerfile:3: RUN make: ", from the source location BuildKit attaches.
func sourceLine(err error, req *engine.Request) string {
	name := req.DockerfileName
	if name == "" {
		name = req.Dockerfile
	}
	for _, s := range errdefs.Sources(err) {
		if s.Info == nil || len(s.Ranges) == 0 {
			continue
		}
		line := int(s.Ranges[0].Start.Line)
		if line <= 0 {
			continue
		}
		text := ""
		if lines := strings.Split(string(s.Info.Data), "\n"); line <= len(lines) {
			text = strings.TrimSpace(lines[line-1])
			if len(text) > 80 {
				text = text[:77] + "..."
			}
		}
		if text != "" {
			return fmt.Sprintf("%s:%d: %s: ", name, line, text)
		}
		return fmt.Sprintf("%s:%d: ", name, line)
	}
	return ""
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
