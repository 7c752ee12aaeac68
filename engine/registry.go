package engine

import (
	"fmt"
	"strings"
)

// RegistryConfig carries Kaniko's registry settings. The same settings are
// used by the engines (base-image pulls, cache import and export) and by
// the shared push, so a registry is reached the same way everywhere.
type RegistryConfig struct {
	// Insecure allows plain HTTP for pushes (destinations, cache export).
	Insecure bool
	// InsecurePull allows plain HTTP for pulls.
	InsecurePull bool
	// InsecureRegistries allow plain HTTP for both.
	InsecureRegistries []string
	// SkipTLSVerify skips certificate verification for pushes.
	SkipTLSVerify bool
	// SkipTLSVerifyPull skips certificate verification for pulls.
	SkipTLSVerifyPull bool
	// SkipTLSVerifyRegistries skip verification for both.
	SkipTLSVerifyRegistries []string
	// Certificates are extra CA certificates per registry host.
	Certificates []HostFile
	// ClientCerts are TLS client certificates per registry host.
	ClientCerts []ClientCert
	// Mirrors are pull-through mirrors for docker.io, tried in order.
	Mirrors []Mirror
	// Maps replace a registry by mirrors for pulls.
	Maps []RegistryMap
	// SkipDefaultRegistryFallback stops pulls from falling back to the
	// original registry when every mirror failed.
	SkipDefaultRegistryFallback bool
	// DockerConfigDir is the directory holding the config.json with
	// credentials; empty when there is none.
	DockerConfigDir string
}

// HostFile is a file that belongs to one registry host.
type HostFile struct {
	Host string
	Path string
}

// ClientCert is a TLS client certificate and key for a registry host.
type ClientCert struct {
	Host string
	Cert string
	Key  string
}

// RegistryMap redirects pulls from one registry to mirrors.
type RegistryMap struct {
	From string
	To   []Mirror
}

// Mirror is a pull-through mirror, parsed once from what the user wrote
// ("mirror.gcr.io", "reg:5000/dockerhub", "http://reg:5000").
type Mirror struct {
	// Host is the registry host, with its port.
	Host string
	// Path is a repository prefix on that host ("dockerhub"), or "".
	Path string
	// PlainHTTP is set for an http:// mirror.
	PlainHTTP bool
}

// ParseMirror parses a mirror given as a host, host/path or URL.
func ParseMirror(s string) (Mirror, error) {
	var m Mirror
	rest := strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(rest, "http://"):
		m.PlainHTTP, rest = true, strings.TrimPrefix(rest, "http://")
	case strings.HasPrefix(rest, "https://"):
		rest = strings.TrimPrefix(rest, "https://")
	}
	rest = strings.Trim(rest, "/")
	m.Host, m.Path, _ = strings.Cut(rest, "/")
	m.Path = strings.TrimPrefix(m.Path, "v2/") // a registry's API root names no repository
	if m.Path == "v2" {
		m.Path = ""
	}
	if m.Host == "" || strings.ContainsAny(m.Host, " \t@?#") {
		return Mirror{}, fmt.Errorf("mirror %q: want a registry host, host/path or URL", s)
	}
	return m, nil
}

// String is the mirror as registries configuration names it: host[/path],
// no scheme.
func (m Mirror) String() string {
	if m.Path == "" {
		return m.Host
	}
	return m.Host + "/" + m.Path
}

// Repository is repo (a repository path on the mirrored registry) on the
// mirror: host/path/repo.
func (m Mirror) Repository(repo string) string {
	return m.String() + "/" + repo
}

// DockerHub is the canonical host of Docker Hub.
const DockerHub = "index.docker.io"

// Op is the direction of a registry access.
type Op int

// Registry access directions.
const (
	Pull Op = iota
	Push
)

// HostSettings is how one registry host is reached for one direction.
type HostSettings struct {
	PlainHTTP     bool
	SkipTLSVerify bool
	CAFiles       []string
	ClientCerts   []ClientCert
}

// Host returns the settings for host (as in "registry:5000") for op.
func (c *RegistryConfig) Host(host string, op Op) HostSettings {
	host = CanonicalHost(host)
	var s HostSettings
	s.PlainHTTP = containsHost(c.InsecureRegistries, host) ||
		(op == Push && c.Insecure) || (op == Pull && c.InsecurePull)
	s.SkipTLSVerify = containsHost(c.SkipTLSVerifyRegistries, host) ||
		(op == Push && c.SkipTLSVerify) || (op == Pull && c.SkipTLSVerifyPull)
	for _, f := range c.Certificates {
		if CanonicalHost(f.Host) == host {
			s.CAFiles = append(s.CAFiles, f.Path)
		}
	}
	for _, cc := range c.ClientCerts {
		if CanonicalHost(cc.Host) == host {
			s.ClientCerts = append(s.ClientCerts, cc)
		}
	}
	return s
}

// MirrorsFor returns the mirrors to try, in order, for pulls from host.
func (c *RegistryConfig) MirrorsFor(host string) []Mirror {
	host = CanonicalHost(host)
	var out []Mirror
	for _, m := range c.Maps {
		if CanonicalHost(m.From) == host {
			out = append(out, m.To...)
		}
	}
	if host == DockerHub {
		out = append(out, c.Mirrors...)
	}
	return out
}

// Hosts lists every host the configuration names explicitly, mirrors
// included, in a stable order without duplicates.
func (c *RegistryConfig) Hosts() []string {
	var out []string
	seen := map[string]bool{}
	add := func(h string) {
		h = CanonicalHost(h)
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for _, h := range c.InsecureRegistries {
		add(h)
	}
	for _, h := range c.SkipTLSVerifyRegistries {
		add(h)
	}
	for _, f := range c.Certificates {
		add(f.Host)
	}
	for _, cc := range c.ClientCerts {
		add(cc.Host)
	}
	for _, m := range c.Mirrors {
		add(m.Host)
	}
	for _, m := range c.Maps {
		add(m.From)
		for _, t := range m.To {
			add(t.Host)
		}
	}
	return out
}

// CanonicalHost lowercases host and names Docker Hub one way.
func CanonicalHost(host string) string {
	host = strings.ToLower(strings.TrimSpace(host))
	switch host {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return DockerHub
	}
	return host
}

func containsHost(list []string, host string) bool {
	for _, h := range list {
		if CanonicalHost(h) == host {
			return true
		}
	}
	return false
}
