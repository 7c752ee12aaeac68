package flags

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/rapidfort/kimia/engine"
)

// This file holds the small parsers that turn one flag value into typed
// data. Each returns an error that names the flag and the bad value.

// usagef is a usage error that names a flag.
func usagef(flag, format string, args ...any) error {
	return engine.Errorf(engine.KindUsage, "--%s: %s", flag, fmt.Sprintf(format, args...))
}

// parseKV parses "K=V". The key must be non-empty and free of spaces.
func parseKV(flag, s string) (engine.KeyValue, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return engine.KeyValue{}, usagef(flag, "%q is not of the form KEY=VALUE", s)
	}
	if err := checkKey(k); err != nil {
		return engine.KeyValue{}, usagef(flag, "%q: %v", s, err)
	}
	return engine.KeyValue{Key: k, Value: v}, nil
}

func checkKey(k string) error {
	if k == "" {
		return fmt.Errorf("empty key")
	}
	if strings.IndexFunc(k, unicode.IsSpace) >= 0 {
		return fmt.Errorf("key %q contains white space", k)
	}
	return nil
}

// parseBuildArg parses a --build-arg. "KEY" alone takes its value from the
// environment, as docker and Kaniko do; ok is false when KEY is unset there,
// so that the Dockerfile's default applies.
func parseBuildArg(s string, getenv func(string) (string, bool)) (kv engine.KeyValue, ok bool, err error) {
	if !strings.Contains(s, "=") {
		if err := checkKey(s); err != nil {
			return kv, false, usagef("build-arg", "%q: %v", s, err)
		}
		v, set := getenv(s)
		return engine.KeyValue{Key: s, Value: v}, set, nil
	}
	kv, err = parseKV("build-arg", s)
	return kv, err == nil, err
}

// parseFields parses a comma-separated list of key=value fields, as in
// "id=foo,src=/path". Keys are lowercased; a bare word maps to "".
func parseFields(flag, s string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, usagef(flag, "%q has an empty field", s)
		}
		k, v, _ := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if _, dup := out[k]; dup {
			return nil, usagef(flag, "%q repeats %q", s, k)
		}
		out[k] = v
	}
	return out, nil
}

// parseSecret parses docker's --secret forms: id=ID,src=PATH (also
// source=), id=ID,env=VAR, type=file|env, and a bare id=ID which means an
// environment variable of that name.
func parseSecret(s string, getenv func(string) (string, bool)) (engine.Secret, error) {
	f, err := parseFields("secret", s)
	if err != nil {
		return engine.Secret{}, err
	}
	sec := engine.Secret{ID: f["id"]}
	src := f["src"]
	if v, ok := f["source"]; ok {
		src = v
	}
	env := f["env"]
	typ := f["type"]
	for k := range f {
		switch k {
		case "id", "src", "source", "env", "type":
		default:
			return sec, usagef("secret", "%q: unknown field %q (want id, src, env, type)", s, k)
		}
	}
	if sec.ID == "" {
		return sec, usagef("secret", "%q: missing id=", s)
	}
	switch typ {
	case "", "file", "env":
	default:
		return sec, usagef("secret", "%q: type must be file or env, not %q", s, typ)
	}
	if src != "" && env != "" {
		return sec, usagef("secret", "%q: give src= or env=, not both", s)
	}
	switch {
	case src != "" || typ == "file":
		if src == "" {
			src = sec.ID
		}
		if _, err := os.Stat(src); err != nil {
			return sec, usagef("secret", "id %q: cannot read source file %q: %v", sec.ID, src, unwrapPathError(err))
		}
		sec.Src = src
	default:
		if env == "" {
			env = sec.ID
		}
		if _, ok := getenv(env); !ok {
			return sec, usagef("secret", "id %q: environment variable %q is not set", sec.ID, env)
		}
		sec.Env = env
	}
	return sec, nil
}

// parseSSH parses docker's --ssh forms: "default", "ID", "ID=PATH[,PATH]".
func parseSSH(s string, getenv func(string) (string, bool)) (engine.SSH, error) {
	id, paths, hasPaths := strings.Cut(s, "=")
	if err := checkKey(id); err != nil {
		return engine.SSH{}, usagef("ssh", "%q: %v", s, err)
	}
	out := engine.SSH{ID: id}
	if hasPaths {
		for _, p := range strings.Split(paths, ",") {
			if p == "" {
				return out, usagef("ssh", "%q: empty path", s)
			}
			if _, err := os.Stat(p); err != nil {
				return out, usagef("ssh", "%q: %v", s, unwrapPathError(err))
			}
			out.Paths = append(out.Paths, p)
		}
		return out, nil
	}
	if _, ok := getenv("SSH_AUTH_SOCK"); !ok {
		return out, usagef("ssh", "%q: no path given and SSH_AUTH_SOCK is not set; give ID=/path/to/agent.sock or ID=/path/to/key", s)
	}
	return out, nil
}

// parseDestination checks an image reference for pushing: a tag, not a
// digest.
func parseDestination(s string) (name.Tag, error) {
	if s == "" {
		return name.Tag{}, usagef("destination", "empty image reference")
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return name.Tag{}, usagef("destination", "%q is not a valid image reference: %v", s, err)
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		return name.Tag{}, usagef("destination", "%q names a digest; give a tag, as in registry/repo:tag", s)
	}
	return tag, nil
}

// parseRepository checks a repository reference (no tag).
func parseRepository(flag, s string) (name.Repository, error) {
	repo, err := name.NewRepository(s)
	if err != nil {
		return name.Repository{}, usagef(flag, "%q is not a valid repository: %v", s, err)
	}
	return repo, nil
}

// parsePlatforms parses a comma-separated platform list.
func parsePlatforms(flag, s string) ([]engine.Platform, error) {
	var out []engine.Platform
	for _, p := range strings.Split(s, ",") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		pl, err := engine.ParsePlatform(p)
		if err != nil {
			return nil, usagef(flag, "%v", err)
		}
		out = append(out, pl)
	}
	if len(out) == 0 {
		return nil, usagef(flag, "%q names no platform", s)
	}
	return out, nil
}

// parseEpoch parses a Unix time in seconds.
func parseEpoch(what, s string) (time.Time, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, engine.Errorf(engine.KindUsage, "%s: %q is not a Unix time in seconds (a non-negative integer such as 1609459200)", what, s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// parseRetries checks a retry count.
func parseRetries(flag string, n int) (int, error) {
	if n < 0 || n > 100 {
		return 0, usagef(flag, "%d is not a retry count between 0 and 100", n)
	}
	return n, nil
}

// parseSize parses a byte size with an optional unit: 500MB, 10GiB, 1024.
func parseSize(flag, s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1},
	}
	mult := int64(1)
	lower := strings.ToLower(t)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n <= 0 {
		return 0, usagef(flag, "%q is not a size such as 500MB or 10GiB", s)
	}
	return int64(n * float64(mult)), nil
}

// parseHostFile parses "host=path" and checks that path can be read.
func parseHostFile(flag, s string) (engine.HostFile, error) {
	host, path, ok := strings.Cut(s, "=")
	if !ok || host == "" || path == "" {
		return engine.HostFile{}, usagef(flag, "%q is not of the form registry-host=/path/to/file", s)
	}
	if _, err := os.Stat(path); err != nil {
		return engine.HostFile{}, usagef(flag, "%q: %v", s, unwrapPathError(err))
	}
	return engine.HostFile{Host: host, Path: path}, nil
}

// parseClientCert parses "host=cert,key".
func parseClientCert(s string) (engine.ClientCert, error) {
	const flag = "registry-client-cert"
	host, files, ok := strings.Cut(s, "=")
	cert, key, ok2 := strings.Cut(files, ",")
	if !ok || !ok2 || host == "" || cert == "" || key == "" {
		return engine.ClientCert{}, usagef(flag, "%q is not of the form registry-host=/path/cert.crt,/path/key.key", s)
	}
	for _, p := range []string{cert, key} {
		if _, err := os.Stat(p); err != nil {
			return engine.ClientCert{}, usagef(flag, "%q: %v", s, unwrapPathError(err))
		}
	}
	return engine.ClientCert{Host: host, Cert: cert, Key: key}, nil
}

// parseRegistryMap parses Kaniko's "from=to;from2=to2" (several mappings
// for one registry are tried in order).
func parseRegistryMap(s string) ([]engine.RegistryMap, error) {
	var out []engine.RegistryMap
	for _, m := range strings.Split(s, ";") {
		if strings.TrimSpace(m) == "" {
			continue
		}
		from, to, ok := strings.Cut(m, "=")
		if !ok || from == "" || to == "" {
			return nil, usagef("registry-map", "%q is not of the form original.registry=new.registry", m)
		}
		if err := checkRegistryHost("registry-map", from); err != nil {
			return nil, err
		}
		mirror, err := engine.ParseMirror(to)
		if err != nil {
			return nil, usagef("registry-map", "%v", err)
		}
		if err := checkRegistryHost("registry-map", mirror.Host); err != nil {
			return nil, err
		}
		merged := false
		for i := range out {
			if out[i].From == from {
				out[i].To = append(out[i].To, mirror)
				merged = true
			}
		}
		if !merged {
			out = append(out, engine.RegistryMap{From: from, To: []engine.Mirror{mirror}})
		}
	}
	return out, nil
}

// checkRegistryHost checks that s is a registry host[:port].
func checkRegistryHost(flag, s string) error {
	if _, err := name.NewRegistry(s, name.StrictValidation); err != nil || strings.ContainsAny(s, "/ ") {
		return usagef(flag, "%q is not a registry host such as registry.example.com:5000", s)
	}
	return nil
}

// parseBool parses the boolean of a key=value field strictly.
func parseBool(flag, field, v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, usagef(flag, "%s=%q is not true or false", field, v)
	}
	return b, nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}
