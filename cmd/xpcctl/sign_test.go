package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxpc/xpc/codesign"
)

// signFixture is a key pair, a trust directory holding its public key,
// and an executable to sign, in a temporary directory.
func signFixture(t *testing.T) (dir, trust, exe string) {
	t.Helper()
	dir = t.TempDir()
	trust = filepath.Join(dir, "trust.d")
	if err := os.Mkdir(trust, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, nil, "keygen", filepath.Join(dir, "dev")); r.code != 0 ||
		!strings.Contains(r.stdout, "dev.pub: public key ") {
		t.Fatalf("keygen: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	pub, err := os.ReadFile(filepath.Join(dir, "dev.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(trust, "dev.pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	exe = filepath.Join(dir, "app")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, trust, exe
}

func TestKeygen(t *testing.T) {
	dir, _, _ := signFixture(t)
	st, err := os.Stat(filepath.Join(dir, "dev.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("dev.key: %v, %v, want mode 0600", st, err)
	}
	if _, err := codesign.ReadPrivateKey(filepath.Join(dir, "dev.key")); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, nil, "keygen", filepath.Join(dir, "dev"))
	if r.code != 1 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("keygen over existing keys: exit %d, %q", r.code, r.stderr)
	}
	if r := runCmd(t, nil, "keygen"); r.code != 2 {
		t.Fatalf("keygen without PREFIX: exit %d", r.code)
	}
}

func TestSignVerify(t *testing.T) {
	dir, trust, exe := signFixture(t)
	key := filepath.Join(dir, "dev.key")
	if r := runCmd(t, nil, "verify", "--trust", trust, exe); r.code != 1 || !saysOnce(r.stderr, "not signed") {
		t.Fatalf("unsigned: exit %d, %q", r.code, r.stderr)
	}
	r := runCmd(t, nil, "sign", "-k", key, "-i", "org.example.app", "-t", "ABCDE12345", exe)
	if r.code != 0 || !strings.Contains(r.stdout, "in "+exe+".minisig") {
		t.Fatalf("sign: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, nil, "verify", "--trust", trust, exe)
	if r.code != 0 || !strings.Contains(r.stdout, "valid, identifier=org.example.app team=ABCDE12345") {
		t.Fatalf("verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// XPCD_ROOT picks the trust directory when --trust is not given.
	t.Setenv("XPCD_ROOT", dir)
	if r := runCmd(t, nil, "verify", exe); r.code != 0 {
		t.Fatalf("verify with XPCD_ROOT's trust.d: exit %d, %q", r.code, r.stderr)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, nil, "verify", "--trust", empty, exe); r.code != 1 || !saysOnce(r.stderr, "untrusted key") {
		t.Fatalf("untrusted: exit %d, %q", r.code, r.stderr)
	}
	f, err := os.OpenFile(exe, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("echo modified\n")
	f.Close()
	if r := runCmd(t, nil, "verify", "--trust", trust, exe); r.code != 1 || !saysOnce(r.stderr, "bad signature") {
		t.Fatalf("modified: exit %d, %q", r.code, r.stderr)
	}
	for _, args := range [][]string{
		{"sign", "-i", "org.x", exe}, {"sign", "-k", key, exe}, {"sign", "-k", key, "-i", "org.x"},
		{"verify"}, {"verify", exe, exe},
	} {
		if r := runCmd(t, nil, args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2", args, r.code)
		}
	}
	if r := runCmd(t, nil, "sign", "-k", key, "-i", "org x", exe); r.code != 1 || !saysOnce(r.stderr, "not allowed") {
		t.Errorf("bad identifier: exit %d, %q", r.code, r.stderr)
	}
}

// oneLine reports whether stderr is one line containing want.
func saysOnce(stderr, want string) bool {
	return strings.Count(stderr, "\n") == 1 && strings.HasSuffix(stderr, "\n") && strings.Contains(stderr, want)
}

func TestCodesignDisplay(t *testing.T) {
	dir, trust, exe := signFixture(t)
	key := filepath.Join(dir, "dev.key")
	if r := runCmd(t, nil, "codesign", "-d", "--trust", trust, exe); r.code != 1 || !saysOnce(r.stderr, "not signed") {
		t.Fatalf("unsigned: exit %d, %q", r.code, r.stderr)
	}
	if r := runCmd(t, nil, "sign", "-k", key, "-i", "org.example.app", "--xattr", exe); r.code != 0 {
		if strings.Contains(r.stderr, "not supported") {
			t.Skipf("no user xattrs here: %s", r.stderr)
		}
		t.Fatalf("sign --xattr: exit %d, %q", r.code, r.stderr)
	}
	r := runCmd(t, nil, "codesign", "-d", "--trust", trust, exe)
	pub, _ := os.ReadFile(filepath.Join(dir, "dev.pub"))
	for _, want := range []string{
		"Executable=" + exe + "\n", "Identifier=org.example.app\n", "TeamIdentifier=not set\n",
		"Signature=xattr user.xpc.minisig\n", "Trusted=yes\n", "SHA256=" + sha256Hex(t, exe) + "\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("codesign -d lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(string(pub), strings.TrimLeft(kv(r.stdout, "KeyID"), "0")) {
		t.Errorf("KeyID %s is not the key's", kv(r.stdout, "KeyID"))
	}
	// A beside signature made now does not hide the xattr's, and sign
	// says so.
	r = runCmd(t, nil, "sign", "-k", key, "-i", "org.example.other", exe)
	if r.code != 0 || !strings.Contains(r.stderr, "wins over") {
		t.Errorf("sign beside an xattr signature: exit %d, %q", r.code, r.stderr)
	}
	r = runCmd(t, nil, "codesign", "-d", exe)
	if r.code != 0 || kv(r.stdout, "Identifier") != "org.example.app" || !strings.HasPrefix(kv(r.stdout, "Trusted"), "no: ") {
		t.Errorf("codesign -d with the default trust directory:\n%s%s", r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, "codesign", exe); r.code != 2 {
		t.Errorf("codesign without -d: exit %d", r.code)
	}
}

func sha256Hex(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}

// kv returns the value of KEY= in codesign -d's output.
func kv(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	return ""
}
