// Package buildah is kimia's Buildah engine: Buildah used in-process as a
// library over containers/storage and containers/image.
package buildah

import (
	"context"
	"errors"

	"github.com/rapidfort/kimia/engine"
)

// Engine builds with Buildah.
type Engine struct{}

var _ engine.Engine = (*Engine)(nil)

// New returns the Buildah engine.
func New() *Engine { return &Engine{} }

// InitReexec runs Buildah's re-exec hooks; main returns at once when it
// reports true.
func InitReexec() bool { return false }

// Info implements engine.Engine.
func (e *Engine) Info(ctx context.Context) (engine.Info, error) {
	return engine.Info{Name: "buildah", OptionFlag: "buildah-opt", StorageDrivers: []string{engine.StorageNative, engine.StorageOverlay}}, nil
}

// Build implements engine.Engine.
func (e *Engine) Build(ctx context.Context, req *engine.Request) (*engine.Result, error) {
	return nil, errors.New("the Buildah engine is not implemented yet")
}
