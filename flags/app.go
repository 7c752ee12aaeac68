// Package flags is kimia's command line: the urfave/cli app shared by both
// binaries, Kaniko's flags and their validation, resolved once into an
// engine.Request.
package flags

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/rapidfort/kimia/build"
	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/publish"
)

// Version is kimia's version, set at link time by the Makefile.
var Version = "dev"

// Binary describes one of kimia's binaries.
type Binary struct {
	// Name is the binary's name: "kimia" or "kimia-bud".
	Name string
	// Engine builds the images.
	Engine engine.Engine
	// EngineName names the engine in help texts: "BuildKit" or "Buildah".
	EngineName string
	// OptionFlag is the engine's pass-through flag: "buildkit-opt" or
	// "buildah-opt".
	OptionFlag string
}

// The two binaries, described once: their mains add the engine, and the
// docs and deploy tests read their flags from here.
var (
	Kimia    = Binary{Name: "kimia", EngineName: "BuildKit", OptionFlag: "buildkit-opt"}
	KimiaBud = Binary{Name: "kimia-bud", EngineName: "Buildah", OptionFlag: "buildah-opt"}
	Binaries = []Binary{Kimia, KimiaBud}
)

// WithEngine is b building with e.
func (b Binary) WithEngine(e engine.Engine) Binary {
	b.Engine = e
	return b
}

// App returns the command-line application of b.
func App(b Binary) *cli.App {
	// -v is --verbosity, as in Kaniko; --version stays long-only.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version and exit"}
	app := &cli.App{
		Name:    b.Name,
		Usage:   "build OCI images from Dockerfiles with " + b.EngineName + ", daemonless and rootless",
		Version: Version,
		UsageText: b.Name + " --context=DIR|URL --dockerfile=Dockerfile --destination=registry/repo:tag [flags]\n" +
			b.Name + " version [--json]",
		Description: "Kaniko-compatible flags; every flag can also be set through the KIMIA_* variable shown beside it.\n" +
			"Exit codes: " + exitCodeSummary(),
		Flags:                     commonFlags(b.OptionFlag, b.EngineName),
		HideHelpCommand:           true,
		DisableSliceFlagSeparator: true,
		Writer:                    os.Stdout,
		ErrWriter:                 os.Stderr,
		Action:                    b.build,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return engine.Wrap(engine.KindUsage, errors.New(friendlyUsage(err)))
		},
		Commands: []*cli.Command{versionCommand(b), checkCommand(b)},
	}
	app.Before = func(c *cli.Context) error {
		// The root command builds and takes no arguments; "version" and
		// "help" are commands.
		if a := c.Args().First(); a != "" && app.Command(a) == nil {
			return engine.Errorf(engine.KindUsage, "unexpected argument %q: %s takes flags only (did you mean --context=%s?)", a, b.Name, a)
		}
		return nil
	}
	cli.HelpPrinter = func(w io.Writer, templ string, data any) {
		if a, ok := data.(*cli.App); ok && a == app {
			printHelp(w, app)
			return
		}
		cli.HelpPrinterCustom(w, templ, data, nil)
	}
	return app
}

// Main runs b with args (os.Args) and returns the process exit code,
// having printed any error to stderr. ctx should be canceled by SIGINT and
// SIGTERM with a SignalError cause (see SignalContext).
func Main(ctx context.Context, b Binary, args []string) int {
	app := App(b)
	err := checkArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	if err != nil && ctx.Err() != nil {
		// A signal stopped the build: say so, and exit as the signal says.
		// Errors that only echo the cancellation add nothing to it.
		cause := context.Cause(ctx)
		if errors.Is(err, context.Canceled) || strings.Contains(err.Error(), cause.Error()) {
			err = cause
		} else {
			err = fmt.Errorf("%w (%v)", cause, err)
		}
	}
	return Exit(app.ErrWriter, app.Name, nameFields(err, b.OptionFlag))
}

// SignalError is the cause of a context canceled by a signal.
type SignalError struct{ Signal syscall.Signal }

func (e SignalError) Error() string {
	switch e.Signal {
	case syscall.SIGINT:
		return "interrupted by SIGINT"
	case syscall.SIGTERM:
		return "interrupted by SIGTERM"
	}
	return "interrupted by " + e.Signal.String()
}

// ExitCode is 128 plus the signal number, as shells report it.
func (e SignalError) ExitCode() int { return 128 + int(e.Signal) }

// SignalContext returns a context canceled by the first SIGINT or SIGTERM
// (Kubernetes stops pods with SIGTERM). A second signal exits at once.
func SignalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		first := true
		for s := range ch {
			sig, _ := s.(syscall.Signal)
			if !first {
				os.Exit(SignalError{sig}.ExitCode())
			}
			first = false
			cancel(SignalError{sig})
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}

func (b Binary) build(c *cli.Context) error {
	r := &resolver{c: c, onCLI: cliFlagNames(c.App, os.Args[1:]), getenv: os.LookupEnv}
	o, err := r.resolve(b.OptionFlag)
	if err != nil {
		return err
	}
	for _, n := range r.notices {
		o.Log.Info("notice: " + n)
	}

	publish.KimiaVersion = Version // recorded in SBOMs and provenance
	sum, err := build.Run(c.Context, b.Engine, *o)
	if sum != nil {
		// Print what was pushed even when a later step (signing) failed,
		// so CI can tell what happened.
		for _, line := range sum.ResultLines() {
			fmt.Fprintln(c.App.Writer, line)
		}
	}
	if err != nil {
		return engine.Wrap(engine.KindInternal, err)
	}
	return nil
}

func progressMode(s, verbosity string) (engine.ProgressMode, error) {
	switch m := engine.ProgressMode(strings.ToLower(s)); m {
	case engine.ProgressAuto, engine.ProgressTTY, engine.ProgressPlain, engine.ProgressQuiet:
		if m == engine.ProgressAuto {
			switch strings.ToLower(verbosity) {
			case "error", "fatal", "panic":
				return engine.ProgressQuiet, nil
			}
		}
		return m, nil
	default:
		return "", usagef("progress", "%q is not auto, tty, plain or quiet", s)
	}
}

func versionCommand(b Binary) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print kimia's and the engine's versions",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON, with the engine's capabilities"}},
		Action: func(c *cli.Context) error {
			info, err := b.Engine.Info(c.Context)
			if err != nil {
				return engine.Wrap(engine.KindEnvironment, err)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Name    string      `json:"name"`
					Version string      `json:"version"`
					Go      string      `json:"go"`
					Engine  engine.Info `json:"engine"`
				}{b.Name, Version, runtime.Version(), info})
			}
			fmt.Fprintf(c.App.Writer, "%s %s (%s)\n", b.Name, Version, runtime.Version())
			fmt.Fprintf(c.App.Writer, "engine: %s %s\n", info.Name, info.Version)
			if info.Daemon != nil {
				fmt.Fprintf(c.App.Writer, "%s: %s (%s)\n", info.Daemon.Name, info.Daemon.Version, info.Daemon.Path)
			}
			return nil
		},
	}
}

// checkArgs rejects a value flag followed by another flag instead of a
// value ("--destination --no-push"): urfave/cli would take "--no-push" as
// the destination.
func checkArgs(app *cli.App, args []string) error {
	valueFlags, known := FlagKinds(app.Flags)
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		n, hasValue := flagName(a)
		if n == "" || hasValue || !valueFlags[n] {
			continue
		}
		if i+1 >= len(args) {
			return engine.Errorf(engine.KindUsage, "%s needs a value", a)
		}
		if next, _ := flagName(args[i+1]); next != "" && known[next] {
			return engine.Errorf(engine.KindUsage, "%s needs a value, but the next argument is the flag %s; write %s=VALUE", a, args[i+1], a)
		}
		i++
	}
	return nil
}

// flagName returns the name in "-f", "--flag" or "--flag=value".
func flagName(a string) (name string, hasValue bool) {
	if len(a) < 2 || a[0] != '-' {
		return "", false
	}
	n := strings.TrimLeft(a, "-")
	n, _, hasValue = strings.Cut(n, "=")
	return n, hasValue
}

// FlagKinds maps every flag name and alias to whether it takes a value
// (docs/docs_test.go checks documented commands with it).
func FlagKinds(flags []cli.Flag) (takesValue, known map[string]bool) {
	takesValue, known = map[string]bool{}, map[string]bool{"help": true, "h": true, "version": true}
	for _, f := range flags {
		dv, ok := f.(cli.DocGenerationFlag)
		for _, n := range f.Names() {
			known[n] = true
			takesValue[n] = ok && dv.TakesValue()
		}
	}
	return takesValue, known
}

// cliFlagNames returns the canonical names of the flags given in args.
func cliFlagNames(app *cli.App, args []string) map[string]bool {
	canon := map[string]string{}
	for _, f := range app.Flags {
		for _, n := range f.Names() {
			canon[n] = f.Names()[0]
		}
	}
	out := map[string]bool{}
	for _, a := range args {
		if a == "--" {
			break
		}
		if n, _ := flagName(a); canon[n] != "" {
			out[canon[n]] = true
		}
	}
	return out
}

// Exit codes, documented in --help and docs/cli-reference.md.
var exitCodes = []struct {
	kind engine.Kind
	code int
}{
	{engine.KindInternal, 1},
	{engine.KindUsage, 2},
	{engine.KindBuild, 3},
	{engine.KindRegistry, 4},
	{engine.KindAuth, 5},
	{engine.KindSigning, 6},
	{engine.KindContext, 7},
	{engine.KindEnvironment, 8},
}

// ExitCode maps an error to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var sig interface{ ExitCode() int }
	if errors.As(err, &sig) {
		return sig.ExitCode()
	}
	var e *engine.Error
	if !errors.As(err, &e) {
		// urfave/cli's own parse errors carry no kind.
		return 2
	}
	for _, c := range exitCodes {
		if c.kind == e.Kind {
			return c.code
		}
	}
	return 1
}

func exitCodeSummary() string {
	var parts []string
	for _, c := range exitCodes {
		parts = append(parts, fmt.Sprintf("%d %s", c.code, c.kind))
	}
	return "0 success, " + strings.Join(parts, ", ") + ", 130/143 interrupted by SIGINT/SIGTERM"
}

// Exit prints err (if any) and returns the exit code for it.
func Exit(stderr io.Writer, name string, err error) int {
	code := ExitCode(err)
	if err != nil {
		msg := err.Error()
		if code == 2 {
			msg += "\nRun '" + name + " --help' for the flags."
		}
		fmt.Fprintf(stderr, "%s: error: %s\n", name, msg)
	}
	return code
}
