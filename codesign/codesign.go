package codesign

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"aead.dev/minisign"
)

// Verification failures, testable with errors.Is.
var (
	// ErrUnsigned: the file has no signature.
	ErrUnsigned = errors.New("not signed")
	// ErrBadSignature: the signature does not match the file, or cannot
	// be read.
	ErrBadSignature = errors.New("bad signature")
	// ErrUntrusted: the signature is made by a key not in the trust
	// directory.
	ErrUntrusted = errors.New("signed by an untrusted key")
	// ErrFileTooLarge: the file is larger than MaxFileSize, and is not
	// hashed.
	ErrFileTooLarge = errors.New("file too large to verify")
)

// MaxFileSize is the largest file Verify and Digest hash: the file is
// one a peer chose, and hashing costs its size in time (about 2 s per GiB
// on a small machine), which a process checking peers must bound.
const MaxFileSize = 1 << 30

// Info is what a valid signature says about a file.
type Info struct {
	Identifier string    // the signed identifier, e.g. org.example.app
	Team       string    // the signed team, e.g. ABCDE12345; "" for none
	KeyID      string    // the signing key's id, in hexadecimal (FormatKeyID)
	Signed     time.Time // when it was signed, as the signature says; zero if it does not
	Where      string    // where the signature is kept: "xattr user.xpc.minisig" or FILE.minisig
}

// Verifier verifies signatures against the keys of a trust directory and
// caches its answers (see the package documentation). It is safe for
// concurrent use; make one with NewVerifier.
type Verifier struct {
	dir    string
	now    func() time.Time
	cache  *cache
	hashes atomic.Int64 // files hashed, for tests

	trustMu sync.Mutex
	snap    *trustSnapshot // the trust directory as last read
	gen     uint64         // the last generation given to a snapshot
}

// NewVerifier returns a Verifier trusting the keys in dir, which it reads
// when first used and again whenever it changes.
func NewVerifier(trustDir string) *Verifier {
	return &Verifier{dir: trustDir, now: time.Now, cache: newCache(CacheSize)}
}

var defaultVerifier = sync.OnceValue(func() *Verifier { return NewVerifier(TrustDir()) })

// Default returns the process's Verifier, trusting TrustDir as it is when
// Default is first called. It is made once and shared, like
// http.DefaultTransport: it is the process-wide cache of answers, so that
// every connection of the process checking the same executable hashes it
// once.
func Default() *Verifier { return defaultVerifier() }

// TrustDir is the trust directory: $XPCD_ROOT/trust.d if XPCD_ROOT is
// set, else /etc/xpc/trust.d.
func TrustDir() string {
	if r := os.Getenv("XPCD_ROOT"); r != "" {
		return r + "/trust.d"
	}
	return "/etc/xpc/trust.d"
}

// Verify verifies the signature of f, found at path (where a signature
// beside it is looked for; "" for the extended attribute only). The
// signature must be valid for f's contents, which are read through f
// (never by path) without moving its offset, and be made by a key of the
// trust directory. Errors match ErrUnsigned, ErrBadSignature or
// ErrUntrusted, or are I/O errors; they name the file and the key, and
// never quote what the files hold. Answers are cached by the identity of
// f, of the signature file and of the trust directory's keys.
func (v *Verifier) Verify(f *os.File, path string) (*Info, error) {
	name := path
	if name == "" {
		name = f.Name()
	}
	t0 := v.now()
	fk, err := statFile(f)
	if err != nil {
		return nil, fmt.Errorf("codesign: %s: %w", name, err)
	}
	if !fk.regular() {
		return nil, fmt.Errorf("codesign: %s: %w: not a regular file", name, ErrUnsigned)
	}
	if fk.size > MaxFileSize {
		return nil, fmt.Errorf("codesign: %s: %w: %d bytes, more than %d", name, ErrFileTooLarge, fk.size, int64(MaxFileSize))
	}
	k := cacheKey{op: opVerify, file: fk, path: path}
	if path != "" {
		if k.sig, err = statPath(path + Suffix); err != nil {
			return nil, fmt.Errorf("codesign: %s: looking for its signature: %w", name, err)
		}
	}
	ts := v.trust()
	k.gen = ts.gen
	r := v.cache.do(k, func() (result, bool) { return v.verify(f, name, k, ts, t0) })
	if r.err != nil {
		return nil, r.err
	}
	info := *r.info
	return &info, nil
}

// verify is Verify's answer when it is not cached, and whether it may be.
// Only verdicts are kept, and only about files that had not changed for
// racyWindow before t0 and did not change while they were read.
func (v *Verifier) verify(f *os.File, name string, k cacheKey, ts *trustSnapshot, t0 time.Time) (result, bool) {
	raw, p, err := readParsed(f, k.path, name)
	// A verdict may be kept if the signature read is the one keyed (a
	// signature file is keyed; the xattr is part of the file's ctime).
	keep := (raw.xattr || raw.file == k.sig) && raw.file.stableAt(t0) && k.file.stableAt(t0)
	if err != nil {
		return result{err: err}, keep && isVerdict(err)
	}
	keyID := FormatKeyID(p.sig.KeyID)
	pubs := ts.keys[p.sig.KeyID]
	if len(pubs) == 0 {
		return result{err: fmt.Errorf("codesign: %s: %w: key %s is not in %s", name, ErrUntrusted, keyID, v.dir)}, keep
	}
	mr := minisign.NewReader(io.NewSectionReader(f, 0, k.file.size))
	v.hashes.Add(1)
	if err := readAll(mr, f, k.file); err != nil {
		return result{err: fmt.Errorf("codesign: %s: %w", name, err)}, false
	}
	valid := false
	for _, pub := range pubs {
		valid = valid || mr.Verify(pub, raw.text)
	}
	if !valid {
		return result{err: fmt.Errorf("codesign: %s: %w: %s does not match the file's contents (key %s)",
			name, ErrBadSignature, raw.where, keyID)}, keep
	}
	info := &Info{Identifier: p.id.Identifier, Team: p.id.Team, KeyID: keyID, Signed: p.signed, Where: raw.where}
	return result{info: info}, keep
}

// readParsed reads and parses f's signature; its errors are Verify's.
func readParsed(f *os.File, path, name string) (rawSignature, parsed, error) {
	raw, err := readSignature(f, path)
	var bad badSource
	switch {
	case errors.Is(err, errAbsent):
		return raw, parsed{}, fmt.Errorf("codesign: %s: %w", name, ErrUnsigned)
	case errors.As(err, &bad):
		return raw, parsed{}, fmt.Errorf("codesign: %s: %w: %s is %s", name, ErrBadSignature, raw.where, bad)
	case err != nil:
		return raw, parsed{}, fmt.Errorf("codesign: %s: reading its signature: %w", name, err)
	}
	p, err := parseSignature(raw.text)
	if err != nil {
		return raw, parsed{}, fmt.Errorf("codesign: %s: %w: %s: %w", name, ErrBadSignature, raw.where, err)
	}
	return raw, p, nil
}

// isVerdict reports whether err is an answer about the files rather than
// a failure to read them.
func isVerdict(err error) bool {
	return errors.Is(err, ErrUnsigned) || errors.Is(err, ErrBadSignature) || errors.Is(err, ErrUntrusted)
}

// Inspect reads f's signature, found at path as for Verify, and returns
// what it says without verifying it: for display, never for a decision.
// Errors match ErrUnsigned or ErrBadSignature (a signature that does not
// parse), or are I/O errors.
func Inspect(f *os.File, path string) (*Info, error) {
	name := path
	if name == "" {
		name = f.Name()
	}
	raw, p, err := readParsed(f, path, name)
	if err != nil {
		return nil, err
	}
	return &Info{Identifier: p.id.Identifier, Team: p.id.Team, KeyID: FormatKeyID(p.sig.KeyID),
		Signed: p.signed, Where: raw.where}, nil
}

// Digest returns the SHA-256 of f's contents, read through f without
// moving its offset, cached as Verify's answers are.
func (v *Verifier) Digest(f *os.File) ([32]byte, error) {
	t0 := v.now()
	fk, err := statFile(f)
	if err != nil {
		return [32]byte{}, fmt.Errorf("codesign: %s: %w", f.Name(), err)
	}
	if !fk.regular() {
		return [32]byte{}, fmt.Errorf("codesign: %s: not a regular file", f.Name())
	}
	if fk.size > MaxFileSize {
		return [32]byte{}, fmt.Errorf("codesign: %s: %w: %d bytes, more than %d", f.Name(), ErrFileTooLarge, fk.size, int64(MaxFileSize))
	}
	r := v.cache.do(cacheKey{op: opDigest, file: fk}, func() (result, bool) {
		h := sha256.New()
		v.hashes.Add(1)
		if err := readAll(io.TeeReader(io.NewSectionReader(f, 0, fk.size), h), f, fk); err != nil {
			return result{err: fmt.Errorf("codesign: %s: %w", f.Name(), err)}, false
		}
		var res result
		h.Sum(res.digest[:0])
		return res, fk.stableAt(t0)
	})
	return r.digest, r.err
}

// hashBuffer is the size of the reads that hash a file.
const hashBuffer = 256 << 10

// readAll reads r, which reads f's contents (k.size bytes) and hashes
// them, to its end, and fails if f changed meanwhile.
func readAll(r io.Reader, f *os.File, k fileKey) error {
	buf := make([]byte, hashBuffer)
	for {
		_, err := r.Read(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading: %w", err)
		}
	}
	if after, err := statFile(f); err != nil || after != k {
		return errors.New("changed while being read")
	}
	return nil
}
