package engine

import (
	"context"
	"errors"
	"fmt"
)

// Kind classifies a failure so that the binaries can map it to an exit
// code and callers can decide what to retry.
type Kind int

// Kinds of failure. The binaries map each to a documented exit code.
const (
	KindInternal    Kind = iota // a bug or an unexpected condition
	KindUsage                   // a bad flag, value or combination
	KindBuild                   // the Dockerfile or one of its steps failed
	KindRegistry                // a registry was unreachable or refused
	KindAuth                    // credentials were missing or rejected
	KindSigning                 // signing or attaching signatures failed
	KindContext                 // the build context could not be prepared
	KindEnvironment             // the machine lacks something the build needs
	KindCanceled                // a signal stopped the build
)

var kindNames = map[Kind]string{
	KindInternal:    "internal error",
	KindUsage:       "usage error",
	KindBuild:       "build failed",
	KindRegistry:    "registry error",
	KindAuth:        "authentication failed",
	KindSigning:     "signing failed",
	KindContext:     "build context error",
	KindEnvironment: "environment error",
	KindCanceled:    "canceled",
}

func (k Kind) String() string { return kindNames[k] }

// Error attaches a Kind to an error.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Kind.String()
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is(err, engine.ErrBuild) match any error of that kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Err == nil && t.Kind == e.Kind
}

// Sentinels for errors.Is.
var (
	ErrUsage       = &Error{Kind: KindUsage}
	ErrBuild       = &Error{Kind: KindBuild}
	ErrRegistry    = &Error{Kind: KindRegistry}
	ErrAuth        = &Error{Kind: KindAuth}
	ErrSigning     = &Error{Kind: KindSigning}
	ErrContext     = &Error{Kind: KindContext}
	ErrEnvironment = &Error{Kind: KindEnvironment}
	ErrCanceled    = &Error{Kind: KindCanceled}
)

// Wrap marks err with kind. It returns nil for a nil err and leaves an
// error that already has a kind alone, so the innermost classification
// wins.
func Wrap(kind Kind, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Kind: kind, Err: err}
}

// Errorf formats an error of the given kind.
func Errorf(kind Kind, format string, args ...any) error {
	return Wrap(kind, fmt.Errorf(format, args...))
}

// KindOf returns the kind of err, KindInternal when it has none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// Canceled reports err as a cancellation when ctx was canceled (by a
// signal, in the binaries), naming the cause; otherwise it returns err.
func Canceled(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return Wrap(KindCanceled, fmt.Errorf("%w: %v", context.Cause(ctx), err))
	}
	return err
}
