// Command demo runs kimia's main job end to end on this machine: it starts
// an embedded registry on loopback, pushes an offline busybox base image to
// it, builds examples/hello with bin/kimia and bin/kimia-bud, pushes the
// results, reads them back and prints their digests.
package main

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/rapidfort/kimia/internal/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	root, _ := os.Getwd()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(l)
	defer srv.Close()
	reg := &testenv.Registry{Host: l.Addr().String()}
	fmt.Fprintf(os.Stderr, "demo: embedded registry on %s\n", reg.Host)

	if _, err := testenv.PushBusybox(reg, testenv.DevCache()); err != nil {
		return fmt.Errorf("pushing the busybox base image: %w", err)
	}
	base := reg.Ref("library/busybox:latest")

	for _, bin := range []string{"kimia", "kimia-bud"} {
		dest := reg.Ref("examples/hello:" + bin)
		cmd := exec.Command(filepath.Join(root, "bin", bin),
			"--context="+filepath.Join(root, "examples", "hello"),
			"--destination="+dest,
			"--build-arg=BASE="+base,
			"--insecure-registry="+reg.Host,
		)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		fmt.Fprintf(os.Stderr, "demo: building examples/hello with %s\n", bin)
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
		ref := strings.TrimSpace(out.String())
		d, err := reg.Get(ref)
		if err != nil {
			return fmt.Errorf("reading %s back from the registry: %w", ref, err)
		}
		fmt.Printf("%-9s %s (%s)\n", bin, ref, d.MediaType)
	}
	return nil
}
