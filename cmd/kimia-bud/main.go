// Command kimia-bud builds OCI images from Dockerfiles with Buildah, used
// in-process as a library; Kaniko's flags are accepted.
package main

import (
	"os"

	"github.com/rapidfort/kimia/engine/buildah"
	"github.com/rapidfort/kimia/flags"
	"github.com/rapidfort/kimia/preflight"
)

func main() {
	// Buildah re-executes this binary for its helpers and to enter a user
	// namespace when rootless, and the preflight's user-namespace probe
	// does too; either must happen before anything else.
	done, err := buildah.InitReexec()
	if err != nil {
		os.Exit(flags.Exit(os.Stderr, flags.KimiaBud.Name, err))
	}
	if done || preflight.MaybeRunProbeChild() {
		return
	}
	ctx, stop := flags.SignalContext()
	code := flags.Main(ctx, flags.KimiaBud.WithEngine(buildah.New()), os.Args)
	stop()
	os.Exit(code)
}
