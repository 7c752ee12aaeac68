// Package buildkit is kimia's BuildKit engine: it starts a private
// buildkitd for the duration of one build and drives it with BuildKit's Go
// client.
package buildkit

import (
	"context"
	"errors"

	"github.com/rapidfort/kimia/engine"
)

// Engine builds with BuildKit.
type Engine struct{}

var _ engine.Engine = (*Engine)(nil)

// New returns the BuildKit engine.
func New() *Engine { return &Engine{} }

// Info implements engine.Engine.
func (e *Engine) Info(ctx context.Context) (engine.Info, error) {
	return engine.Info{Name: "buildkit", OptionFlag: "buildkit-opt", StorageDrivers: []string{engine.StorageNative, engine.StorageOverlay}}, nil
}

// Build implements engine.Engine.
func (e *Engine) Build(ctx context.Context, req *engine.Request) (*engine.Result, error) {
	return nil, errors.New("the BuildKit engine is not implemented yet")
}
