package buildah

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"go.podman.io/buildah/define"
)

// heredocContext names the build context that holds the scripts of
// rewritten heredocs; it cannot clash with a stage name (those have no
// dots).
const heredocContext = "kimia.heredocs"

var safeHeredocName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// rewriteDockerfile works around Buildah where it runs a Dockerfile
// differently from BuildKit, by rewriting the Dockerfile it is given. It
// returns the path of the Dockerfile to build (the original when nothing
// changed) and the build contexts the rewrite adds. Line numbers stay
// those of the original, so messages point at the user's lines.
//
// A RUN whose command is one heredoc starting with "#!" is a script that
// BuildKit writes to /dev/pipes/<NAME> (mode 0755, exactly the heredoc's
// text) and runs, so that the kernel starts the interpreter the shebang
// names. Buildah writes the script with an extra first line and, under
// chroot isolation, cannot mount it under /dev at all (the step fails:
// containers/buildah#6331). The rewrite writes the script as BuildKit does
// and bind-mounts it from a build context of its own: at BuildKit's path
// under OCI isolation, at /run/kimia-heredoc/<NAME> under chroot, which
// mounts nothing under /dev.
func rewriteDockerfile(path, work string, iso define.Isolation) (string, map[string]*define.AdditionalBuildContext, error) {
	dt, err := os.ReadFile(path)
	if err != nil {
		return path, nil, nil // Buildah reports it
	}
	res, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return path, nil, nil
	}
	lines := strings.SplitAfter(string(dt), "\n")
	dir := filepath.Join(work, "heredocs")
	target := "/dev/pipes"
	if iso == define.IsolationChroot {
		target = "/run/kimia-heredoc"
	}
	changed := false
	for _, n := range res.AST.Children {
		if !strings.EqualFold(n.Value, "run") || len(n.Heredocs) != 1 {
			continue
		}
		cmd, err := instructions.ParseInstruction(n)
		if err != nil {
			continue
		}
		run, ok := cmd.(*instructions.RunCommand)
		if !ok || !run.PrependShell || len(run.CmdLine) != 1 || len(run.Files) != 1 || parser.MustParseHeredoc(run.CmdLine[0]) == nil {
			continue
		}
		data := run.Files[0].Data
		if run.Files[0].Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if !strings.HasPrefix(data, "#!") || n.StartLine < 1 || n.EndLine > len(lines) {
			continue
		}
		sum := sha256.Sum256([]byte(data))
		file := hex.EncodeToString(sum[:])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, err
		}
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			return "", nil, err
		}
		if err := os.Chmod(p, 0o755); err != nil { // past the umask
			return "", nil, err
		}
		name := run.Files[0].Name
		if !safeHeredocName.MatchString(name) {
			name = "EOF"
		}
		script := target + "/" + name
		flags := append([]string(nil), n.Flags...)
		flags = append(flags, fmt.Sprintf("--mount=type=bind,from=%s,source=%s,target=%s", heredocContext, file, script))
		lines[n.StartLine-1] = "RUN " + strings.Join(flags, " ") + " " + script + "\n"
		for i := n.StartLine; i < n.EndLine; i++ {
			lines[i] = "\n"
		}
		changed = true
	}
	if !changed {
		return path, nil, nil
	}
	out := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(out, []byte(strings.Join(lines, "")), 0o644); err != nil {
		return "", nil, err
	}
	return out, map[string]*define.AdditionalBuildContext{heredocContext: {Value: dir}}, nil
}
