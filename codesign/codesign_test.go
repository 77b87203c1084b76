package codesign

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"aead.dev/minisign"
	"golang.org/x/sys/unix"
)

// fixture is a trust directory with one key, a private key to sign with,
// and a Verifier trusting the directory.
type fixture struct {
	t     *testing.T
	dir   string // scratch
	trust string
	key   minisign.PrivateKey
	keyID string
	v     *Verifier
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	fx := &fixture{t: t, dir: dir, trust: filepath.Join(dir, "trust.d")}
	if err := os.Mkdir(fx.trust, 0o755); err != nil {
		t.Fatal(err)
	}
	fx.key, fx.keyID = fx.newKey("k")
	fx.trustKey("k")
	fx.v = NewVerifier(fx.trust)
	return fx
}

// newKey writes the key pair dir/name.key, dir/name.pub.
func (fx *fixture) newKey(name string) (minisign.PrivateKey, string) {
	fx.t.Helper()
	pub, err := WriteKeyPair(filepath.Join(fx.dir, name))
	if err != nil {
		fx.t.Fatal(err)
	}
	key, err := ReadPrivateKey(filepath.Join(fx.dir, name+".key"))
	if err != nil {
		fx.t.Fatal(err)
	}
	if key.ID() != pub.ID() {
		fx.t.Fatal("the private key read back is not the one written")
	}
	return key, FormatKeyID(pub.ID())
}

// trustKey copies dir/name.pub into the trust directory.
func (fx *fixture) trustKey(name string) {
	fx.t.Helper()
	b, err := os.ReadFile(filepath.Join(fx.dir, name+".pub"))
	if err != nil {
		fx.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fx.trust, name+".pub"), b, 0o644); err != nil {
		fx.t.Fatal(err)
	}
}

// exe writes an executable of size random bytes and returns its path.
func (fx *fixture) exe(name string, size int) string {
	fx.t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(fx.dir, name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		fx.t.Fatal(err)
	}
	return p
}

func (fx *fixture) open(path string) *os.File {
	fx.t.Helper()
	f, err := os.Open(path)
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.t.Cleanup(func() { f.Close() })
	return f
}

// sign signs path with key as id and returns the signature.
func (fx *fixture) sign(path string, key minisign.PrivateKey, id Identity) []byte {
	fx.t.Helper()
	sig, err := Sign(fx.open(path), key, id)
	if err != nil {
		fx.t.Fatal(err)
	}
	return sig
}

// signBeside signs path with the fixture's key and writes path.minisig.
func (fx *fixture) signBeside(path string, id Identity) {
	fx.t.Helper()
	if err := WriteBeside(path, fx.sign(path, fx.key, id)); err != nil {
		fx.t.Fatal(err)
	}
}

// verify opens path and verifies it.
func (fx *fixture) verify(path string) (*Info, error) {
	fx.t.Helper()
	return fx.v.Verify(fx.open(path), path)
}

// aged makes the Verifier see every file as changed long ago, so that
// its answers are cached at once.
func (fx *fixture) aged() { fx.v.aged() }

func (v *Verifier) aged() { v.now = func() time.Time { return time.Now().Add(time.Hour) } }

var testID = Identity{Identifier: "org.example.app", Team: "ABCDE12345"}

func TestVerifyBeside(t *testing.T) {
	fx := newFixture(t)
	p := fx.exe("app", 100_000)
	before := time.Now().Add(-time.Second)
	fx.signBeside(p, testID)
	f := fx.open(p)
	if _, err := f.Seek(123, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	info, err := fx.v.Verify(f, p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Identifier != testID.Identifier || info.Team != testID.Team || info.KeyID != fx.keyID ||
		info.Where != p+Suffix || info.Signed.Before(before) || info.Signed.After(time.Now()) {
		t.Fatalf("info %+v, want %v by %s in %s", info, testID, fx.keyID, p+Suffix)
	}
	if off, _ := f.Seek(0, io.SeekCurrent); off != 123 {
		t.Errorf("Verify moved the file's offset to %d", off)
	}
	// No team is a valid identity too.
	q := fx.exe("noteam", 10)
	fx.signBeside(q, Identity{Identifier: "org.example.noteam"})
	if info, err := fx.verify(q); err != nil || info.Identifier != "org.example.noteam" || info.Team != "" {
		t.Fatalf("no team: %+v, %v", info, err)
	}
}

// The contents are read through the descriptor: a file put at the path
// after it was opened is not what is verified.
func TestVerifyReadsTheDescriptor(t *testing.T) {
	fx := newFixture(t)
	p := fx.exe("app", 4096)
	fx.signBeside(p, testID)
	f := fx.open(p)
	other := fx.exe("other", 4096)
	if err := os.Rename(other, p); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.v.Verify(f, p); err != nil {
		t.Fatalf("the opened file, signed, fails: %v", err)
	}
	if _, err := fx.verify(p); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("the file now at the path: %v, want ErrBadSignature", err)
	}
}

func TestVerifyXattr(t *testing.T) {
	fx := newFixture(t)
	p := fx.exe("app", 5000)
	sig := fx.sign(p, fx.key, testID)
	if err := WriteXattr(fx.open(p), sig); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	for _, path := range []string{"", p} {
		info, err := fx.v.Verify(fx.open(p), path)
		if err != nil || info.Where != "xattr "+XattrName || info.Identifier != testID.Identifier {
			t.Fatalf("path %q: %+v, %v", path, info, err)
		}
	}
	// The xattr wins over a file beside: a bad file beside is not read...
	if err := os.WriteFile(p+Suffix, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.verify(p); err != nil {
		t.Fatalf("xattr and a bad file beside: %v", err)
	}
	// ...and a bad xattr is not made good by a good file beside.
	if err := WriteBeside(p, sig); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(p, XattrName, []byte("garbage"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.verify(p); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("bad xattr, good file beside: %v, want ErrBadSignature", err)
	}
	// Too large to read is bad, not absent.
	if err := unix.Setxattr(p, XattrName, bytes.Repeat([]byte("x"), MaxSignatureSize+1), 0); err != nil {
		t.Fatalf("an xattr of %d bytes: %v", MaxSignatureSize+1, err)
	}
	if _, err := fx.verify(p); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("huge xattr: %v, want ErrBadSignature, larger than", err)
	}
}

func TestVerifyUnsignedUntrusted(t *testing.T) {
	fx := newFixture(t)
	p := fx.exe("app", 100)
	if _, err := fx.verify(p); !errors.Is(err, ErrUnsigned) || !strings.Contains(err.Error(), p) {
		t.Fatalf("unsigned: %v", err)
	}
	if _, err := fx.v.Verify(fx.open(p), ""); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned, no path: %v", err)
	}
	// A signature beside is not looked for without a path.
	fx.signBeside(p, testID)
	if _, err := fx.v.Verify(fx.open(p), ""); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("signed beside, no path: %v", err)
	}
	other, otherID := fx.newKey("other")
	q := fx.exe("app2", 100)
	if err := WriteBeside(q, fx.sign(q, other, testID)); err != nil {
		t.Fatal(err)
	}
	_, err := fx.verify(q)
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), otherID) || !strings.Contains(err.Error(), q) {
		t.Fatalf("untrusted: %v, want ErrUntrusted naming %s and %s", err, otherID, q)
	}
	if st, err := os.Stat(filepath.Join(fx.dir, "k.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("private key: %v, %v, want mode 0600", st, err)
	}
	if _, err := WriteKeyPair(filepath.Join(fx.dir, "k")); !errors.Is(err, os.ErrExist) {
		t.Errorf("WriteKeyPair over an existing key: %v, want ErrExist", err)
	}
}

// A binary modified after signing fails, whether its answer was cached or
// the change came within the same clock tick as the signing.
func TestVerifyModified(t *testing.T) {
	for _, aged := range []bool{false, true} {
		fx := newFixture(t)
		if aged {
			fx.aged()
		}
		p := fx.exe("app", 50_000)
		fx.signBeside(p, testID)
		if _, err := fx.verify(p); err != nil {
			t.Fatal(err)
		}
		if aged {
			time.Sleep(20 * time.Millisecond) // a new ctime tick
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Flip a byte: writing a fixed one over random contents leaves
		// the file as it was one time in 256.
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, 1000); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{^b[0]}, 1000); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := fx.verify(p); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), fx.keyID) {
			t.Fatalf("aged %v: modified binary: %v, want ErrBadSignature naming the key", aged, err)
		}
	}
}

// A cached answer is served without hashing again; a fresh file is hashed
// every time, since a change in the same clock tick would not show.
func TestVerifyCache(t *testing.T) {
	fx := newFixture(t)
	p := fx.exe("app", 10_000)
	fx.signBeside(p, testID)
	for range 3 {
		if _, err := fx.verify(p); err != nil {
			t.Fatal(err)
		}
	}
	if n := fx.v.hashes.Load(); n != 3 {
		t.Fatalf("a fresh file hashed %d times in 3 verifies, want 3", n)
	}
	fx.aged()
	for range 3 {
		info, err := fx.verify(p)
		if err != nil {
			t.Fatal(err)
		}
		info.Identifier = "changed by the caller"
	}
	if n := fx.v.hashes.Load(); n != 4 {
		t.Fatalf("an old file hashed %d more times in 3 verifies, want 1", n-3)
	}
	if info, _ := fx.verify(p); info.Identifier != testID.Identifier {
		t.Fatalf("a caller changed the cached answer: %+v", info)
	}
	// A new signature beside the file is seen.
	time.Sleep(20 * time.Millisecond)
	fx.signBeside(p, Identity{Identifier: "org.example.renamed"})
	if info, err := fx.verify(p); err != nil || info.Identifier != "org.example.renamed" {
		t.Fatalf("after re-signing: %+v, %v", info, err)
	}
	if err := os.Remove(p + Suffix); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.verify(p); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("signature removed: %v", err)
	}
}

// Concurrent first verifies of one file hash it once.
func TestVerifyConcurrent(t *testing.T) {
	fx := newFixture(t)
	fx.aged()
	p := fx.exe("app", 4<<20)
	fx.signBeside(p, testID)
	var wg sync.WaitGroup
	for range 8 {
		f := fx.open(p)
		wg.Go(func() {
			if _, err := fx.v.Verify(f, p); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := fx.v.hashes.Load(); n != 1 {
		t.Errorf("8 concurrent verifies hashed %d times, want 1", n)
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache(4)
	put := func(p string) result {
		return c.do(cacheKey{path: p}, func() (result, bool) { return result{digest: [32]byte{p[0]}}, true })
	}
	for _, p := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		put(p)
	}
	put("g") // used: kept over h
	put("k")
	if n := c.len(); n != 4 {
		t.Fatalf("%d entries, want 4", n)
	}
	for _, p := range []string{"g", "i", "j", "k"} {
		if _, ok := c.entries[cacheKey{path: p}]; !ok {
			t.Errorf("%s evicted", p)
		}
	}
	// An answer not to be kept is not kept.
	c.do(cacheKey{path: "z"}, func() (result, bool) { return result{}, false })
	if _, ok := c.entries[cacheKey{path: "z"}]; ok {
		t.Error("an answer marked not to keep was kept")
	}

	fx := newFixture(t)
	fx.aged()
	fx.v.cache = newCache(3)
	for i := range 6 {
		p := fx.exe("app"+string(rune('0'+i)), 10)
		fx.signBeside(p, testID)
		if _, err := fx.verify(p); err != nil {
			t.Fatal(err)
		}
	}
	if n := fx.v.cache.len(); n != 3 {
		t.Fatalf("the Verifier keeps %d answers, want its bound 3", n)
	}
}

func TestDigest(t *testing.T) {
	fx := newFixture(t)
	p := fx.exe("app", 300_000)
	want, _ := os.ReadFile(p)
	f := fx.open(p)
	for _, aged := range []bool{false, true} {
		if aged {
			fx.aged()
		}
		for range 2 {
			d, err := fx.v.Digest(f)
			if err != nil || d != sha256.Sum256(want) {
				t.Fatalf("digest %x, %v", d, err)
			}
		}
	}
	if n := fx.v.hashes.Load(); n != 3 {
		t.Fatalf("hashed %d times, want 2 fresh and 1 aged", n)
	}
	if off, _ := f.Seek(0, io.SeekCurrent); off != 0 {
		t.Errorf("Digest moved the offset to %d", off)
	}
	dir := fx.open(fx.dir)
	if _, err := fx.v.Digest(dir); err == nil {
		t.Error("the digest of a directory")
	}
	if _, err := fx.v.Verify(dir, fx.dir); !errors.Is(err, ErrUnsigned) {
		t.Errorf("verifying a directory: %v", err)
	}
}

func TestTrustChanges(t *testing.T) {
	fx := newFixture(t)
	fx.aged()
	p := fx.exe("app", 1000)
	fx.signBeside(p, testID)
	ok := func(want error) {
		t.Helper()
		if _, err := fx.verify(p); !errors.Is(err, want) {
			t.Fatalf("verify: %v, want %v", err, want)
		}
	}
	ok(nil)
	pubPath := filepath.Join(fx.trust, "k.pub")
	pubText, _ := os.ReadFile(pubPath)
	if err := os.Remove(pubPath); err != nil {
		t.Fatal(err)
	}
	ok(ErrUntrusted)
	if err := os.WriteFile(pubPath, pubText, 0o644); err != nil {
		t.Fatal(err)
	}
	ok(nil)
	// Another key written into the same file, in place: the directory
	// does not change, the file does.
	time.Sleep(20 * time.Millisecond)
	fx.newKey("other")
	otherText, _ := os.ReadFile(filepath.Join(fx.dir, "other.pub"))
	f, err := os.OpenFile(pubPath, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(otherText)
	f.Close()
	ok(ErrUntrusted)
	keys, skipped := fx.v.TrustedKeys()
	if len(keys) != 1 || keys[0].Path != pubPath || len(skipped) != 0 {
		t.Fatalf("trusted %v, skipped %v", keys, skipped)
	}
	// A trust directory that does not exist trusts nothing.
	v := NewVerifier(filepath.Join(fx.dir, "missing"))
	if _, err := v.Verify(fx.open(p), p); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("no trust directory: %v", err)
	}
}

// Every key file that cannot be used is skipped and reported, and the
// others are trusted all the same.
func TestTrustSkipped(t *testing.T) {
	fx := newFixture(t)
	w := func(name, text string, mode os.FileMode) {
		p := filepath.Join(fx.trust, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	good, _ := os.ReadFile(filepath.Join(fx.trust, "k.pub"))
	w("garbage.pub", "not a key\n", 0o644)
	w("writable.pub", string(good), 0o666)
	w("huge.pub", strings.Repeat("A", maxKeySize+1), 0o644)
	w("ignored.txt", "not a .pub at all", 0o644)
	if err := syscall.Mkfifo(filepath.Join(fx.trust, "fifo.pub"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(fx.trust, "k.pub"), filepath.Join(fx.trust, "link.pub")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var keys []TrustedKey
	var skipped []*KeyError
	go func() { keys, skipped = fx.v.TrustedKeys(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reading the trust directory hangs (on the FIFO?)")
	}
	if len(keys) != 1 || keys[0].ID != fx.keyID {
		t.Errorf("trusted %v, want only %s", keys, fx.keyID)
	}
	want := map[string]string{"garbage.pub": "not a minisign public key", "writable.pub": "writable by group or others",
		"huge.pub": "larger than", "fifo.pub": "not a regular file", "link.pub": "symbolic link"}
	for _, e := range skipped {
		name := filepath.Base(e.Path)
		if w, ok := want[name]; !ok || !strings.Contains(e.Error(), w) {
			t.Errorf("skipped %s: %v, want %q", name, e, w)
		}
		delete(want, name)
	}
	if len(want) != 0 {
		t.Errorf("not reported: %v", want)
	}
	p := fx.exe("app", 10)
	fx.signBeside(p, testID)
	if _, err := fx.verify(p); err != nil {
		t.Fatalf("the good key, beside bad ones: %v", err)
	}
	// A trust directory others can write to is not trusted at all.
	if err := os.Chmod(fx.trust, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.verify(p); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("world-writable trust directory: %v, want ErrUntrusted", err)
	}
	if _, skipped := fx.v.TrustedKeys(); len(skipped) != 1 || skipped[0].Path != fx.trust {
		t.Fatalf("skipped %v, want the directory", skipped)
	}
}

// What is beside a file may be anything its owner put there: it is read
// only if it is a small regular file, and its contents are never quoted.
func TestHostileSignatureFile(t *testing.T) {
	fx := newFixture(t)
	p := fx.exe("app", 1000)
	valid := fx.sign(p, fx.key, testID)
	other := filepath.Join(fx.dir, "elsewhere.minisig")
	if err := os.WriteFile(other, valid, 0o644); err != nil {
		t.Fatal(err)
	}
	const secret = "SECRET-CONTENT"
	cases := []struct {
		name string
		make func(sig string) error
		want string
	}{
		{"symlink", func(sig string) error { return os.Symlink(other, sig) }, "symbolic link"},
		{"fifo", func(sig string) error { return syscall.Mkfifo(sig, 0o644) }, "not a regular file"},
		{"directory", func(sig string) error { return os.Mkdir(sig, 0o755) }, "not a regular file"},
		{"huge", func(sig string) error {
			return os.WriteFile(sig, append(valid, bytes.Repeat([]byte(secret), 1000)...), 0o644)
		}, "larger than"},
		{"garbage", func(sig string) error { return os.WriteFile(sig, []byte(secret+"\n"+secret+"\n"), 0o644) }, "does not parse"},
		{"truncated", func(sig string) error { return os.WriteFile(sig, valid[:len(valid)/2], 0o644) }, "does not parse"},
		{"empty", func(sig string) error { return os.WriteFile(sig, nil, 0o644) }, "does not parse"},
		{"device", func(sig string) error { return unix.Mknod(sig, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))) }, "not a regular file"},
	}
	for _, c := range cases {
		os.RemoveAll(p + Suffix)
		if err := c.make(p + Suffix); err != nil {
			t.Logf("%s: cannot make it here: %v", c.name, err)
			continue
		}
		done := make(chan error, 1)
		go func() { _, err := fx.verify(p); done <- err }()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Verify hangs", c.name)
		}
		if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: %v, want ErrBadSignature, %q, no contents", c.name, err, c.want)
		}
	}
}

// Signatures that minisign makes but that are not ours: a trusted comment
// that does not parse, a legacy (not prehashed) signature.
func TestForeignSignatures(t *testing.T) {
	fx := newFixture(t)
	p := fx.exe("app", 1000)
	content, _ := os.ReadFile(p)
	r := minisign.NewReader(bytes.NewReader(content))
	io.Copy(io.Discard, r)
	for _, c := range []struct {
		name, want string
		sig        []byte
	}{
		{"minisign's own comment", "trusted comment is not", r.SignWithComments(fx.key, "timestamp:1700000000\tfile:app", "")},
		{"unknown field", "trusted comment is not", r.SignWithComments(fx.key, "identifier=a team=b role=admin", "")},
		{"bad identifier", "character not allowed", r.SignWithComments(fx.key, "identifier=a(b", "")},
		{"legacy", "legacy", minisign.SignWithComments(fx.key, content, "identifier=org.example.app", "")},
	} {
		if err := os.WriteFile(p+Suffix, c.sig, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := fx.verify(p); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrBadSignature, %q", c.name, err, c.want)
		}
	}
	// A comment changed after signing does not verify.
	good := fx.sign(p, fx.key, testID)
	forged := bytes.Replace(good, []byte("team=ABCDE12345"), []byte("team=ZZZZZ99999"), 1)
	if err := os.WriteFile(p+Suffix, forged, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.verify(p); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged team: %v", err)
	}
}

func TestComment(t *testing.T) {
	for _, c := range []struct {
		in   string
		id   Identity
		unix int64 // -1: no timestamp
	}{
		{"identifier=org.x", Identity{Identifier: "org.x"}, -1},
		{"identifier=org.x team=T", Identity{"org.x", "T"}, -1},
		{"identifier=org.x timestamp=12", Identity{Identifier: "org.x"}, 12},
		{"identifier=a.b-c_d team=ABCDE12345 timestamp=0", Identity{"a.b-c_d", "ABCDE12345"}, 0},
	} {
		id, ts, err := parseComment(c.in)
		if err != nil || id != c.id || (c.unix < 0) != ts.IsZero() || c.unix >= 0 && ts.Unix() != c.unix {
			t.Errorf("%q: %v %v %v", c.in, id, ts, err)
		}
		if c.unix < 0 && id.String() != c.in {
			t.Errorf("%q: String %q", c.in, id.String())
		}
	}
	for _, in := range []string{
		"", "identifier=", "team=T", "identifier=a identifier=b", "team=T identifier=a",
		"identifier=a timestamp=1 team=T", "identifier=a  team=T", " identifier=a", "identifier=a ",
		"identifier=a team=", "identifier=a=b", "identifier=a timestamp=-1", "identifier=a timestamp=01",
		"identifier=a timestamp=x", "identifier=a\tteam=T", "identifier=a other=b", "identifier=é",
		"identifier=" + strings.Repeat("a", MaxIdentifierLen+1), "identifier=a team=" + strings.Repeat("T", MaxTeamLen+1),
		"identifier=a\"", "identifier=a'", "identifier=a)", "identifier=a\\",
	} {
		if _, _, err := parseComment(in); err == nil {
			t.Errorf("%q parses", in)
		}
	}
	fx := newFixture(t)
	p := fx.exe("app", 10)
	for _, id := range []Identity{{}, {Identifier: "a b"}, {Identifier: "a", Team: "t=1"}, {Identifier: "a\n"}} {
		if _, err := Sign(fx.open(p), fx.key, id); err == nil || !errors.Is(err, errBadIdentity) {
			t.Errorf("Sign as %q: %v", id, err)
		}
	}
}

func TestInspect(t *testing.T) {
	fx := newFixture(t)
	p := fx.exe("app", 10)
	other, otherID := fx.newKey("other")
	if err := WriteBeside(p, fx.sign(p, other, testID)); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(fx.open(p), p)
	if err != nil || info.KeyID != otherID || info.Identifier != testID.Identifier {
		t.Fatalf("Inspect: %+v, %v", info, err)
	}
	os.Remove(p + Suffix)
	if _, err := Inspect(fx.open(p), p); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("Inspect unsigned: %v", err)
	}
	if err := WriteBeside(p, []byte("garbage")); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("WriteBeside of garbage: %v", err)
	}
}

func TestDefault(t *testing.T) {
	t.Setenv("XPCD_ROOT", "/x/root")
	if d := TrustDir(); d != "/x/root/trust.d" {
		t.Errorf("TrustDir with XPCD_ROOT: %s", d)
	}
	t.Setenv("XPCD_ROOT", "")
	if d := TrustDir(); d != "/etc/xpc/trust.d" {
		t.Errorf("TrustDir: %s", d)
	}
	if d1, d2 := Default(), Default(); d1 != d2 || d1 == nil {
		t.Error("Default is not one Verifier")
	}
}

// fs-verity, where the file system has it: an enabled file is keyed by
// its measured digest and cached at once, however fresh.
func TestVerity(t *testing.T) {
	fx := newFixture(t)
	p := fx.exe("app", 10_000)
	fx.signBeside(p, testID)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	arg := unix.FsverityEnableArg{Version: 1, Hash_algorithm: unix.FS_VERITY_HASH_ALG_SHA256, Block_size: 4096}
	rc, _ := f.SyscallConn()
	var errno syscall.Errno
	rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, unix.FS_IOC_ENABLE_VERITY, uintptr(unsafe.Pointer(&arg)))
	})
	f.Close()
	if errno != 0 {
		t.Skipf("no fs-verity on this file system (FS_IOC_ENABLE_VERITY: %v)", errno)
	}
	g := fx.open(p)
	k, err := statFile(g)
	if err != nil || k.verity == [len(k.verity)]byte{} {
		t.Fatalf("verity file not measured: %v", err)
	}
	for range 2 {
		if _, err := fx.v.Verify(g, p); err != nil {
			t.Fatal(err)
		}
	}
	if n := fx.v.hashes.Load(); n != 1 {
		t.Errorf("a fresh fs-verity file hashed %d times, want 1", n)
	}
}

// A file that changes while it is hashed fails, and a signature file that
// is not the one looked at before is answered but not kept.
func TestChangedWhileRead(t *testing.T) {
	fx := newFixture(t)
	fx.aged()
	p := fx.exe("app", 10_000)
	fx.signBeside(p, testID)
	f := fx.open(p)
	k, err := statFile(f)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("more"))
	w.Close()
	if err := readAll(io.NewSectionReader(f, 0, k.size), f, k); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("a file changed under the hash: %v", err)
	}

	q := fx.exe("app2", 10_000)
	fx.signBeside(q, testID)
	g := fx.open(q)
	gk, err := statFile(g)
	if err != nil {
		t.Fatal(err)
	}
	ts := fx.v.trust()
	key := cacheKey{op: opVerify, file: gk, path: q, sig: fileKey{kind: keyAbsent}, gen: ts.gen}
	r, keep := fx.v.verify(g, q, key, ts, fx.v.now())
	if r.err != nil || keep {
		t.Fatalf("signature file other than keyed: %v, kept %v", r.err, keep)
	}
	if key.sig, err = statPath(q + Suffix); err != nil {
		t.Fatal(err)
	}
	if r, keep := fx.v.verify(g, q, key, ts, fx.v.now()); r.err != nil || !keep {
		t.Fatalf("signature file as keyed: %v, kept %v", r.err, keep)
	}
}
