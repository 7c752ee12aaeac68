package buildkit

import (
	"fmt"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"

	"github.com/rapidfort/kimia/engine"
)

// Worker labels buildkitd reports (github.com/moby/buildkit/worker/label).
const (
	labelSnapshotter = "org.mobyproject.buildkit.worker.snapshotter"
	labelExecutor    = "org.mobyproject.buildkit.worker.executor"
)

// workerFacts is what the running daemon says about its worker.
type workerFacts struct {
	// Snapshotter is buildkitd's name: overlayfs, native, ...
	Snapshotter string
	// Driver is kimia's name for it: overlay or native.
	Driver string
	// Platforms the worker can run RUN steps for: the host's, and those
	// with a binfmt_misc emulator registered (buildkitd tests each).
	Platforms []engine.Platform
}

// readWorkers checks that the daemon runs exactly the OCI worker kimia
// configured and reads what it chose. With no --storage-driver, buildkitd
// probes overlayfs by mounting it in its state dir; the worker label
// tells which snapshotter the probe left it with.
func readWorkers(ws []*client.WorkerInfo) (workerFacts, error) {
	if len(ws) != 1 {
		return workerFacts{}, engine.Errorf(engine.KindEnvironment, "buildkitd runs %d workers, want exactly the OCI worker", len(ws))
	}
	w := ws[0]
	if ex := w.Labels[labelExecutor]; ex != "oci" {
		return workerFacts{}, engine.Errorf(engine.KindEnvironment, "buildkitd's worker uses the %q executor, want oci (runc)", ex)
	}
	f := workerFacts{Snapshotter: w.Labels[labelSnapshotter]}
	switch f.Snapshotter {
	case snapshotterOverlay, "overlay", "fuse-overlayfs":
		f.Driver = engine.StorageOverlay
	case snapshotterNative:
		f.Driver = engine.StorageNative
	default:
		return workerFacts{}, engine.Errorf(engine.KindEnvironment, "buildkitd chose the %q snapshotter, which kimia does not support; pass --storage-driver=native", f.Snapshotter)
	}
	for _, p := range w.Platforms {
		f.Platforms = append(f.Platforms, engine.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant})
	}
	return f, nil
}

// missingPlatforms returns the requested platforms the worker cannot run
// RUN steps for.
func (f workerFacts) missingPlatforms(want []engine.Platform) []engine.Platform {
	var out []engine.Platform
	for _, p := range want {
		ok := false
		for _, have := range f.Platforms {
			// What a platform can run: amd64 runs 386, arm/v7 runs v6.
			if platforms.Only(platforms.Normalize(toOCI(have))).Match(platforms.Normalize(toOCI(p))) {
				ok = true
				break
			}
		}
		if !ok {
			out = append(out, p)
		}
	}
	return out
}

// describe says which storage driver was chosen and why.
func (f workerFacts) describe(asked string) string {
	if asked != "" {
		return fmt.Sprintf("%s (--storage-driver; BuildKit snapshotter %s)", f.Driver, f.Snapshotter)
	}
	if f.Driver == engine.StorageOverlay {
		return fmt.Sprintf("%s (probed: overlayfs mounts here; BuildKit snapshotter %s)", f.Driver, f.Snapshotter)
	}
	return fmt.Sprintf("%s (probed: overlayfs does not mount here, so files are copied)", f.Driver)
}
