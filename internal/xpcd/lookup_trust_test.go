package xpcd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxpc/xpc/codesign"
)

// A private instance (XPCD_ROOT or --root) checks a name's identifier
// requirement with its own ROOT/trust.d, whatever the environment of the
// process it runs in says: a client signed by a key there passes, an
// unsigned copy of it is refused naming the clause.
func TestLookupRequirementTrustsOwnRoot(t *testing.T) {
	in := newIsoInstance(t)
	h := in.h
	if os.Getenv("XPCD_ROOT") != "" {
		t.Skip("XPCD_ROOT is set in the test's environment")
	}
	const req = "identifier org.example.client"
	h.writePlist(h.reqJob("test.trust", map[string]string{"test.trust.svc": req}, in.exe), h.paths.Daemons)
	trust := filepath.Join(h.paths.Root, "trust.d")
	if err := os.MkdirAll(trust, 0o755); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(h.dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := codesign.WriteKeyPair(filepath.Join(keys, "test")); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(keys, "test.pub"), filepath.Join(trust, "test.pub"))
	key, err := codesign.ReadPrivateKey(filepath.Join(keys, "test.key"))
	if err != nil {
		t.Fatal(err)
	}
	signed := filepath.Join(in.bin, "signed.test")
	copyFile(t, in.exe, signed)
	f, err := os.Open(signed)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := codesign.Sign(f, key, codesign.Identity{Identifier: "org.example.client"})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := codesign.WriteBeside(signed, sig); err != nil {
		t.Fatal(err)
	}
	h.start()

	steps := []isoStep{{ID: "l", Op: "lookup", Name: "test.trust.svc"}}
	if r := isoClient(t, signed, 0, 0, h.dir, steps)["l"]; !r.OK {
		t.Fatalf("the signed client: %+v", r)
	}
	r := isoClient(t, in.exe, 0, 0, h.dir, steps)["l"]
	if r.OK || !strings.Contains(r.Error, "peer requirement not met") || !strings.Contains(r.Error, req) {
		t.Fatalf("the unsigned client: %+v, want refused by %q", r, req)
	}
}
