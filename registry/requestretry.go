package registry

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/rapidfort/kimia/engine"
)

// Requests are retried one by one, before a failure counts against the
// whole-operation budget (--push-retry): a registry that fails one request
// in four (a busy proxy, a rate limit) would otherwise defeat any budget,
// since each whole retry starts again with the ping and every blob.
var (
	// requestRetries is how many times one request is sent again.
	requestRetries = 4
	// requestBackoff is the wait between them, unless the registry says
	// (Retry-After).
	requestBackoff = engine.Backoff{Initial: 200 * time.Millisecond, Max: 3 * time.Second, Factor: 2}
	// maxRetryAfter caps a registry's Retry-After: past it, the failure
	// goes to the whole-operation retries (and their backoff).
	maxRetryAfter = 30 * time.Second
)

// retryTransport sends a request again after a transient failure (a reset
// or refused connection, a timeout, 408, 429 or a 5xx answer), waiting as
// the registry's Retry-After says or with requestBackoff. Only requests
// whose body can be read again are retried; a streamed blob upload fails
// to the caller, whose whole-operation retry starts it again.
type retryTransport struct {
	base http.RoundTripper
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	wait := requestBackoff.Initial
	for attempt := 0; ; attempt++ {
		resp, err := t.base.RoundTrip(req)
		if attempt >= requestRetries || !replayable(req) || req.Context().Err() != nil {
			return resp, err
		}
		var after time.Duration
		switch {
		case err != nil:
			if !Transient(err) {
				return resp, err
			}
		case retryStatus(resp.StatusCode):
			after = retryAfter(resp.Header.Get("Retry-After"), time.Now())
			if after > maxRetryAfter {
				return resp, nil
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		default:
			return resp, nil
		}
		d := wait
		if after > 0 {
			d = after
		}
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(d):
		}
		wait = min(time.Duration(float64(wait)*requestBackoff.Factor), requestBackoff.Max)
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func retryStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date; 0 when
// absent or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
