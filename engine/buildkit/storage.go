package buildkit

import (
	"fmt"

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
}

// readWorkers checks that the daemon runs exactly the OCI worker kimia
// configured and reads what it chose. With no storage driver asked for, buildkitd
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
		return workerFacts{}, engine.Errorf(engine.KindEnvironment, "buildkitd chose the %q snapshotter, which kimia does not support; set %s=native", f.Snapshotter, engine.FieldStorageDriver)
	}
	return f, nil
}

// emulator checks that binaries of a platform can run here; tests
// replace it.
var emulator = engine.Emulator

// missingPlatforms returns the requested platforms whose binaries cannot
// run here: foreign architectures without a QEMU binfmt_misc handler.
func missingPlatforms(want []engine.Platform) []engine.Platform {
	var out []engine.Platform
	for _, p := range want {
		if emulator(p) != nil {
			out = append(out, p)
		}
	}
	return out
}

// describe says which storage driver was chosen and why.
func (f workerFacts) describe(asked string) string {
	if asked != "" {
		return fmt.Sprintf("%s (%s; BuildKit snapshotter %s)", f.Driver, engine.FieldStorageDriver, f.Snapshotter)
	}
	if f.Driver == engine.StorageOverlay {
		return fmt.Sprintf("%s (probed: overlayfs mounts here; BuildKit snapshotter %s)", f.Driver, f.Snapshotter)
	}
	return fmt.Sprintf("%s (probed: overlayfs does not mount here, so files are copied)", f.Driver)
}
