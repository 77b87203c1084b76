package codesign

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
)

// FuzzSignature feeds arbitrary text to the signature reader, as the file
// beside an executable: Verify must answer with one of its errors (or
// accept a valid signature), and what parses must be canonical.
func FuzzSignature(f *testing.F) {
	_, key, err := minisign.GenerateKey(bytes.NewReader(make([]byte, 64)))
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	trust := filepath.Join(dir, "trust.d")
	pubText, _ := key.Public().(minisign.PublicKey).MarshalText()
	if err := os.Mkdir(trust, 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(trust, "k.pub"), pubText, 0o644); err != nil {
		f.Fatal(err)
	}
	exe := filepath.Join(dir, "app")
	content := []byte("the executable's contents")
	if err := os.WriteFile(exe, content, 0o755); err != nil {
		f.Fatal(err)
	}
	r := minisign.NewReader(bytes.NewReader(content))
	io.Copy(io.Discard, r)
	for _, comment := range []string{
		"identifier=org.example.app team=ABCDE12345 timestamp=1767225600",
		"identifier=org.example.app",
		"timestamp:1767225600\tfile:app",
	} {
		f.Add(r.SignWithComments(key, comment, "signature from key"))
	}
	f.Add(minisign.SignWithComments(key, content, "identifier=a", ""))
	f.Add([]byte("untrusted comment: \n\ntrusted comment: \n\n"))
	f.Add([]byte("garbage"))

	v := NewVerifier(trust)
	exeFile, err := os.Open(exe)
	if err != nil {
		f.Fatal(err)
	}
	defer exeFile.Close()
	f.Fuzz(func(t *testing.T, text []byte) {
		if p, err := parseSignature(text); err == nil {
			if err := p.id.Validate(); err != nil {
				t.Fatalf("parsed an invalid identity: %v", err)
			}
			if c := p.id.comment(p.signed); c != p.sig.TrustedComment {
				t.Fatalf("comment %q parsed as %q", p.sig.TrustedComment, c)
			}
		}
		if err := os.WriteFile(exe+Suffix, text, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := v.Verify(exeFile, exe)
		switch {
		case err == nil:
			if info.Identifier == "" || !strings.HasPrefix(string(text), "untrusted comment: ") {
				t.Fatalf("accepted: %+v", info)
			}
		case !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnsigned) && !errors.Is(err, ErrUntrusted):
			t.Fatalf("not a verification error: %v", err)
		}
	})
}
