package flags

import (
	"github.com/rapidfort/kimia/engine"
)

// fieldFlags names each request field by the flag that sets it, so that
// an engine's "‹Cache.Repo›" reaches the user as --cache-repo. The engine
// options' flag depends on the binary and is added by fieldNames.
var fieldFlags = map[engine.Field]string{
	engine.FieldContextDir:              "--context",
	engine.FieldDockerfile:              "--dockerfile",
	engine.FieldTarget:                  "--target",
	engine.FieldBuildArgs:               "--build-arg",
	engine.FieldLabels:                  "--label",
	engine.FieldPlatforms:               "--platform",
	engine.FieldSecrets:                 "--secret",
	engine.FieldSSH:                     "--ssh",
	engine.FieldSkipUnusedStages:        "--skip-unused-stages",
	engine.FieldStorageDriver:           "--storage-driver",
	engine.FieldFormat:                  "--format",
	engine.FieldCompression:             "--compression",
	engine.FieldCache:                   "--cache",
	engine.FieldCacheDir:                "--cache-dir",
	engine.FieldCacheRepo:               "--cache-repo",
	engine.FieldCacheTTL:                "--cache-ttl",
	engine.FieldImageDownloadRetry:      "--image-download-retry",
	engine.FieldInsecure:                "--insecure",
	engine.FieldInsecurePull:            "--insecure-pull",
	engine.FieldInsecureRegistries:      "--insecure-registry",
	engine.FieldSkipTLSVerify:           "--skip-tls-verify",
	engine.FieldSkipTLSVerifyPull:       "--skip-tls-verify-pull",
	engine.FieldSkipTLSVerifyRegistries: "--skip-tls-verify-registry",
	engine.FieldCertificates:            "--registry-certificate",
	engine.FieldClientCerts:             "--registry-client-cert",
	engine.FieldMirrors:                 "--registry-mirror",
	engine.FieldMaps:                    "--registry-map",
	engine.FieldSkipDefaultFallback:     "--skip-default-registry-fallback",
	engine.FieldDockerConfig:            "DOCKER_CONFIG",
	engine.FieldAttestations:            "--attest or --attestation",
}

// FieldNames names every request field by its flag, for a binary whose
// pass-through flag is optionFlag; the docs test renders engine messages
// with it.
func FieldNames(optionFlag string) map[engine.Field]string {
	names := make(map[engine.Field]string, len(fieldFlags)+1)
	for f, n := range fieldFlags {
		names[f] = n
	}
	names[engine.FieldEngineOptions] = "--" + optionFlag
	return names
}

// namedError shows the fields in an error's message as flags; errors.Is
// and errors.As see the error it wraps.
type namedError struct {
	err   error
	names map[engine.Field]string
}

func (e namedError) Error() string { return engine.NameFields(e.err.Error(), e.names) }
func (e namedError) Unwrap() error { return e.err }

func nameFields(err error, optionFlag string) error {
	if err == nil {
		return nil
	}
	return namedError{err, FieldNames(optionFlag)}
}
