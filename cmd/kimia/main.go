// Command kimia builds OCI images from Dockerfiles with BuildKit, driving
// a buildkitd it starts itself; Kaniko's flags are accepted.
package main

import (
	"os"

	"github.com/rapidfort/kimia/engine/buildkit"
	"github.com/rapidfort/kimia/flags"
	"github.com/rapidfort/kimia/preflight"
)

func main() {
	// The preflight's user-namespace probe re-executes this binary.
	if preflight.MaybeRunProbeChild() {
		return
	}
	ctx, stop := flags.SignalContext()
	code := flags.Main(ctx, flags.Kimia.WithEngine(buildkit.New()), os.Args)
	stop()
	os.Exit(code)
}
