package buildah

// kimia-bud writes the image config BuildKit's Dockerfile frontend and
// exporter would write for the same Dockerfile: BuildKit's history format
// (the instruction after expansion, "# buildkit" on RUN, COPY and ADD,
// comment buildkit.dockerfile.v0), its config rules (SHELL for shell-form
// CMD and ENTRYPOINT, ArgsEscaped, ENV replaced in place, normalized
// platform and ports) and its bytes (the exporter's sorted top-level
// keys). With the layers equal, kimia and kimia-bud then give one digest.
//
// What follows is a port of the config part of BuildKit v0.34.2's
// frontend/dockerfile/dockerfile2llb (convert.go, convert_copy.go,
// convert_expose.go, image.go, platform.go) and of the exporter's
// patchImageConfig (exporter/containerimage/writer.go): kimia-bud cannot
// link that package, which needs BuildKit's client. Buildah's own config
// is the fallback when the port and Buildah's layers disagree.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/buildkit/util/system"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rapidfort/kimia/engine"
)

const bkHistoryComment = "buildkit.dockerfile.v0"

// bkInput is what BuildKit's frontend is given by kimia.
type bkInput struct {
	Dockerfile []byte
	Target     string
	// BuildArgs are the build-arg:* attributes kimia sends, including
	// SOURCE_DATE_EPOCH when it is set.
	BuildArgs map[string]string
	Labels    map[string]string
	// BuildPlatform is the worker's; TargetPlatform is nil when kimia asks
	// for no platform.
	BuildPlatform  ocispec.Platform
	TargetPlatform *ocispec.Platform
	// BaseConfig returns the config of the image a stage starts FROM.
	BaseConfig func(name string) (*dockerspec.DockerOCIImage, error)
}

// bkRequest describes req to bkInput as kimia describes it to BuildKit
// (engine/buildkit translate.go): the build args and labels, the
// SOURCE_DATE_EPOCH build arg, and a platform only when the request names
// one.
func bkRequest(req *engine.Request, dockerfile []byte, base func(string) (*dockerspec.DockerOCIImage, error)) func(engine.Platform) bkInput {
	args := map[string]string{}
	for _, kv := range req.BuildArgs {
		args[kv.Key] = kv.Value
	}
	if req.SourceDateEpoch != nil {
		args["SOURCE_DATE_EPOCH"] = strconv.FormatInt(req.SourceDateEpoch.Unix(), 10)
	}
	var labels map[string]string
	for _, kv := range req.Labels {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[kv.Key] = kv.Value
	}
	return func(p engine.Platform) bkInput {
		in := bkInput{Dockerfile: dockerfile, Target: req.Target, BuildArgs: args, Labels: labels,
			BuildPlatform: platforms.Normalize(platforms.DefaultSpec()), BaseConfig: base}
		if len(req.Platforms) > 0 {
			tp := platforms.Normalize(ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant})
			in.TargetPlatform = &tp
		}
		return in
	}
}

// bkEnv is the environment of a stage as BuildKit's LLB state keeps it.
type bkEnv struct {
	keys []string
	vals map[string]string
}

func newBkEnv() *bkEnv { return &bkEnv{vals: map[string]string{}} }

func (e *bkEnv) Get(k string) (string, bool) { v, ok := e.vals[k]; return v, ok }
func (e *bkEnv) Keys() []string              { return slices.Clone(e.keys) }
func (e *bkEnv) Set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}
func (e *bkEnv) clone() *bkEnv { return &bkEnv{keys: slices.Clone(e.keys), vals: maps.Clone(e.vals)} }

type bkStage struct {
	st        instructions.Stage
	base      *bkStage
	img       dockerspec.DockerOCIImage
	env       *bkEnv
	buildArgs []instructions.KeyValuePairOptional
	cmdSet    bool
	done      bool
	// baseHistory and baseLayers are the history entries and layers the
	// image at the root of the stage's chain came with.
	baseHistory, baseLayers int
}

type bkConverter struct {
	in     bkInput
	shlex  *shell.Lex
	global *bkEnv
	tp     ocispec.Platform
	epoch  *time.Time
}

// bkImage is the image BuildKit's frontend makes, and what of it the base
// image brought.
type bkImage struct {
	img                     *dockerspec.DockerOCIImage
	baseHistory, baseLayers int
}

// buildkitImage returns the image BuildKit's frontend makes of in.
func buildkitImage(in bkInput) (*bkImage, error) {
	res, err := parser.Parse(bytes.NewReader(in.Dockerfile))
	if err != nil {
		return nil, err
	}
	if _, _, _, ok := parser.DetectSyntax(in.Dockerfile); ok {
		return nil, errors.New("a # syntax= directive hands the build to another frontend")
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, err
	}
	if len(stages) == 0 {
		return nil, errors.New("no stage")
	}
	c := &bkConverter{in: in, shlex: shell.NewLex(res.EscapeToken), tp: in.BuildPlatform}
	if in.TargetPlatform != nil {
		c.tp = *in.TargetPlatform
	}
	target := in.Target
	if target == "" {
		target = stages[len(stages)-1].Name
	}
	c.global = c.defaultArgs(target)
	for _, cmd := range metaArgs {
		for _, kp := range cmd.Args {
			if v, ok := in.BuildArgs[kp.Key]; ok {
				c.global.Set(kp.Key, v)
				continue
			}
			if kp.Value != nil {
				v, _, err := c.shlex.ProcessWord(*kp.Value, c.global)
				if err != nil {
					return nil, err
				}
				c.global.Set(kp.Key, v)
			}
		}
	}
	if v, ok := in.BuildArgs["SOURCE_DATE_EPOCH"]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("SOURCE_DATE_EPOCH %q", v)
		}
		t := time.Unix(n, 0).UTC()
		c.epoch = &t
	}

	var all []*bkStage
	byName := map[string]*bkStage{}
	for _, st := range stages {
		name, _, err := c.shlex.ProcessWord(st.BaseName, c.global)
		if err != nil {
			return nil, err
		}
		if st.Platform != "" {
			return nil, errors.New("FROM --platform is not ported")
		}
		st.BaseName = name
		s := &bkStage{st: st}
		s.base = byName[st.BaseName]
		if st.Name != "" {
			byName[strings.ToLower(st.Name)] = s
		}
		all = append(all, s)
	}
	t := all[len(all)-1]
	if in.Target != "" {
		if t = byName[strings.ToLower(in.Target)]; t == nil {
			return nil, fmt.Errorf("target %q not found", in.Target)
		}
	}
	if err := c.run(t); err != nil {
		return nil, err
	}

	img := t.img
	if len(in.Labels) != 0 && img.Config.Labels == nil {
		img.Config.Labels = map[string]string{}
	}
	maps.Copy(img.Config.Labels, in.Labels)
	if in.TargetPlatform != nil {
		tp := *in.TargetPlatform
		same := tp.OS == img.OS && tp.Architecture == img.Architecture
		img.OS, img.Architecture = tp.OS, tp.Architecture
		if tp.Variant != "" || !same {
			img.Variant = tp.Variant
		}
		if tp.OSVersion != "" || !same {
			img.OSVersion = tp.OSVersion
		}
		if tp.OSFeatures != nil {
			img.OSFeatures = slices.Clone(tp.OSFeatures)
		}
	}
	img.Platform = platforms.Normalize(img.Platform)
	return &bkImage{img: &img, baseHistory: t.baseHistory, baseLayers: t.baseLayers}, nil
}

func (c *bkConverter) defaultArgs(target string) *bkEnv {
	bp, tp := c.in.BuildPlatform, c.tp
	if target == "" {
		target = "default"
	}
	env := newBkEnv()
	for _, kv := range [...][2]string{
		{"BUILDPLATFORM", platforms.Format(bp)}, {"BUILDOS", bp.OS}, {"BUILDOSVERSION", bp.OSVersion},
		{"BUILDARCH", bp.Architecture}, {"BUILDVARIANT", bp.Variant},
		{"TARGETPLATFORM", platforms.FormatAll(tp)}, {"TARGETOS", tp.OS}, {"TARGETOSVERSION", tp.OSVersion},
		{"TARGETARCH", tp.Architecture}, {"TARGETVARIANT", tp.Variant}, {"TARGETSTAGE", target},
	} {
		v := kv[1]
		if ov, ok := c.in.BuildArgs[kv[0]]; ok {
			v = ov
		}
		env.Set(kv[0], v)
	}
	return env
}

// run dispatches stage s (and the stages it starts from).
func (c *bkConverter) run(s *bkStage) error {
	var triggers []string
	switch {
	case s.base != nil:
		if !s.base.done {
			if err := c.run(s.base); err != nil {
				return err
			}
		}
		s.img = bkClone(s.base.img)
		s.img.Config.OnBuild = nil
		s.env = s.base.env.clone()
		s.buildArgs = slices.Clone(s.base.buildArgs)
		s.baseHistory, s.baseLayers = s.base.baseHistory, s.base.baseLayers
		for _, cmd := range s.base.st.Commands {
			if ob, ok := cmd.(*instructions.OnbuildCommand); ok {
				triggers = append(triggers, ob.Expression)
			}
		}
	case strings.EqualFold(s.st.BaseName, "scratch"):
		s.img = bkEmptyImage(c.tp)
		s.env = newBkEnv()
	default:
		b, err := c.in.BaseConfig(s.st.BaseName)
		if err != nil {
			return err
		}
		s.img = bkClone(*b)
		s.img.Created = nil
		s.env = newBkEnv()
		s.baseHistory, s.baseLayers = len(s.img.History), len(s.img.RootFS.DiffIDs)
		triggers = slices.Clone(s.img.Config.OnBuild)
		s.img.Config.OnBuild = nil
	}
	os := s.img.OS
	if os == "" {
		os = c.tp.OS
	}
	if _, ok := shell.EnvsFromSlice(s.img.Config.Env).Get("PATH"); !ok && os != "windows" {
		s.img.Config.Env = append(s.img.Config.Env, "PATH="+system.DefaultPathEnv(os))
	}
	for _, kv := range s.img.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		s.env.Set(k, v)
	}
	if wd := s.img.Config.WorkingDir; wd != "" {
		n, err := system.NormalizeWorkdir(wd, wd, os)
		if err != nil {
			return err
		}
		s.img.Config.WorkingDir = n
	}
	cmds := make([]instructions.Command, 0, len(triggers)+len(s.st.Commands))
	for _, t := range triggers {
		ast, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return err
		}
		if len(ast.AST.Children) != 1 {
			return errors.New("onbuild trigger should be a single expression")
		}
		ic, err := instructions.ParseCommand(ast.AST.Children[0])
		if err != nil {
			return err
		}
		cmds = append(cmds, ic)
	}
	cmds = append(cmds, s.st.Commands...)
	for _, cmd := range cmds {
		if err := c.dispatch(s, cmd, os); err != nil {
			return err
		}
	}
	s.done = true
	return nil
}

func (c *bkConverter) commit(s *bkStage, msg string, layer, buildkitSuffix bool) {
	if buildkitSuffix {
		msg += " # buildkit"
	}
	s.img.History = append(s.img.History, ocispec.History{CreatedBy: msg, Comment: bkHistoryComment, EmptyLayer: !layer, Created: c.epoch})
}

func (c *bkConverter) dispatch(s *bkStage, cmd instructions.Command, os string) error {
	if _, isArg := cmd.(*instructions.ArgCommand); !isArg {
		if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
			if err := e.Expand(func(w string) (string, error) {
				r, _, err := c.shlex.ProcessWord(w, s.env)
				return r, err
			}); err != nil {
				return err
			}
		}
	}
	if e, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := e.ExpandRaw(func(w string) (string, error) {
			lex := shell.NewLex('\\')
			lex.SkipProcessQuotes = true
			r, _, err := lex.ProcessWord(w, s.env)
			return r, err
		}); err != nil {
			return err
		}
	}
	cfg := &s.img.Config
	switch cmd := cmd.(type) {
	case *instructions.EnvCommand:
		msg := "ENV"
		for _, e := range cmd.Env {
			msg += " " + e.String()
			s.env.Set(e.Key, e.Value)
			cfg.Env = bkAddEnv(cfg.Env, e.Key, e.Value)
		}
		c.commit(s, msg, false, false)
	case *instructions.LabelCommand:
		msg := "LABEL"
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, l := range cmd.Labels {
			cfg.Labels[l.Key] = l.Value
			msg += " " + l.String()
		}
		c.commit(s, msg, false, false)
	case *instructions.MaintainerCommand:
		s.img.Author = cmd.Maintainer
		c.commit(s, "MAINTAINER "+cmd.Maintainer, false, false)
	case *instructions.RunCommand:
		args, err := bkRunArgs(cmd, s.img, os)
		if err != nil {
			return err
		}
		c.commit(s, "RUN "+bkRunCommandString(args, s.buildArgs, s.env), true, true)
	case *instructions.CopyCommand:
		c.commit(s, bkCopyMessage("COPY", cmd.Parents, cmd.Chown, cmd.Chmod, cmd.SourcesAndDest), true, true)
	case *instructions.AddCommand:
		c.commit(s, bkCopyMessage("ADD", false, cmd.Chown, cmd.Chmod, cmd.SourcesAndDest), true, true)
	case *instructions.WorkdirCommand:
		wd, err := system.NormalizeWorkdir(cfg.WorkingDir, cmd.Path, os)
		if err != nil {
			return err
		}
		cfg.WorkingDir = wd
		wd = system.ToSlash(wd, os)
		c.commit(s, "WORKDIR "+wd, wd != "/", false)
	case *instructions.UserCommand:
		cfg.User = cmd.User
		c.commit(s, "USER "+cmd.User, false, false)
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range cmd.Volumes {
			if v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
		c.commit(s, fmt.Sprintf("VOLUME %v", cmd.Volumes), false, false)
	case *instructions.StopSignalCommand:
		cfg.StopSignal = cmd.Signal
		c.commit(s, "STOPSIGNAL "+cmd.Signal, false, false)
	case *instructions.ShellCommand:
		cfg.Shell = cmd.Shell
		c.commit(s, fmt.Sprintf("SHELL %v", cmd.Shell), false, false)
	case *instructions.CmdCommand:
		args := cmd.CmdLine
		if cmd.PrependShell {
			args = bkWithShell(s.img, os, args)
		}
		cfg.Cmd, cfg.ArgsEscaped, s.cmdSet = args, true, true //nolint:staticcheck // Docker's field, written as BuildKit writes it
		c.commit(s, fmt.Sprintf("CMD %q", args), false, false)
	case *instructions.EntrypointCommand:
		args := cmd.CmdLine
		if cmd.PrependShell {
			args = bkWithShell(s.img, os, args)
		}
		cfg.Entrypoint = args
		if !s.cmdSet {
			cfg.Cmd = nil
		}
		c.commit(s, fmt.Sprintf("ENTRYPOINT %q", args), false, false)
	case *instructions.HealthCheckCommand:
		hc := dockerspec.HealthcheckConfig{Test: cmd.Health.Test, Interval: cmd.Health.Interval, Timeout: cmd.Health.Timeout,
			StartPeriod: cmd.Health.StartPeriod, StartInterval: cmd.Health.StartInterval, Retries: cmd.Health.Retries}
		cfg.Healthcheck = &hc
		c.commit(s, fmt.Sprintf("HEALTHCHECK %+v", hc), false, false)
	case *instructions.ExposeCommand:
		var ports []string
		for _, p := range cmd.Ports {
			ps, err := c.shlex.ProcessWords(p, s.env)
			if err != nil {
				return err
			}
			ports = append(ports, ps...)
		}
		psp, err := bkParsePorts(ports)
		if err != nil {
			return err
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range psp {
			cfg.ExposedPorts[p] = struct{}{}
		}
		c.commit(s, fmt.Sprintf("EXPOSE %v", psp), false, false)
	case *instructions.ArgCommand:
		parts := make([]string, 0, len(cmd.Args))
		for _, a := range cmd.Args {
			bv, hasValue := c.in.BuildArgs[a.Key]
			hasDefault := a.Value != nil
			if !hasDefault && !hasValue {
				if v, ok := c.global.Get(a.Key); ok {
					a.Value = &v
				}
			}
			if hasValue {
				a.Value = &bv
			} else if hasDefault {
				v, _, err := c.shlex.ProcessWord(*a.Value, s.env)
				if err != nil {
					return err
				}
				a.Value = &v
			}
			if a.Value != nil && a.Key != "BUILDKIT_SBOM_SCAN_CONTEXT" && a.Key != "BUILDKIT_SBOM_SCAN_STAGE" {
				s.env.Set(a.Key, *a.Value)
			}
			s.buildArgs = append(s.buildArgs, a)
			p := a.Key
			if a.Value != nil {
				p += "=" + *a.Value
			}
			parts = append(parts, p)
		}
		c.commit(s, "ARG "+strings.Join(parts, " "), false, false)
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, cmd.Expression)
	default:
		return fmt.Errorf("instruction %T is not ported", cmd)
	}
	return nil
}

func bkWithShell(img dockerspec.DockerOCIImage, os string, args []string) []string {
	sh := []string{"/bin/sh", "-c"}
	if os == "windows" {
		sh = []string{"cmd", "/S", "/C"}
	}
	if len(img.Config.Shell) > 0 {
		sh = slices.Clone(img.Config.Shell)
	}
	return append(sh, strings.Join(args, " "))
}

func bkRunArgs(c *instructions.RunCommand, img dockerspec.DockerOCIImage, os string) ([]string, error) {
	args := c.CmdLine
	if len(c.Files) > 0 {
		if len(args) != 1 || !c.PrependShell {
			return nil, fmt.Errorf("parsing produced an invalid run command: %v", args)
		}
		if h := parser.MustParseHeredoc(args[0]); h != nil {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if img.OS != "windows" && strings.HasPrefix(data, "#!") {
				args = []string{path.Join("/dev/pipes/", c.Files[0].Name)}
			} else {
				args = []string{data}
			}
		} else {
			var b strings.Builder
			b.WriteString(args[0])
			for _, f := range c.Files {
				b.WriteByte('\n')
				b.WriteString(f.Data)
				b.WriteString(f.Name)
			}
			args = []string{b.String()}
		}
	}
	if c.PrependShell {
		args = bkWithShell(img, os, args)
	}
	return args, nil
}

func bkRunCommandString(args []string, buildArgs []instructions.KeyValuePairOptional, env shell.EnvGetter) string {
	var kv []string
	idx := map[string]int{}
	for _, a := range buildArgs {
		v, ok := env.Get(a.Key)
		if !ok {
			v = a.ValueString()
		}
		if i, ok := idx[a.Key]; ok {
			kv[i] = a.Key + "=" + v
		} else {
			idx[a.Key] = len(kv)
			kv = append(kv, a.Key+"="+v)
		}
	}
	if len(kv) > 0 {
		kv = append([]string{fmt.Sprintf("|%d", len(kv))}, kv...)
	}
	return strings.Join(append(kv, args...), " ")
}

func bkCopyMessage(cmd string, parents bool, chown, chmod string, p instructions.SourcesAndDest) string {
	var b strings.Builder
	b.WriteString(cmd)
	if parents {
		b.WriteString(" --parents")
	}
	if chown != "" {
		b.WriteString(" --chown=" + chown)
	}
	if chmod != "" {
		b.WriteString(" --chmod=" + chmod)
	}
	for _, s := range p.SourcePaths {
		b.WriteString(" " + s)
	}
	for _, s := range p.SourceContents {
		b.WriteString(" <<" + s.Path)
	}
	b.WriteString(" " + p.DestPath)
	return b.String()
}

func bkAddEnv(env []string, k, v string) []string {
	for i, e := range env {
		key, _, _ := strings.Cut(e, "=")
		if shell.EqualEnvKeys(key, k) {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// bkParsePorts turns EXPOSE values into "port/proto" entries, ranges
// expanded, as BuildKit does.
func bkParsePorts(ports []string) ([]string, error) {
	var out []string
	for _, raw := range ports {
		parts := strings.Split(raw, ":")
		container := parts[len(parts)-1]
		port, proto, _ := strings.Cut(container, "/")
		if port == "" {
			return nil, fmt.Errorf("invalid port: %q", raw)
		}
		switch strings.ToLower(proto) {
		case "":
			proto = "tcp"
		case "tcp", "udp", "sctp":
		default:
			return nil, fmt.Errorf("invalid proto: %s", proto)
		}
		start, end, isRange := strings.Cut(port, "-")
		lo, err := strconv.Atoi(start)
		if err != nil || lo < 0 || lo > 65535 {
			return nil, fmt.Errorf("invalid port: %q", raw)
		}
		hi := lo
		if isRange && start != end {
			if hi, err = strconv.Atoi(end); err != nil || hi < lo || hi > 65535 {
				return nil, fmt.Errorf("invalid port range: %q", raw)
			}
		}
		for p := lo; p <= hi; p++ {
			out = append(out, strconv.Itoa(p)+"/"+strings.ToLower(proto))
		}
	}
	return out, nil
}

func bkClone(src dockerspec.DockerOCIImage) dockerspec.DockerOCIImage {
	img := src
	img.Config.Env = slices.Clone(src.Config.Env)
	img.Config.Cmd = slices.Clone(src.Config.Cmd)
	img.Config.Entrypoint = slices.Clone(src.Config.Entrypoint)
	img.Config.OnBuild = slices.Clone(src.Config.OnBuild)
	img.Config.ExposedPorts = maps.Clone(src.Config.ExposedPorts)
	img.Config.Volumes = maps.Clone(src.Config.Volumes)
	img.Config.Labels = maps.Clone(src.Config.Labels)
	img.Config.Shell = slices.Clone(src.Config.Shell)
	if src.Config.Healthcheck != nil {
		hc := *src.Config.Healthcheck
		hc.Test = slices.Clone(src.Config.Healthcheck.Test)
		img.Config.Healthcheck = &hc
	}
	img.History = slices.Clone(src.History)
	return img
}

func bkEmptyImage(p ocispec.Platform) dockerspec.DockerOCIImage {
	img := dockerspec.DockerOCIImage{}
	img.Architecture = p.Architecture
	img.OS = p.OS
	img.OSVersion = p.OSVersion
	if p.OSFeatures != nil {
		img.OSFeatures = slices.Clone(p.OSFeatures)
	}
	img.Variant = p.Variant
	img.RootFS.Type = "layers"
	img.Config.WorkingDir = "/"
	if p.OS != "windows" {
		img.Config.Env = []string{"PATH=" + system.DefaultPathEnv(p.OS)}
	}
	return img
}

// config writes the image's config as BuildKit's exporter writes it over
// layers with diffIDs: the frontend's JSON, re-marshaled through a map
// (sorted top-level keys) with rootfs, history and created replaced.
// Without SOURCE_DATE_EPOCH the new history entries take created (the
// build's time). New history entries are aligned with the layers the
// engine made: a WORKDIR that BuildKit commits as a layer and Buildah
// does not is marked empty here; any other disagreement is an error.
func (b *bkImage) config(diffIDs []digest.Digest, created *time.Time) ([]byte, error) {
	img, baseHistory, baseLayers := b.img, b.baseHistory, b.baseLayers
	hist := slices.Clone(img.History)
	newLayers, wantLayers := 0, len(diffIDs)-baseLayers
	var workdirs []int
	for i := baseHistory; i < len(hist); i++ {
		if hist[i].Created == nil {
			hist[i].Created = created
		}
		if !hist[i].EmptyLayer {
			newLayers++
			if strings.HasPrefix(hist[i].CreatedBy, "WORKDIR ") {
				workdirs = append(workdirs, i)
			}
		}
	}
	if newLayers != wantLayers {
		if newLayers-len(workdirs) != wantLayers {
			return nil, fmt.Errorf("BuildKit's history has %d layers after the base image's %d, the build made %d", newLayers, baseLayers, wantLayers)
		}
		for _, i := range workdirs {
			hist[i].EmptyLayer = true
		}
	}
	out := *img
	out.Created = nil
	out.History = nil
	out.RootFS = ocispec.RootFS{}
	dt, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(dt, &m); err != nil {
		return nil, err
	}
	rootFS := ocispec.RootFS{Type: "layers"}
	rootFS.DiffIDs = append(rootFS.DiffIDs, diffIDs...)
	if m["rootfs"], err = json.Marshal(rootFS); err != nil {
		return nil, err
	}
	if len(hist) == 0 {
		hist = nil
	}
	if m["history"], err = json.Marshal(hist); err != nil {
		return nil, err
	}
	var tm *time.Time
	for _, h := range hist {
		if h.Created != nil {
			tm = h.Created
		}
	}
	if m["created"], err = json.Marshal(&tm); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}
