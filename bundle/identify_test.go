package bundle_test

import (
	"errors"
	"os"
	"testing"

	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/codesign"
	"github.com/goxpc/xpc/internal/bundletest"
)

func TestIdentify(t *testing.T) {
	signer := bundletest.NewSigner(t)
	stranger := bundletest.NewSigner(t)
	read := func(t *testing.T) *bundle.Bundle {
		t.Helper()
		b, err := bundle.Read(bundletest.Make(t, t.TempDir(), bundletest.Spec{Identifier: "org.example.app", Layout: bundle.Contents}))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("signed", func(t *testing.T) {
		b := read(t)
		signer.Sign(t, b.Executable, "org.example.app", "ABCDE12345")
		id, err := b.Identify(signer.Verifier())
		want := bundle.Identity{Identifier: "org.example.app", Team: "ABCDE12345", Signed: true}
		if err != nil || id != want {
			t.Fatalf("Identify = %+v, %v; want %+v", id, err, want)
		}
		if s := id.String(); s != "org.example.app (team ABCDE12345)" {
			t.Errorf("String() = %q", s)
		}
	})
	t.Run("signed without team", func(t *testing.T) {
		b := read(t)
		signer.Sign(t, b.Executable, "org.example.app", "")
		id, err := b.Identify(signer.Verifier())
		if err != nil || id != (bundle.Identity{Identifier: "org.example.app", Signed: true}) || id.String() != "org.example.app" {
			t.Fatalf("Identify = %+v (%s), %v", id, id, err)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		b := read(t)
		id, err := b.Identify(signer.Verifier())
		if err != nil || id != (bundle.Identity{Identifier: "org.example.app"}) {
			t.Fatalf("Identify = %+v, %v", id, err)
		}
	})
	for _, c := range []struct {
		name string
		sign func(t *testing.T, b *bundle.Bundle)
		kind error
	}{
		{"other identifier", func(t *testing.T, b *bundle.Bundle) { signer.Sign(t, b.Executable, "org.example.other", "ABCDE12345") }, nil},
		{"untrusted key", func(t *testing.T, b *bundle.Bundle) { stranger.Sign(t, b.Executable, "org.example.app", "") }, codesign.ErrUntrusted},
		{"changed after signing", func(t *testing.T, b *bundle.Bundle) {
			signer.Sign(t, b.Executable, "org.example.app", "")
			f, err := os.OpenFile(b.Executable, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("# more\n")
			f.Close()
		}, codesign.ErrBadSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := read(t)
			c.sign(t, b)
			id, err := b.Identify(signer.Verifier())
			if !errors.Is(err, bundle.ErrBadBundle) || (c.kind != nil && !errors.Is(err, c.kind)) || id.Signed {
				t.Fatalf("Identify = %+v, %v; want ErrBadBundle and %v", id, err, c.kind)
			}
			t.Log(err)
		})
	}
	t.Run("executable replaced by a link", func(t *testing.T) {
		b := read(t)
		signer.Sign(t, b.Executable, "org.example.app", "")
		other := b.Root + "/signed-elsewhere"
		os.Rename(b.Executable, other)
		os.Rename(b.Executable+".minisig", other+".minisig")
		os.Symlink(other, b.Executable)
		if id, err := b.Identify(signer.Verifier()); !errors.Is(err, bundle.ErrBadBundle) || id.Signed {
			t.Fatalf("Identify = %+v, %v; want ErrBadBundle", id, err)
		}
	})
}
