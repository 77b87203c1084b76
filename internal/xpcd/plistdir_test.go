package xpcd

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// enable and disable of a label the domain does not know are refused
// (not-found, naming the label, the domain and where xpcd looked), and
// store nothing; a label loaded, or declared by a plist of the domain's
// directory under any file name, is known; enable of a label with a
// stale override is still allowed, so the override can be changed.
func TestEnableDisableUnknownLabel(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.kn.loaded"})
	h.start()
	// Put there after start: not loaded, but the domain's own.
	b := h.plist(testJob{label: "test.kn.inplist"})
	if err := os.WriteFile(filepath.Join(h.paths.Agents, "some-other-name.plist"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	// A stale override: its job was loaded from elsewhere, then booted out.
	other := filepath.Join(h.dir, "elsewhere")
	os.Mkdir(other, 0o755)
	h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, h.writePlist(testJob{label: "test.kn.stale"}, other))
	h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, h.target("test.kn.stale"))
	h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.kn.stale"), bootstrap.KeyWait, true)

	ovFile := filepath.Join(h.paths.StateDir, "overrides.json")
	before, err := os.ReadFile(ovFile)
	if err != nil {
		t.Fatal(err)
	}
	dom := UserDomain(uint32(os.Geteuid()))
	for _, op := range []string{bootstrap.OpEnable, bootstrap.OpDisable} {
		_, err := h.admin(op, bootstrap.KeyTarget, h.target("test.kn.nosuch"))
		if reasonOf(err) != bootstrap.ReasonNotFound {
			t.Fatalf("%s of an unknown label: %v", op, err)
		}
		for _, want := range []string{"no job test.kn.nosuch in " + dom, "not loaded", h.paths.Agents} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s of an unknown label: %q does not say %q", op, err, want)
			}
		}
	}
	if _, err := h.admin(bootstrap.OpDisable, bootstrap.KeyTarget, h.target("test.kn.stale")); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("disable of a label with a stale override only: %v", err)
	}
	after, err := os.ReadFile(ovFile)
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("overrides.json changed by refused requests (%v):\n%s\nwas:\n%s", err, after, before)
	}
	ov, _ := h.mustAdmin(bootstrap.OpPrintDisabled).Dictionary(bootstrap.KeyOverrides)
	if ov.Get("test.kn.nosuch") != nil {
		t.Errorf("an override was kept for an unknown label: %s", xpc.Format(ov))
	}

	h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, h.target("test.kn.loaded"))
	h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, h.target("test.kn.inplist"))
	h.mustAdmin(bootstrap.OpEnable, bootstrap.KeyTarget, h.target("test.kn.stale"))
	ov, _ = h.mustAdmin(bootstrap.OpPrintDisabled).Dictionary(bootstrap.KeyOverrides)
	if ov.Get("test.kn.loaded") != xpc.Bool(true) || ov.Get("test.kn.inplist") != xpc.Bool(true) || ov.Get("test.kn.stale") != xpc.Bool(false) {
		t.Errorf("overrides of known labels: %s", xpc.Format(ov))
	}
}

// Permission comes first: a caller who may not change a domain is refused
// by the rule domain-access, whether or not the label exists there; what
// is in another's directories is not told.
func TestEnableUnknownLabelPermissionFirst(t *testing.T) {
	h := newSystemHarness(t)
	h.writePlist(testJob{label: "test.kp.sys"}, h.paths.Daemons)
	h.start()
	c := dialAs(t, h, 1001)
	for _, target := range []string{"system/test.kp.sys", "system/test.kp.nosuch", "user/1002/test.kp.nosuch"} {
		_, err := c.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpDisable, bootstrap.KeyTarget, target))
		var re *xpc.RemoteError
		if !errors.As(err, &re) || reasonOf(err) != bootstrap.ReasonDenied {
			t.Fatalf("disable %s by uid 1001: %v", target, err)
		}
		if r, _ := re.Object.String(bootstrap.KeyRule); r != bootstrap.RuleDomainAccess {
			t.Errorf("disable %s by uid 1001: rule %q (%v)", target, r, err)
		}
	}
	// Root, for a label of the system domain's directory.
	h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, "system/test.kp.sys")
	if _, err := h.admin(bootstrap.OpDisable, bootstrap.KeyTarget, "system/test.kp.nosuch"); reasonOf(err) != bootstrap.ReasonNotFound ||
		!strings.Contains(err.Error(), h.paths.Daemons) {
		t.Errorf("disable of an unknown system label: %v", err)
	}
}
