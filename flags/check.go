package flags

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/rapidfort/kimia/engine"
	"github.com/rapidfort/kimia/preflight"
	"github.com/rapidfort/kimia/registry"
)

// checkCommand is `kimia check`: every preflight probe, live, with what to
// change for each failure. It takes the build's flags, so the same
// arguments can be checked before they are used.
func checkCommand(b Binary) *cli.Command {
	fl := append(commonFlags(b.OptionFlag, b.EngineName), &cli.BoolFlag{Name: "json", Usage: "print the results as JSON"})
	return &cli.Command{
		Name:      "check",
		Usage:     "check that this machine or pod can build: user namespaces, overlay, QEMU, runc, the engine, registries, disk",
		UsageText: b.Name + " check [--platform=...] [--destination=...] [--cache-dir=...] [--json]",
		Flags:     fl,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return engine.Wrap(engine.KindUsage, fmt.Errorf("%s", friendlyUsage(err)))
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return engine.Errorf(engine.KindUsage, "unexpected argument %q", c.Args().First())
			}
			r := &resolver{c: c, onCLI: cliFlagNames(c.App, os.Args[1:]), getenv: os.LookupEnv, lenient: true}
			o, err := r.resolve(b.OptionFlag)
			if err != nil {
				return err
			}
			names := FieldNames(b.OptionFlag)
			var results []preflight.Result
			info, err := b.Engine.Info(c.Context)
			if err != nil {
				results = append(results, preflight.Result{Name: "engine", Status: preflight.Fail, Detail: err.Error()})
			}
			reg := registry.New(o.Engine.Registry, 0, o.Publish.PushBackoff)
			results = append(results, preflight.Run(c.Context, preflight.Options{
				Info: info, Platforms: o.Engine.Platforms, CacheDir: o.Engine.Cache.Dir, Probe: true,
				Destinations: o.Publish.Destinations, PushCheck: reg.CheckPushPermission,
			})...)
			for i := range results {
				results[i].Detail = engine.NameFields(results[i].Detail, names)
				results[i].Fix = engine.NameFields(results[i].Fix, names)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				enc.Encode(results)
			} else {
				tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
				for _, res := range results {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", res.Status, res.Name, res.Detail)
					if res.Fix != "" && res.Status != preflight.OK {
						fmt.Fprintf(tw, "\t\tfix: %s\n", res.Fix)
					}
				}
				tw.Flush()
			}
			return preflight.Failed(results, "")
		},
	}
}
