package engine

import (
	"context"
	"strings"
	"time"
)

// Backoff is an exponential backoff: Initial, then times Factor, at most
// Max. The zero value is DefaultBackoff.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	Factor  float64
}

// DefaultBackoff waits 1 s, then 2, 4, ... up to 30 s.
var DefaultBackoff = Backoff{Initial: time.Second, Max: 30 * time.Second, Factor: 2}

// Retry runs op, and again after a failure transient says may pass, at
// most retries more times, waiting as b says between attempts (canceled
// with ctx). Before each wait it calls onRetry, if set. It is the one
// retry loop of kimia: registry operations, and engines that retry a
// whole build after a failed pull.
func (b Backoff) Retry(ctx context.Context, retries int, transient func(error) bool, onRetry func(attempt int, wait time.Duration, err error), op func() error) error {
	if b.Initial <= 0 {
		b = DefaultBackoff
	}
	wait := b.Initial
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || attempt >= retries || ctx.Err() != nil || !transient(err) {
			return err
		}
		if onRetry != nil {
			onRetry(attempt+1, wait, err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = time.Duration(float64(wait) * max(b.Factor, 1))
		if b.Max > 0 && wait > b.Max {
			wait = b.Max
		}
	}
}

// transientTexts are how a failure that may pass reads when only its text
// is left (a daemon's error, a library's wrapped message).
var transientTexts = []string{
	"connection refused", "connection reset", "i/o timeout", "TLS handshake timeout",
	"500 Internal Server Error", "502 Bad Gateway", "503 Service Unavailable", "504 Gateway Timeout",
	"429 Too Many Requests", "408 Request Timeout", "unexpected EOF",
}

// TransientText reports whether an error message says a registry failed
// in a way that may pass: a 5xx, 429 or 408 answer, a reset or refused
// connection, a timeout, a body cut short.
func TransientText(msg string) bool {
	for _, s := range transientTexts {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
