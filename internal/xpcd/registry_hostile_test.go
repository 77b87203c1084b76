package xpcd

import (
	"path/filepath"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/bundletest"
)

// Attacks of a local user on a root xpcd's registry (docs/SECURITY.md,
// "App registrations and approval").

// A user cannot keep a label from the system's own daemons by registering
// a daemon that claims it: a daemon waiting for approval gives up its
// label to the job root loads with it (its registration goes, as a deny
// would remove it), and the user unregistering afterwards does not touch
// root's job.
func TestAppUnapprovedYieldsLabel(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	dir := appsDir(t, h)
	label := "test.reg.syslabel"
	name := label + ".svc"
	root := bundletest.Make(t, dir, bundletest.Spec{Identifier: "org.example.regsquatlabel", Daemons: []bundletest.PlistSpec{{
		Label: label, Extra: map[string]any{"RunAtLoad": true},
	}}})
	plist := label + ".plist"
	u := newAppClient(t, h, regUser, regUser)
	if r := u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, plist); strOf(r, bootstrap.KeyStatus) != bootstrap.AppStatusRequiresApproval {
		t.Fatalf("register: %v", r)
	}
	// Root loads its own daemon with that label.
	sys := mkdirAll(t, filepath.Join(dir, "sys"))
	p := h.writePlist(h.lcJob(label, []string{name}, nil, nil, ""), sys)
	if _, err := h.admin(bootstrap.OpBootstrap, bootstrap.KeyDomain, DomainSystem, bootstrap.KeyPath, p); err != nil {
		t.Fatalf("root's bootstrap of a label a waiting daemon claims: %v", err)
	}
	if pid := h.lookupPing(name); pid <= 0 {
		t.Fatalf("root's daemon does not serve its name: pid %d", pid)
	}
	if s := u.status(root, bootstrap.AppKindDaemon, plist); s != bootstrap.AppStatusNotRegistered {
		t.Fatalf("the squatting registration's status: %q", s)
	}
	if _, err := u.req(bootstrap.OpAppUnregister, root, bootstrap.AppKindDaemon, plist); reasonOf(err) != bootstrap.ReasonNotRegistered {
		t.Fatalf("unregister of the displaced registration: %v", err)
	}
	if s := h.stateOfTarget(DomainSystem + "/" + label); s != "running" {
		t.Fatalf("root's daemon after the user's unregister: %q", s)
	}
}

// A registration never touches a job of its label that was loaded from
// elsewhere: after root booted out an approved user's daemon and loaded
// its own with that label, the user's unregister leaves root's job
// running, and registering again cannot redefine it.
func TestAppRegistrationLeavesOthersJob(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	dir := appsDir(t, h)
	label := "test.reg.otherjob"
	name := label + ".svc"
	root := bundletest.Make(t, dir, bundletest.Spec{Identifier: "org.example.regotherjob", Daemons: []bundletest.PlistSpec{{Label: label}}})
	plist := label + ".plist"
	u := newAppClient(t, h, regUser, regUser)
	id := strOf(u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, plist), bootstrap.KeyApprovalID)
	h.mustAdmin(bootstrap.OpApprove, bootstrap.KeyApprovalID, id)
	h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, DomainSystem+"/"+label, bootstrap.KeyWait, true)
	p := h.writePlist(h.lcJob(label, []string{name}, nil, nil, ""), mkdirAll(t, filepath.Join(dir, "sys")))
	h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyDomain, DomainSystem, bootstrap.KeyPath, p)
	if pid := h.lookupPing(name); pid <= 0 {
		t.Fatalf("root's daemon does not serve its name: pid %d", pid)
	}
	if _, err := u.req(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, plist); reasonOf(err) != bootstrap.ReasonExists {
		t.Fatalf("register again over root's job: %v", err)
	}
	u.must(bootstrap.OpAppUnregister, root, bootstrap.AppKindDaemon, plist)
	if s := h.stateOfTarget(DomainSystem + "/" + label); s != "running" {
		t.Fatalf("root's daemon after the user's unregister: %q", s)
	}
	if pid := h.lookupPing(name); pid <= 0 {
		t.Fatalf("root's daemon after the user's unregister: pid %d", pid)
	}
}
