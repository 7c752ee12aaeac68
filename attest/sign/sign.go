// Package sign makes cosign-compatible signatures offline, with a key:
// simple-signing payloads for image manifests (cosign's .sig) and DSSE
// envelopes for in-toto statements (cosign's .att). It uses sigstore's
// signature package, not the cosign binary.
//
// Keyless signing (Fulcio) and transparency-log upload (Rekor) need the
// network and are not implemented. They fit behind Signer: a keyless
// Signer would carry a certificate and chain (cosign's
// dev.sigstore.cosign/certificate and /chain annotations, returned by
// Annotations) and a Rekor bundle (dev.sigstore.cosign/bundle).
package sign

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Signer signs payloads with one key.
type Signer struct {
	sv signature.SignerVerifier
}

// KeyError is a key that could not be used: unreadable, not a key, or
// encrypted with another password.
type KeyError struct {
	Path string
	// WrongPassword is set when the key is encrypted and the password
	// did not decrypt it.
	WrongPassword bool
	Err           error
}

func (e *KeyError) Error() string {
	if e.WrongPassword {
		return fmt.Sprintf("decrypting the cosign key %q: wrong password", e.Path)
	}
	return fmt.Sprintf("loading the cosign key %q: %v", e.Path, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

// PEM block types of cosign's encrypted keys.
const (
	pemSigstoreKey = "ENCRYPTED SIGSTORE PRIVATE KEY"
	pemCosignKey   = "ENCRYPTED COSIGN PRIVATE KEY"
)

// Load reads a private key: cosign's encrypted format (decrypted with
// password; cosign's keys made with an empty password take an empty one)
// or a plain PEM key (PKCS#8, EC, PKCS#1 RSA). The password is used once
// and not kept.
func Load(path string, password []byte) (*Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &KeyError{Path: path, Err: err}
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, &KeyError{Path: path, Err: errors.New("no PEM block in the file: want a cosign key (cosign generate-key-pair) or a PEM private key")}
	}
	encrypted := block.Type == pemSigstoreKey || block.Type == pemCosignKey
	if password == nil {
		// cryptoutils skips decryption for a nil password and then
		// fails to parse the ciphertext; an empty one is what cosign
		// uses for keys made without a password.
		password = []byte{}
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(raw, cryptoutils.StaticPasswordFunc(password))
	if err != nil {
		if encrypted && strings.Contains(err.Error(), "decrypt") {
			return nil, &KeyError{Path: path, WrongPassword: true, Err: err}
		}
		return nil, &KeyError{Path: path, Err: err}
	}
	sv, err := signature.LoadSignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, &KeyError{Path: path, Err: err}
	}
	return &Signer{sv: sv}, nil
}

// New returns a signer for an already loaded key.
func New(priv crypto.PrivateKey) (*Signer, error) {
	sv, err := signature.LoadSignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &Signer{sv: sv}, nil
}

// PublicKeyPEM returns the public key, PEM encoded, as cosign writes
// cosign.pub.
func (s *Signer) PublicKeyPEM() ([]byte, error) {
	pub, err := s.sv.PublicKey()
	if err != nil {
		return nil, err
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}

// Sign signs payload and returns the raw signature.
func (s *Signer) Sign(ctx context.Context, payload []byte) ([]byte, error) {
	sig, err := s.sv.SignMessage(bytes.NewReader(payload), options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return sig, nil
}

// Annotations are what a signature layer carries besides the signature:
// nothing for a key; a certificate, chain and bundle for keyless signing.
func (s *Signer) Annotations() map[string]string { return nil }

// SimpleSigning is cosign's signature payload for an image manifest.
type SimpleSigning struct {
	Critical Critical       `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// Critical is the signed claim: this repository's manifest digest.
type Critical struct {
	Identity Identity `json:"identity"`
	Image    ImageRef `json:"image"`
	Type     string   `json:"type"`
}

// Identity is the repository the signature was made for.
type Identity struct {
	DockerReference string `json:"docker-reference"`
}

// ImageRef is the signed manifest's digest.
type ImageRef struct {
	DockerManifestDigest string `json:"docker-manifest-digest"`
}

// SimpleSigningPayload returns cosign's payload claiming that repo's
// manifest digest is signed, with the user's annotations (cosign's
// -a k=v).
func SimpleSigningPayload(repo string, digest v1.Hash, annotations map[string]string) ([]byte, error) {
	p := SimpleSigning{
		Critical: Critical{
			Identity: Identity{DockerReference: repo},
			Image:    ImageRef{DockerManifestDigest: digest.String()},
			Type:     "cosign container image signature",
		},
	}
	if len(annotations) > 0 {
		p.Optional = map[string]any{}
		for k, v := range annotations {
			p.Optional[k] = v
		}
	}
	return json.Marshal(p)
}

// SignImage signs the simple-signing payload for repo@digest and returns
// the payload and the base64 signature, as cosign stores them.
func (s *Signer) SignImage(ctx context.Context, repo string, digest v1.Hash, annotations map[string]string) (payload []byte, b64sig string, err error) {
	payload, err = SimpleSigningPayload(repo, digest, annotations)
	if err != nil {
		return nil, "", err
	}
	sig, err := s.Sign(ctx, payload)
	if err != nil {
		return nil, "", err
	}
	return payload, base64.StdEncoding.EncodeToString(sig), nil
}

// PayloadTypeInToto is the DSSE payload type of an in-toto statement.
const PayloadTypeInToto = "application/vnd.in-toto+json"

// SignStatement wraps an in-toto statement in a signed DSSE envelope, as
// cosign attest does.
func (s *Signer) SignStatement(ctx context.Context, statement []byte) ([]byte, error) {
	sig, err := s.Sign(ctx, dsse.PAE(PayloadTypeInToto, statement))
	if err != nil {
		return nil, err
	}
	env := dsse.Envelope{
		PayloadType: PayloadTypeInToto,
		Payload:     base64.StdEncoding.EncodeToString(statement),
		Signatures:  []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
	}
	return json.Marshal(env)
}
