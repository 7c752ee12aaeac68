// Command kimia-sbom makes the SBOMs of kimia's and kimia-bud's images: it
// is the only binary that links syft. The main binaries start it with
// "serve" at the start of a build that asks for an SBOM and send it, on
// stdin, the images to catalog (see package attest/sbom).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rapidfort/kimia/attest/sbom/syftgen"
)

// Version is kimia's version, set at link time by the Makefile.
var Version = "dev"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "version" {
		fmt.Println("kimia-sbom", Version, "syft", syftgen.SyftVersion())
		return
	}
	if len(os.Args) != 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "kimia-sbom: error: usage: kimia-sbom serve | version (kimia and kimia-bud start it; it is not run by hand)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := syftgen.Serve(ctx, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kimia-sbom: error:", err)
		os.Exit(1)
	}
}
