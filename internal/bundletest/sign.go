package bundletest

import (
	"os"
	"path/filepath"
	"testing"

	"aead.dev/minisign"
	"github.com/goxpc/xpc/codesign"
)

// Signer signs executables with a key that its own trust directory
// trusts, for tests of signed bundles (bundle.Bundle.Identify).
type Signer struct {
	// TrustDir is a trust directory (codesign.TrustDir) holding the
	// signer's public key: point a codesign.Verifier, or XPCD_ROOT's
	// trust.d, at it.
	TrustDir string
	key      minisign.PrivateKey
}

// NewSigner makes a key pair in a temporary directory and a trust
// directory that trusts it.
func NewSigner(t testing.TB) *Signer {
	t.Helper()
	dir := t.TempDir()
	trust := filepath.Join(dir, "trust.d")
	if err := os.Mkdir(trust, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := codesign.WriteKeyPair(filepath.Join(trust, "key")); err != nil {
		t.Fatal(err)
	}
	// The private key must not stay in the trust directory.
	keyFile := filepath.Join(dir, "key.key")
	if err := os.Rename(filepath.Join(trust, "key.key"), keyFile); err != nil {
		t.Fatal(err)
	}
	key, err := codesign.ReadPrivateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{TrustDir: trust, key: key}
}

// Verifier returns a new Verifier trusting TrustDir.
func (s *Signer) Verifier() *codesign.Verifier { return codesign.NewVerifier(s.TrustDir) }

// Sign signs the file at path as identifier (and team, if not "") and
// writes the signature beside it (path.minisig).
func (s *Signer) Sign(t testing.TB, path, identifier, team string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sig, err := codesign.Sign(f, s.key, codesign.Identity{Identifier: identifier, Team: team})
	if err != nil {
		t.Fatal(err)
	}
	if err := codesign.WriteBeside(path, sig); err != nil {
		t.Fatal(err)
	}
}
