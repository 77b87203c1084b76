package bundle_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bundletest"
	"github.com/goxpc/xpc/launchd"
)

// A bundle whose plists are each under their own limit but together far
// larger than MaxBundleBytes is refused, before Read holds them all: one
// Read of a user's bundle by a root xpcd must not cost hundreds of
// megabytes.
func TestReadBoundsBundleBytes(t *testing.T) {
	// Job plists of about a third of launchd.MaxFileSize each: the first
	// few fit, MaxLaunchPlists of them would be over 20 MiB.
	env := map[string]any{}
	for i := 0; len(env)*40 < launchd.MaxFileSize/3; i++ {
		env[fmt.Sprintf("K%06d", i)] = strings.Repeat("v", 20)
	}
	var ds []bundletest.PlistSpec
	for i := range bundle.MaxLaunchPlists {
		ds = append(ds, bundletest.PlistSpec{Label: fmt.Sprintf("org.example.big.d%02d", i), Extra: map[string]any{"EnvironmentVariables": env}})
	}
	root := bundletest.Make(t, t.TempDir(), bundletest.Spec{Identifier: "org.example.big", Daemons: ds})
	_, err := bundle.Read(root)
	if !errors.Is(err, bundle.ErrBadBundle) || !strings.Contains(err.Error(), "together") {
		t.Fatalf("Read of a bundle of %d plists of %d KiB: %v", len(ds), launchd.MaxFileSize/3>>10, err)
	}
	// A bundle within the bound reads.
	small := bundletest.Make(t, t.TempDir(), bundletest.Spec{Identifier: "org.example.small", Daemons: ds[:2]})
	if _, err := bundle.Read(small); err != nil {
		t.Fatalf("Read of a bundle of two such plists: %v", err)
	}
}
