package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRetry(t *testing.T) {
	b := Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, Factor: 3}
	transient := errors.New("503 Service Unavailable")
	final := errors.New("404 Not Found")
	isTransient := func(err error) bool { return TransientText(err.Error()) }
	for _, tc := range []struct {
		name      string
		results   []error
		retries   int
		wantCalls int
		wantErr   error
		wantWaits []time.Duration
	}{
		{"success at once", []error{nil}, 3, 1, nil, nil},
		{"transient failures within the budget", []error{transient, transient, nil}, 3, 3, nil, []time.Duration{time.Millisecond, 3 * time.Millisecond}},
		{"past the budget the last error", []error{transient, transient, transient, transient}, 2, 3, transient, []time.Duration{time.Millisecond, 3 * time.Millisecond}},
		{"a final error is not retried", []error{final, nil}, 3, 1, final, nil},
		{"the wait is capped", []error{transient, transient, transient, nil}, 5, 4, nil, []time.Duration{time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			var waits []time.Duration
			err := b.Retry(context.Background(), tc.retries, isTransient, func(_ int, w time.Duration, _ error) { waits = append(waits, w) }, func() error {
				calls++
				return tc.results[calls-1]
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls, tc.wantCalls)
			}
			if len(waits) != len(tc.wantWaits) {
				t.Fatalf("waits %v, want %v", waits, tc.wantWaits)
			}
			for i := range waits {
				if waits[i] != tc.wantWaits[i] {
					t.Errorf("waits %v, want %v", waits, tc.wantWaits)
				}
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Backoff{Initial: time.Hour}.Retry(ctx, 5, isTransient, func(int, time.Duration, error) { cancel() }, func() error { calls++; return transient })
	if calls != 1 || !errors.Is(err, transient) {
		t.Errorf("canceled during the wait: %d calls, error %v", calls, err)
	}
}
