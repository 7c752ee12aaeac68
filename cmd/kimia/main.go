// Command kimia builds OCI images from Dockerfiles with BuildKit, driving
// a buildkitd it starts itself; Kaniko's flags are accepted.
package main

import (
	"os"

	"github.com/rapidfort/kimia/engine/buildkit"
	"github.com/rapidfort/kimia/flags"
)

func main() {
	ctx, stop := flags.SignalContext()
	code := flags.Main(ctx, flags.Binary{
		Name:       "kimia",
		Engine:     buildkit.New(),
		EngineName: "BuildKit",
		OptionFlag: "buildkit-opt",
	}, os.Args)
	stop()
	os.Exit(code)
}
