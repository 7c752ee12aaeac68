package engine

import "strings"

// Field names a part of the Request. An engine says which part of a
// request is wrong, or what a hint is about, by its field, never by the
// flag that set it: the CLI shows each field as its flag (NameFields), so
// that engines know nothing of the command line.
type Field string

// Fields of a Request, by their path in it.
const (
	FieldContextDir              Field = "ContextDir"
	FieldDockerfile              Field = "Dockerfile"
	FieldTarget                  Field = "Target"
	FieldBuildArgs               Field = "BuildArgs"
	FieldLabels                  Field = "Labels"
	FieldPlatforms               Field = "Platforms"
	FieldSecrets                 Field = "Secrets"
	FieldSSH                     Field = "SSH"
	FieldSkipUnusedStages        Field = "SkipUnusedStages"
	FieldStorageDriver           Field = "StorageDriver"
	FieldFormat                  Field = "Format"
	FieldCompression             Field = "Compression"
	FieldCache                   Field = "Cache.Enabled"
	FieldCacheDir                Field = "Cache.Dir"
	FieldCacheRepo               Field = "Cache.Repo"
	FieldCacheTTL                Field = "Cache.TTL"
	FieldEngineOptions           Field = "EngineOptions"
	FieldImageDownloadRetry      Field = "ImageDownloadRetry"
	FieldInsecure                Field = "Registry.Insecure"
	FieldInsecurePull            Field = "Registry.InsecurePull"
	FieldInsecureRegistries      Field = "Registry.InsecureRegistries"
	FieldSkipTLSVerify           Field = "Registry.SkipTLSVerify"
	FieldSkipTLSVerifyPull       Field = "Registry.SkipTLSVerifyPull"
	FieldSkipTLSVerifyRegistries Field = "Registry.SkipTLSVerifyRegistries"
	FieldCertificates            Field = "Registry.Certificates"
	FieldClientCerts             Field = "Registry.ClientCerts"
	FieldMirrors                 Field = "Registry.Mirrors"
	FieldMaps                    Field = "Registry.Maps"
	FieldSkipDefaultFallback     Field = "Registry.SkipDefaultRegistryFallback"
	FieldDockerConfig            Field = "Registry.DockerConfigDir"
	// FieldAttestations is not in the Request: attestations are the run's
	// (build.Options), but an engine option may try to ask for them.
	FieldAttestations Field = "Attestations"
)

// Fields lists every Field, for the CLI's table of names.
var Fields = []Field{
	FieldContextDir, FieldDockerfile, FieldTarget, FieldBuildArgs, FieldLabels, FieldPlatforms, FieldSecrets, FieldSSH,
	FieldSkipUnusedStages, FieldStorageDriver, FieldFormat, FieldCompression, FieldCache,
	FieldCacheDir, FieldCacheRepo, FieldCacheTTL, FieldEngineOptions, FieldImageDownloadRetry,
	FieldInsecure, FieldInsecurePull, FieldInsecureRegistries, FieldSkipTLSVerify,
	FieldSkipTLSVerifyPull, FieldSkipTLSVerifyRegistries, FieldCertificates, FieldClientCerts,
	FieldMirrors, FieldMaps, FieldSkipDefaultFallback, FieldDockerConfig, FieldAttestations,
}

// Placeholder marks of a field in a message.
const (
	fieldOpen  = "‹"
	fieldClose = "›"
)

// String is the field as a placeholder in a message, "‹Cache.Repo›",
// which NameFields turns into the name the user knows.
func (f Field) String() string { return fieldOpen + string(f) + fieldClose }

// NameFields replaces the field placeholders in s by names (a field's
// flag); a field without a name shows its path.
func NameFields(s string, names map[Field]string) string {
	if !strings.Contains(s, fieldOpen) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, fieldOpen)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i:], fieldClose)
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		f := Field(s[i+len(fieldOpen) : i+j])
		b.WriteString(s[:i])
		if n, ok := names[f]; ok {
			b.WriteString(n)
		} else {
			b.WriteString(string(f))
		}
		s = s[i+j+len(fieldClose):]
	}
}
