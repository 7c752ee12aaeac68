package preflight

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rapidfort/kimia/engine"
)

func TestFailedNamesEveryFailureAndItsFix(t *testing.T) {
	err := Failed([]Result{
		{Name: "a", Status: OK, Detail: "fine"},
		{Name: "b", Status: Fail, Detail: "broken", Fix: "mend it"},
		{Name: "c", Status: Warn, Detail: "meh"},
		{Name: "d", Status: Fail, Detail: "gone"},
	}, " (skip these checks with --no-preflight)")
	if !errors.Is(err, engine.ErrEnvironment) {
		t.Fatalf("error %v is not an environment error", err)
	}
	for _, s := range []string{"b: broken; mend it", "d: gone", "--no-preflight"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q lacks %q", err, s)
		}
	}
	if Failed([]Result{{Status: OK}, {Status: Warn}}, "") != nil {
		t.Error("warnings are not failures")
	}
}

func TestFailedKindSaysWhoIsAtFault(t *testing.T) {
	deny := func(k engine.Kind) Result {
		return pushAccess(context.Background(), "r.example/a:1", func(context.Context, string) error { return engine.Errorf(k, "no") })
	}
	machine := Result{Name: "runc", Status: Fail, Detail: "missing"}
	for _, tc := range []struct {
		name    string
		results []Result
		want    engine.Kind
	}{
		{"a registry that refuses the upload is a registry error", []Result{deny(engine.KindRegistry)}, engine.KindRegistry},
		{"rejected credentials are an auth error", []Result{deny(engine.KindAuth)}, engine.KindAuth},
		{"auth wins over another destination's registry error", []Result{deny(engine.KindRegistry), deny(engine.KindAuth)}, engine.KindAuth},
		{"a broken machine wins over destinations", []Result{deny(engine.KindAuth), machine}, engine.KindEnvironment},
		{"the machine alone is an environment error", []Result{machine}, engine.KindEnvironment},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := engine.KindOf(Failed(tc.results, "")); got != tc.want {
				t.Errorf("kind %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPushAccessExplainsAuthFailures(t *testing.T) {
	r := pushAccess(context.Background(), "r.example/a:1", func(context.Context, string) error {
		return engine.Errorf(engine.KindAuth, "UNAUTHORIZED")
	})
	if r.Status != Fail || !strings.Contains(r.Fix, "dockerconfigjson") {
		t.Errorf("result %+v", r)
	}
}
