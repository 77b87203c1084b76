package xpcd

import (
	"strings"
	"testing"

	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/bundletest"
)

// A plist a bundle does not have is named in the error as the bundle's
// layout has its directory, with the plists that are there: a name given
// without ".plist" (as a label), or mistyped, shows what to give instead.
func TestAppMissingPlistNamesWhatIsThere(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	u := newAppClient(t, h, regUser, regUser)
	apps := appsDir(t, h)
	for _, tc := range []struct {
		layout bundle.Layout
		dir    string
	}{
		{bundle.Flat, "has no Library/LaunchAgents/org.example.missing.agent "},
		{bundle.Contents, "has no Contents/Library/LaunchAgents/org.example.missing.agent "},
	} {
		root := bundletest.Make(t, apps, bundletest.Spec{Name: tc.layout.String() + ".app", Identifier: "org.example.missing", Layout: tc.layout,
			Agents: []bundletest.PlistSpec{{Label: "org.example.missing.agent"}}})
		_, err := u.req(bootstrap.OpAppRegister, root, bootstrap.AppKindAgent, "org.example.missing.agent")
		if reasonOf(err) != bootstrap.ReasonNotFound {
			t.Fatalf("%v: register of a plist not there: %v, want reason %s", tc.layout, err, bootstrap.ReasonNotFound)
		}
		for _, want := range []string{tc.dir, "(it has: org.example.missing.agent.plist)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v: %q does not say %q", tc.layout, err, want)
			}
		}
	}
}
