package bundle_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bundletest"
)

// The Contents directory of a macOS-layout bundle, given for the bundle
// (an easy slip when porting), is refused with the bundle to give instead,
// not read as a Flat bundle whose executable is missing.
func TestReadContentsDirIsNotABundle(t *testing.T) {
	root := bundletest.Make(t, t.TempDir(), bundletest.Spec{Identifier: "org.example.contents", Layout: bundle.Contents})
	_, err := bundle.Read(filepath.Join(root, "Contents"))
	if !errors.Is(err, bundle.ErrBadBundle) {
		t.Fatalf("Read of the bundle's Contents: %v, want ErrBadBundle", err)
	}
	if want := "give the bundle, " + root; !strings.Contains(err.Error(), want) {
		t.Errorf("%q does not say %q", err, want)
	}
	if _, err := bundle.Read(root); err != nil {
		t.Fatalf("Read of the bundle itself: %v", err)
	}
}
