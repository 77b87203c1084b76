package xpcd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
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

// Status asked from a moved bundle's new path, before it is registered
// again from there, says the same whether or not anything looked at the
// old path first: not-found (its registration is stale) when the old
// path is gone, enabled when a copy is still there.
func TestAppStatusFromNewPathOfMovedBundle(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	dir := appsDir(t, h)
	id := "org.example.regstatmove"
	plist := id + ".agent.plist"
	a := bundletest.Make(t, dir, bundletest.Spec{Identifier: id, Agents: []bundletest.PlistSpec{{Label: id + ".agent"}}})
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, a, bootstrap.AppKindAgent, plist)

	copyOf := filepath.Join(dir, "Copy.app")
	if err := os.CopyFS(copyOf, os.DirFS(a)); err != nil {
		t.Fatal(err)
	}
	if s := u.status(copyOf, bootstrap.AppKindAgent, plist); s != bootstrap.AppStatusEnabled {
		t.Errorf("status from a copy, the registered bundle still there: %q, want %q", s, bootstrap.AppStatusEnabled)
	}

	b := filepath.Join(dir, "Moved.app")
	if err := os.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	// Nothing has looked at the old path.
	if s := u.status(b, bootstrap.AppKindAgent, plist); s != bootstrap.AppStatusNotFound {
		t.Errorf("status from the new path: %q, want %q", s, bootstrap.AppStatusNotFound)
	}
	u.must(bootstrap.OpAppRegister, b, bootstrap.AppKindAgent, plist)
	if s := u.status(b, bootstrap.AppKindAgent, plist); s != bootstrap.AppStatusEnabled {
		t.Errorf("status from the new path, registered again from there: %q, want %q", s, bootstrap.AppStatusEnabled)
	}
}

// A refused takeover of a signed bundle's registration says what the
// refused bundle is, where the registered one is, and how to go on.
func TestAppTakeOverRefusalSaysWhy(t *testing.T) {
	h := newSystemHarness(t)
	dir := appsDir(t, h)
	id := "org.example.regtakeover"
	signed := bundletest.Make(t, dir, bundletest.Spec{Identifier: id, Name: "Signed.app"})
	signBundle(t, filepath.Join(h.dir, "trust.d"), signed, id, "ABCDE12345")
	unsigned := bundletest.Make(t, dir, bundletest.Spec{Identifier: id, Name: "Unsigned.app"})
	h.start()
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, signed, bootstrap.AppKindMain, "")
	_, err := u.req(bootstrap.OpAppRegister, unsigned, bootstrap.AppKindMain, "")
	if ruleOfErr(err) != bootstrap.RuleAppIdentity {
		t.Fatalf("unsigned bundle registering over a signed one: %v", err)
	}
	for _, want := range []string{"(" + signed + ")", "unsigned, this one cannot take it over", "sign its main executable as team ABCDE12345"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}

// A daemon's registration belongs to the user who made it: another user
// (not root) can neither register the same daemon over it nor unregister
// it, and is told whose it is and who may (rule app-owner).
func TestAppDaemonOwner(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	id := "org.example.regowner"
	root := daemonBundle(t, appsDir(t, h), id)
	plist := id + ".daemon.plist"
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, plist)
	other := newAppClient(t, h, regOther, regOther)
	for _, op := range []string{bootstrap.OpAppRegister, bootstrap.OpAppUnregister} {
		_, err := other.req(op, root, bootstrap.AppKindDaemon, plist)
		if ruleOfErr(err) != bootstrap.RuleAppOwner {
			t.Fatalf("%s of another user's daemon: %v, want rule %s", op, err, bootstrap.RuleAppOwner)
		}
		if want := "was registered by uid 65534 (from " + root + "); only that user or root may"; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q does not say %q", op, err, want)
		}
	}
	regs := listRegs(t, u, false)
	if len(regs) != 1 {
		t.Fatalf("after the refusals: %v", regs)
	}
	if uid, _ := regs[0].Int64(bootstrap.KeyAppUID); uid != regUser {
		t.Fatalf("after the refusals, the daemon's registration is uid %d's", uid)
	}
	u.must(bootstrap.OpAppUnregister, root, bootstrap.AppKindDaemon, plist)
}

// A daemon given to an xpcd --user is refused with what to run instead.
func TestAppDaemonInUserInstanceSaysWhere(t *testing.T) {
	h := newHarness(t)
	h.start()
	id := "org.example.reguserd"
	root := daemonBundle(t, appsDir(t, h), id)
	u := newAppClient(t, h, 0, 0)
	_, err := u.req(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, id+".daemon.plist")
	if reasonOf(err) != bootstrap.ReasonWrongDomain || !strings.Contains(err.Error(), "(xpcd --system, run as root)") {
		t.Fatalf("a daemon registered with an xpcd --user: %v", err)
	}
}

// A registered bundle that no longer reads (its agent's plist broken, or
// its main executable changed after it was signed) can still be
// unregistered, and its job goes; one never registered is told why it
// does not read.
func TestAppUnregisterUnreadableBundle(t *testing.T) {
	h := newSystemHarness(t)
	dir := appsDir(t, h)
	id := "org.example.regbroken"
	plist := id + ".agent.plist"
	root := bundletest.Make(t, dir, bundletest.Spec{Identifier: id, Agents: []bundletest.PlistSpec{{Label: id + ".agent"}}})
	signed := bundletest.Make(t, dir, bundletest.Spec{Identifier: id + ".signed"})
	signBundle(t, filepath.Join(h.dir, "trust.d"), signed, id+".signed", "ABCDE12345")
	h.start()
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindAgent, plist)
	u.must(bootstrap.OpAppRegister, signed, bootstrap.AppKindMain, "")

	broken := []byte("<plist><dict><key>Label</key><string>x</string><key>RunAtLoad</key><string>yes</string></dict></plist>")
	if err := os.WriteFile(filepath.Join(root, "Library", "LaunchAgents", plist), broken, 0o644); err != nil {
		t.Fatal(err)
	}
	// (Replaced, not written in place: the main app may be running it,
	// and a running executable cannot be opened for writing.)
	exe := filepath.Join(signed, "app")
	old, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe+".new", append(old, "# changed after signing\n"...), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(exe+".new", exe); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ root, kind, plist, target string }{
		{root, bootstrap.AppKindAgent, plist, UserDomain(regUser) + "/" + id + ".agent"},
		{signed, bootstrap.AppKindMain, "", UserDomain(regUser) + "/" + id + ".signed"},
	} {
		if _, err := u.req(bootstrap.OpAppRegister, tc.root, tc.kind, tc.plist); err == nil {
			t.Fatalf("register of %s, which no longer reads: no error", tc.root)
		}
		if _, err := u.req(bootstrap.OpAppUnregister, tc.root, tc.kind, tc.plist); err != nil {
			t.Fatalf("unregister of %s, which no longer reads: %v", tc.root, err)
		}
		if s := h.stateOfTarget(tc.target); s != "error: "+bootstrap.ReasonNotFound {
			t.Errorf("%s after unregister: %q", tc.target, s)
		}
		_, err := u.req(bootstrap.OpAppUnregister, tc.root, tc.kind, tc.plist)
		if r := reasonOf(err); r != bootstrap.ReasonBadRequest && ruleOfErr(err) != bootstrap.RuleAppIdentity {
			t.Errorf("unregister again of %s: %v, want why it does not read", tc.root, err)
		}
	}
	if n := len(listRegs(t, u, false)); n != 0 {
		t.Fatalf("%d registrations left", n)
	}
}

// A watch begun before its bundle is there says not-found, then follows
// the registration made from that path once the bundle is put there and
// registered.
func TestAppWatchBeforeBundleIsThere(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	dir := appsDir(t, h)
	id := "org.example.reglate"
	root := filepath.Join(dir, id+".app")
	u := newAppClient(t, h, regUser, regUser)
	w := &statusWatch{ch: make(chan string, 16)}
	wc := dialIDs(t, h, regUser, regUser, w)
	if _, err := wc.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpAppWatch, bootstrap.KeyPath, root, bootstrap.KeyAppKind, bootstrap.AppKindMain)); err != nil {
		t.Fatal(err)
	}
	if s := w.next(t); s != bootstrap.AppStatusNotFound {
		t.Fatalf("watch of a bundle not there yet: %q", s)
	}
	if got := bundletest.Make(t, dir, bundletest.Spec{Identifier: id}); got != root {
		t.Fatalf("bundle made at %s, want %s", got, root)
	}
	u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindMain, "")
	if s := w.next(t); s != bootstrap.AppStatusEnabled {
		t.Fatalf("watch after the bundle was put there and registered: %q", s)
	}
	u.must(bootstrap.OpAppUnregister, root, bootstrap.AppKindMain, "")
	if s := w.next(t); s != bootstrap.AppStatusNotFound {
		t.Fatalf("watch after unregister: %q", s)
	}
}
