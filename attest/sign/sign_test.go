package sign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/signature"
)

// writeCosignKey writes key the way cosign generate-key-pair does: PKCS#8,
// encrypted with scrypt and secretbox, in an ENCRYPTED SIGSTORE PRIVATE
// KEY block.
func writeCosignKey(t *testing.T, key *ecdsa.PrivateKey, password string) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encrypted.Encrypt(der, []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cosign.key")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: enc}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writePlainKey(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLoadAcceptsCosignKeysAndPlainPEM(t *testing.T) {
	key := newKey(t)
	for _, tc := range []struct {
		name     string
		path     string
		password []byte
	}{
		{"a cosign key with its password", writeCosignKey(t, key, "s3cret"), []byte("s3cret")},
		{"a cosign key made without a password and no password given", writeCosignKey(t, key, ""), nil},
		{"a plain EC PEM key", writePlainKey(t, key), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Load(tc.path, tc.password)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			pub, err := s.sv.PublicKey()
			if err != nil {
				t.Fatal(err)
			}
			if !key.PublicKey.Equal(pub) {
				t.Fatal("loaded a different key")
			}
		})
	}
}

func TestLoadReportsBadKeys(t *testing.T) {
	key := newKey(t)
	garbage := filepath.Join(t.TempDir(), "garbage")
	os.WriteFile(garbage, []byte("not a key"), 0o600)
	unreadable := filepath.Join(t.TempDir(), "missing.key")
	for _, tc := range []struct {
		name      string
		path      string
		password  []byte
		wrongPass bool
		message   string
	}{
		{"a wrong password", writeCosignKey(t, key, "right"), []byte("Xq9-not-it"), true, "wrong password"},
		{"no password for a key that has one", writeCosignKey(t, key, "right"), nil, true, "wrong password"},
		{"a missing file", unreadable, nil, false, "no such file"},
		{"a file that is not PEM", garbage, nil, false, "no PEM block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path, tc.password)
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("got %v, want a KeyError", err)
			}
			if ke.WrongPassword != tc.wrongPass {
				t.Errorf("WrongPassword = %v, want %v (%v)", ke.WrongPassword, tc.wrongPass, err)
			}
			if !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("message %q should name the key and say %q", err, tc.message)
			}
			if tc.password != nil && strings.Contains(err.Error(), string(tc.password)) {
				t.Errorf("message %q contains the password", err)
			}
		})
	}
}

func TestSignImageMakesCosignsPayload(t *testing.T) {
	key := newKey(t)
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	payload, b64, err := s.SignImage(context.Background(), "registry.example/app", d, map[string]string{"team": "x"})
	if err != nil {
		t.Fatal(err)
	}
	var p SimpleSigning
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Critical.Image.DockerManifestDigest != d.String() || p.Critical.Identity.DockerReference != "registry.example/app" ||
		p.Critical.Type != "cosign container image signature" || p.Optional["team"] != "x" {
		t.Errorf("payload %s", payload)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	v, err := signature.LoadVerifier(&key.PublicKey, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifySignature(strings.NewReader(string(sig)), strings.NewReader(string(payload))); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	other, _ := signature.LoadVerifier(&newKey(t).PublicKey, crypto.SHA256)
	if err := other.VerifySignature(strings.NewReader(string(sig)), strings.NewReader(string(payload))); err == nil {
		t.Error("signature verifies with another key")
	}
}

func TestSignStatementMakesAVerifiableDSSEEnvelope(t *testing.T) {
	key := newKey(t)
	s, _ := New(key)
	st := []byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"x","subject":[],"predicate":{}}`)
	raw, err := s.SignStatement(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	var env dsse.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	if env.PayloadType != "application/vnd.in-toto+json" || len(env.Signatures) != 1 {
		t.Fatalf("envelope %s", raw)
	}
	body, err := env.DecodeB64Payload()
	if err != nil || string(body) != string(st) {
		t.Fatalf("payload %q, %v", body, err)
	}
	sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	v, _ := signature.LoadVerifier(&key.PublicKey, crypto.SHA256)
	if err := v.VerifySignature(strings.NewReader(string(sig)), strings.NewReader(string(dsse.PAE(env.PayloadType, body)))); err != nil {
		t.Errorf("envelope signature does not verify over the PAE: %v", err)
	}
}
