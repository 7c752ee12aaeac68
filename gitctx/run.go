package gitctx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// gitCmd runs git with kimia's fixed settings. Nothing secret is ever in
// its arguments; secrets are in env only and scrubbed from anything git
// prints.
type gitCmd struct {
	dir     string
	env     []string
	config  []string // -c KEY=VALUE pairs, no secrets
	secrets []string
	log     *slog.Logger
}

// droppedEnv are variables of the kimia process that git must not see:
// repository overrides that would point git elsewhere, prompts, and
// Kaniko's credential variables (kimia passes credentials its own way).
var droppedEnv = []string{
	"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
	"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
	"GIT_CEILING_DIRECTORIES", "GIT_ASKPASS", "SSH_ASKPASS", "GIT_TERMINAL_PROMPT",
	EnvToken, EnvPassword, EnvUsername, "LC_ALL", "LANG", "LANGUAGE",
	"GIT_TRACE_REDACT", // keep git's masking of Authorization headers in traces
}

func childEnv(base []string, extra ...string) []string {
	var env []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		drop := strings.HasPrefix(k, "KIMIA_GIT_CRED_")
		for _, d := range droppedEnv {
			drop = drop || k == d
		}
		if !drop {
			env = append(env, kv)
		}
	}
	env = append(env,
		"GIT_TERMINAL_PROMPT=0", // fail instead of waiting for a user
		"GIT_ASKPASS=",          // empty: no askpass program, not even SSH_ASKPASS
		"LC_ALL=C",              // messages are matched below
	)
	return append(env, extra...)
}

// gitError is a failed git command, with its redacted stderr.
type gitError struct {
	args   []string
	stderr string
	err    error
}

func (e *gitError) Error() string {
	msg := lastLines(e.stderr, 4)
	if msg == "" {
		msg = e.err.Error()
	}
	return fmt.Sprintf("git %s: %s", strings.Join(e.args, " "), msg)
}

func (e *gitError) Unwrap() error { return e.err }

func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		l = strings.TrimSpace(l)
		// Progress and hints carry no reason.
		if l == "" || strings.HasPrefix(l, "hint:") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// run runs git ARGS in g.dir and returns its stdout.
func (g *gitCmd) run(ctx context.Context, args ...string) (string, error) {
	full := make([]string, 0, len(g.config)*2+len(args))
	for _, c := range g.config {
		full = append(full, "-c", c)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Dir = g.dir
	cmd.Env = g.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = nil
	// git starts helpers (remote-https, ssh, upload-pack, the credential
	// helper); put them all in one process group so that cancelation
	// kills the whole tree, and have the kernel kill git if kimia dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	g.log.Debug("running git", "args", strings.Join(args, " "), "dir", g.dir)
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		// Reap stragglers that outlived git itself.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		if errors.Is(err, exec.ErrNotFound) {
			return "", &gitError{args: args, err: fmt.Errorf("git is not installed (kimia fetches git contexts with the git CLI)")}
		}
		return "", &gitError{args: args, stderr: g.redact(stderr.String()), err: err}
	}
	g.log.Debug("git done", "args", args[0], "seconds", fmt.Sprintf("%.2f", time.Since(start).Seconds()))
	return stdout.String(), nil
}

// redact replaces every secret in s.
func (g *gitCmd) redact(s string) string {
	for _, sec := range g.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// with returns a copy of g running in dir.
func (g *gitCmd) with(dir string) *gitCmd {
	c := *g
	c.dir = dir
	return &c
}

// failure classifies a git failure by what git printed.
type failure int

const (
	failOther failure = iota
	failAuth
	failMissing   // the ref or object does not exist (or is not served)
	failShallow   // the server cannot serve shallow or by-id fetches
	failTransport // the server could not be reached
)

func classify(err error) failure {
	var ge *gitError
	if !errors.As(err, &ge) {
		return failOther
	}
	s := strings.ToLower(ge.stderr)
	has := func(subs ...string) bool {
		for _, sub := range subs {
			if strings.Contains(s, sub) {
				return true
			}
		}
		return false
	}
	switch {
	case has("authentication failed", "could not read username", "could not read password",
		"terminal prompts disabled", "returned error: 401", "returned error: 403",
		"permission denied (publickey", "host key verification failed", "access denied",
		"invalid username or password", "http basic: access denied"):
		return failAuth
	case has("not our ref", "couldn't find remote ref", "no such remote ref", "unadvertised object",
		"unknown revision", "did not send all necessary objects", "not a valid object", "bad object"):
		return failMissing
	case has("shallow", "dumb http transport does not support", "allowreachablesha1inwant",
		"allowanysha1inwant", "does not support"):
		return failShallow
	case has("could not resolve host", "connection refused", "connection timed out",
		"failed to connect", "no route to host", "unable to connect", "could not read from remote repository",
		"the remote end hung up", "ssl certificate problem", "server certificate verification failed"):
		return failTransport
	}
	return failOther
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
