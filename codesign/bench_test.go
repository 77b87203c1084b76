package codesign

import (
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"

	"aead.dev/minisign"
)

// bench50MB is a signed 50 MB executable and a Verifier trusting its key.
func bench50MB(b *testing.B) (*Verifier, *os.File, string) {
	b.Helper()
	dir := b.TempDir()
	trust := filepath.Join(dir, "trust.d")
	if err := os.Mkdir(trust, 0o755); err != nil {
		b.Fatal(err)
	}
	if _, err := WriteKeyPair(filepath.Join(trust, "k")); err != nil {
		b.Fatal(err)
	}
	key, err := ReadPrivateKey(filepath.Join(trust, "k.key"))
	if err != nil {
		b.Fatal(err)
	}
	exe := filepath.Join(dir, "app")
	data := make([]byte, 50<<20)
	rand.Read(data)
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	sig, err := Sign(f, key, Identity{Identifier: "org.example.big", Team: "ABCDE12345"})
	if err != nil {
		b.Fatal(err)
	}
	if err := WriteBeside(exe, sig); err != nil {
		b.Fatal(err)
	}
	v := NewVerifier(trust)
	if _, err := v.Verify(f, exe); err != nil { // and the file is in the page cache
		b.Fatal(err)
	}
	return v, f, exe
}

// BenchmarkVerify50MB: the first Verify of a 50 MB executable (cold: an
// empty cache), a cached one, and the bare hashes they are made of, in
// the same run.
func BenchmarkVerify50MB(b *testing.B) {
	v, f, exe := bench50MB(b)
	b.Run("cold", func(b *testing.B) {
		b.SetBytes(50 << 20)
		for b.Loop() {
			v.cache = newCache(CacheSize)
			if _, err := v.Verify(f, exe); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		v.aged()
		if _, err := v.Verify(f, exe); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := v.Verify(f, exe); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("blake2b-512-hash", func(b *testing.B) {
		b.SetBytes(50 << 20)
		for b.Loop() {
			io.Copy(io.Discard, minisign.NewReader(io.NewSectionReader(f, 0, 50<<20)))
		}
	})
	b.Run("digest-sha256-cold", func(b *testing.B) {
		b.SetBytes(50 << 20)
		for b.Loop() {
			v.cache = newCache(CacheSize)
			if _, err := v.Digest(f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sha256-hash", func(b *testing.B) {
		b.SetBytes(50 << 20)
		for b.Loop() {
			io.Copy(sha256.New(), io.NewSectionReader(f, 0, 50<<20))
		}
	})
}
