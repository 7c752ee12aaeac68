package buildah

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rapidfort/kimia/engine"
)

func TestParseOptions(t *testing.T) {
	kv := func(k, v string) []engine.KeyValue { return []engine.KeyValue{{Key: k, Value: v}} }
	good := []struct {
		name  string
		in    []engine.KeyValue
		check func(o engineOptions) bool
	}{
		{"defaults", nil, func(o engineOptions) bool { return o.Jobs == 1 && o.RetryDelay == 2*time.Second && !o.IdentityLabel }},
		{"isolation", kv("isolation", "Chroot"), func(o engineOptions) bool { return o.Isolation == "chroot" }},
		{"jobs", kv("jobs", "4"), func(o engineOptions) bool { return o.Jobs == 4 }},
		{"capabilities get their prefix", []engine.KeyValue{{Key: "cap-add", Value: "net_admin"}, {Key: "cap-drop", Value: "CAP_CHOWN"}},
			func(o engineOptions) bool { return o.CapAdd[0] == "CAP_NET_ADMIN" && o.CapDrop[0] == "CAP_CHOWN" }},
		{"inherit-labels", kv("inherit-labels", "false"), func(o engineOptions) bool { return o.InheritLabels != nil && !*o.InheritLabels }},
		{"retry-delay", kv("retry-delay", "500ms"), func(o engineOptions) bool { return o.RetryDelay == 500*time.Millisecond }},
		{"shm-size", kv("shm-size", "64m"), func(o engineOptions) bool { return o.ShmSize == "64m" }},
		{"single-id mapping", kv("allow-single-id-mapping", "true"), func(o engineOptions) bool { return o.AllowSingleIDMapping }},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOptions(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(o) {
				t.Errorf("unexpected options %+v", o)
			}
		})
	}
	bad := []struct {
		name, key, value, want string
	}{
		{"an unknown key names the allowed ones", "network", "none", "kimia-bud accepts"},
		{"a bad isolation", "isolation", "vm", "want oci, rootless or chroot"},
		{"zero jobs", "jobs", "0", "from 1 to 64"},
		{"not a boolean", "omit-history", "yes please", "want true or false"},
		{"not a capability", "cap-add", "net admin", "capability name"},
		{"not a size", "shm-size", "lots", "size"},
		{"a negative delay", "retry-delay", "-1s", "duration"},
		{"a runtime with spaces", "runtime", "runc --debug", "runtime"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseOptions(kv(tc.key, tc.value))
			if !errors.Is(err, engine.ErrUsage) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), engine.FieldEngineOptions.String()+" "+tc.key) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q should name the engine options' %s and say %q", err, tc.key, tc.want)
			}
		})
	}
	for k := range optionDocs {
		if !strings.Contains(optionKeys(), k) {
			t.Errorf("optionKeys misses %s", k)
		}
	}
}
