package buildah

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"

	"github.com/rapidfort/kimia/engine"
)

// engineOptions are the validated engine options (Request.EngineOptions).
// Only the keys in
// optionDocs are accepted: each is a Buildah setting that is safe to pass
// through and means the same in every build.
type engineOptions struct {
	// Isolation overrides the automatic choice (and BUILDAH_ISOLATION).
	Isolation string
	// Jobs is how many stages run in parallel.
	Jobs int
	// OmitHistory leaves the history out of the image config.
	OmitHistory bool
	// InheritLabels keeps the base image's labels (default true).
	InheritLabels *bool
	// IdentityLabel adds io.buildah.version (default false, so images
	// match kimia's).
	IdentityLabel bool
	// CompatVolumes keeps changes RUN makes under a VOLUME, as classic
	// docker build did.
	CompatVolumes *bool
	CapAdd        []string
	CapDrop       []string
	ShmSize       string
	// RetryDelay is the wait between base-image pull attempts.
	RetryDelay time.Duration
	// AllowSingleIDMapping lets a rootless build run with only the
	// caller's own uid mapped, when newuidmap cannot give more.
	AllowSingleIDMapping bool
	// Runtime is the OCI runtime for OCI isolation.
	Runtime string
}

// optionDocs documents every accepted engine option key; docs and the
// error for an unknown key are generated from it.
var optionDocs = map[string]string{
	"isolation":               "how RUN is isolated: oci (runc), rootless (runc in a user namespace) or chroot; overrides BUILDAH_ISOLATION and the automatic choice",
	"jobs":                    "number of stages built in parallel (default 1)",
	"omit-history":            "true leaves the history out of the image config",
	"inherit-labels":          "false drops the base image's labels (default true)",
	"identity-label":          "true adds the io.buildah.version label (default false)",
	"compat-volumes":          "true keeps what RUN writes under a VOLUME path, as classic docker build did",
	"cap-add":                 "capability added to RUN steps (repeatable), as in CAP_NET_ADMIN",
	"cap-drop":                "capability dropped from RUN steps (repeatable)",
	"shm-size":                "size of /dev/shm in RUN steps, as in 64m",
	"retry-delay":             "wait between base-image pull attempts (default 2s)",
	"allow-single-id-mapping": "true lets a rootless build run with a single-id user namespace when newuidmap cannot map the subordinate ids (chown in RUN then fails)",
	"runtime":                 "OCI runtime binary for oci isolation (default runc)",
}

func optionKeys() string {
	keys := make([]string, 0, len(optionDocs))
	for k := range optionDocs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// parseOptions validates the raw engine options.
func parseOptions(kvs []engine.KeyValue) (engineOptions, error) {
	o := engineOptions{Jobs: 1, RetryDelay: 2 * time.Second}
	bad := func(kv engine.KeyValue, format string, args ...any) error {
		return engine.Errorf(engine.KindUsage, "%s %s=%s: %s", engine.FieldEngineOptions, kv.Key, kv.Value, fmt.Sprintf(format, args...))
	}
	boolean := func(kv engine.KeyValue) (bool, error) {
		b, err := strconv.ParseBool(kv.Value)
		if err != nil {
			return false, bad(kv, "want true or false")
		}
		return b, nil
	}
	for _, kv := range kvs {
		var err error
		switch k := strings.ToLower(kv.Key); k {
		case "isolation":
			switch v := strings.ToLower(kv.Value); v {
			case "oci", "rootless", "chroot":
				o.Isolation = v
			default:
				return o, bad(kv, "want oci, rootless or chroot")
			}
		case "jobs":
			n, err := strconv.Atoi(kv.Value)
			if err != nil || n < 1 || n > 64 {
				return o, bad(kv, "want a number of stages from 1 to 64")
			}
			o.Jobs = n
		case "omit-history":
			o.OmitHistory, err = boolean(kv)
		case "inherit-labels":
			var b bool
			b, err = boolean(kv)
			o.InheritLabels = &b
		case "identity-label":
			o.IdentityLabel, err = boolean(kv)
		case "compat-volumes":
			var b bool
			b, err = boolean(kv)
			o.CompatVolumes = &b
		case "cap-add", "cap-drop":
			c := strings.ToUpper(kv.Value)
			if !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			if len(c) < 5 || strings.IndexFunc(c, func(r rune) bool { return !(r == '_' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') }) >= 0 {
				return o, bad(kv, "want a capability name such as CAP_NET_ADMIN")
			}
			if k == "cap-add" {
				o.CapAdd = append(o.CapAdd, c)
			} else {
				o.CapDrop = append(o.CapDrop, c)
			}
		case "shm-size":
			if _, err := units.RAMInBytes(kv.Value); err != nil {
				return o, bad(kv, "want a size such as 64m")
			}
			o.ShmSize = kv.Value
		case "retry-delay":
			d, err := time.ParseDuration(kv.Value)
			if err != nil || d < 0 || d > 10*time.Minute {
				return o, bad(kv, "want a duration from 0s to 10m, as in 2s")
			}
			o.RetryDelay = d
		case "allow-single-id-mapping":
			o.AllowSingleIDMapping, err = boolean(kv)
		case "runtime":
			if kv.Value == "" || strings.ContainsAny(kv.Value, " \t\n") {
				return o, bad(kv, "want a runtime name or path, as in runc")
			}
			o.Runtime = kv.Value
		default:
			return o, engine.Errorf(engine.KindUsage, "%s %s: unknown option; kimia-bud accepts %s (see docs/engine-differences.md)", engine.FieldEngineOptions, kv.Key, optionKeys())
		}
		if err != nil {
			return o, err
		}
	}
	return o, nil
}
