// Command kimia-bud builds OCI images from Dockerfiles with Buildah, used
// in-process as a library; Kaniko's flags are accepted.
package main

import (
	"os"

	"github.com/rapidfort/kimia/engine/buildah"
	"github.com/rapidfort/kimia/flags"
)

func main() {
	// Buildah re-executes this binary for its helpers and to enter a user
	// namespace when rootless; that must happen before anything else.
	if buildah.InitReexec() {
		return
	}
	ctx, stop := flags.SignalContext()
	code := flags.Main(ctx, flags.Binary{
		Name:       "kimia-bud",
		Engine:     buildah.New(),
		EngineName: "Buildah",
		OptionFlag: "buildah-opt",
	}, os.Args)
	stop()
	os.Exit(code)
}
