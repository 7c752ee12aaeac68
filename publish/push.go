package publish

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/rapidfort/kimia/registry"
)

// push uploads art to every destination: everything by digest first,
// then the tags (registry.Client.Push).
func push(ctx context.Context, reg *registry.Client, art registry.Artifact, o Options, log *slog.Logger) ([]registry.Pushed, error) {
	return reg.Push(ctx, art, o.Destinations, registry.PushOptions{
		IgnoreImmutableTagErrors: o.IgnoreImmutableTagErrors,
		Log:                      log,
	})
}

// CheckPushPermission checks, before a build, that every destination
// accepts a push with the credentials at hand, as Kaniko does, so that a
// build is not wasted on a registry that will refuse it.
func CheckPushPermission(ctx context.Context, reg *registry.Client, o Options) error {
	if o.NoPush || o.SkipPushPermissionCheck {
		return nil
	}
	errs := make([]error, len(o.Destinations))
	var wg sync.WaitGroup
	for i, d := range o.Destinations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = reg.CheckPushPermission(ctx, d)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
