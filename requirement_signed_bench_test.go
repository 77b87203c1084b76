package xpc

import (
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/goxpc/xpc/codesign"
)

// BenchmarkSignedPeer50MB measures, in one run, what "identifier ... and
// team ..." costs the connections of a client whose executable is a
// signed 50 MB file (a copy of the test binary padded to 50 MB), against
// the bare hashes of 50 MB:
//
//   - check/cold: Requirement.Check of a running process of that file,
//     the peer of a real connection, with a new codesign.Verifier each
//     time: nothing cached, as for the first connection of that
//     executable (the trust directory and the signature read, the file
//     hashed);
//   - check/cached: the same with one Verifier that has seen the file, as
//     for the connections after the first (the file's verdict cached by
//     its device, inode, size, mtime and ctime);
//   - connect: a connection to that process (DialUnix, with a "uid"
//     requirement, and one request answered), the rest of what a
//     connection costs, to add to the check;
//   - hash/blake2b-512, hash/sha256: reading and hashing the 50 MB, as
//     the signature (minisign's prehash) and the sha256 clause do.
//
// The check goes through the unexported verifier of the peer, so that
// each iteration can start cold; the tests (TestSignedPeers) go through
// codesign.Default. Run it with:
//
//	go test -run '^$' -bench BenchmarkSignedPeer50MB .
func BenchmarkSignedPeer50MB(b *testing.B) {
	dir := signedTempDir(b)
	root := filepath.Join(dir, "root")
	ks := makeSignedKeys(b, b.TempDir(), root)
	exe := filepath.Join(dir, "big")
	copyExecutable(b, exe, 50<<20)
	writeSignature(b, exe, signature(b, exe, ks.trusted, signedIdentifier, signedTeam))
	// A verdict is cached about files whose ctime is over a second old.
	aged := time.Now().Add(1100 * time.Millisecond)

	serve := filepath.Join(dir, "big.sock")
	proc := startSignedProc(b, exe, "peer", nil, signedServeEnv+"="+serve)
	var dials []signedOutcome
	proc.read(b, &dials)
	c, err := DialUnix(b.Context(), serve)
	if err != nil {
		b.Fatal(err)
	}
	c.Activate()
	b.Cleanup(c.Cancel)
	if _, err := c.SendWithReply(b.Context(), Dict("op", "hello")); err != nil {
		b.Fatal(err)
	}
	p := c.Peer()
	req := MustParseRequirement(teamRequirement)
	trust := filepath.Join(root, "trust.d")

	b.Run("check/cold", func(b *testing.B) {
		for b.Loop() {
			p.verifier = codesign.NewVerifier(trust)
			if err := req.Check(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("check/cached", func(b *testing.B) {
		time.Sleep(time.Until(aged))
		p.verifier = codesign.NewVerifier(trust)
		if err := req.Check(p); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := req.Check(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("connect", func(b *testing.B) { benchSignedConnect(b, serve) })
	benchHash50MB(b, exe)
}

// benchSignedConnect connects to the listener at path, with a uid
// requirement, and has a request answered, once an iteration.
func benchSignedConnect(b *testing.B, path string) {
	ctx := b.Context()
	uid := WithPeerRequirement(ownUIDRequirement())
	for b.Loop() {
		c, err := DialUnix(ctx, path, uid)
		if err != nil {
			b.Fatal(err)
		}
		c.Activate()
		_, err = c.SendWithReply(ctx, Dict("op", "hello"))
		c.Cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchHash50MB reads and hashes the file at path, of 50 MB, as a
// signature's prehash (BLAKE2b-512) and as sha256.
func benchHash50MB(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.Run("hash/blake2b-512", func(b *testing.B) {
		b.SetBytes(50 << 20)
		for b.Loop() {
			if _, err := io.Copy(io.Discard, minisign.NewReader(io.NewSectionReader(f, 0, 50<<20))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hash/sha256", func(b *testing.B) {
		b.SetBytes(50 << 20)
		for b.Loop() {
			if _, err := io.Copy(sha256.New(), io.NewSectionReader(f, 0, 50<<20)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
