package xpcd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goxpc/xpc"
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

// countingAuthority never answers until its question is given up, and
// counts the questions under way.
type countingAuthority struct {
	mu       sync.Mutex
	now, max int
}

func (c *countingAuthority) Authorize(ctx context.Context, _ int, _ uint64, _ uint32, _ string, _ map[string]string) (bool, error) {
	c.mu.Lock()
	c.now++
	c.max = max(c.max, c.now)
	c.mu.Unlock()
	<-ctx.Done()
	c.mu.Lock()
	c.now--
	c.mu.Unlock()
	return false, ctx.Err()
}

// A user cannot pile up questions to a slow approval authority (each a
// goroutine of xpcd, and with polkit a dialog and one of its few slots)
// by registering and unregistering a daemon again and again: only
// maxAskingPerUser of theirs wait at once; the daemons over it wait for
// an administrator.
func TestAppAuthorityQuestionsBounded(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	ca := &countingAuthority{}
	h.d.sup.authority = ca
	id := "org.example.regpkflood"
	root := daemonBundle(t, appsDir(t, h), id)
	plist := id + ".daemon.plist"
	u := newAppClient(t, h, regUser, regUser)
	const rounds = 3 * maxAskingPerUser
	for range rounds {
		if r := u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, plist); strOf(r, bootstrap.KeyStatus) != bootstrap.AppStatusRequiresApproval {
			t.Fatalf("register: %v", r)
		}
		u.must(bootstrap.OpAppUnregister, root, bootstrap.AppKindDaemon, plist)
	}
	u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, plist)
	waitFor(t, "the authority to be asked", func() bool {
		ca.mu.Lock()
		defer ca.mu.Unlock()
		return ca.now >= maxAskingPerUser
	})
	time.Sleep(200 * time.Millisecond) // questions are asked off the loop: any more would be in by now
	ca.mu.Lock()
	n := ca.max
	ca.mu.Unlock()
	if n > maxAskingPerUser {
		t.Fatalf("%d questions to the authority at once after %d registers by one user; at most %d wanted", n, rounds+1, maxAskingPerUser)
	}
}

// A registration of a uid without an account is read back (app list's
// stale check, and at start) with that user's rights, never with root's
// group: a bundle path the user turned into a link into a directory only
// root's group may enter reads as it does for the user (not stale:
// permission denied), not as gone, which would tell them what is there.
func TestAppRegistrationReadBackWithoutRootGroup(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	dir := appsDir(t, h)
	mine := mkdirAll(t, filepath.Join(dir, "mine"))
	if err := os.Chown(mine, regOther, regOther); err != nil {
		t.Fatal(err)
	}
	root := bundletest.Make(t, mine, bundletest.Spec{Identifier: "org.example.reggid"})
	closed := filepath.Join(dir, "rootgroup")
	if err := os.Mkdir(closed, 0o750); err != nil {
		t.Fatal(err)
	}
	o := newAppClient(t, h, regOther, regOther)
	if _, err := o.req(bootstrap.OpAppRegister, root, bootstrap.AppKindMain, ""); err != nil {
		t.Fatalf("register: %v", err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(closed, "nothing.app"), root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(closed, "nothing.app")); !os.IsNotExist(err) {
		t.Fatalf("the target is there: %v", err)
	}
	regs := listRegs(t, o, false)
	if len(regs) != 1 {
		t.Fatalf("%d registrations", len(regs))
	}
	if stale, _ := regs[0].Bool(bootstrap.KeyStale); stale {
		t.Fatal("xpcd read the bundle with root's group: a path the user cannot reach was reported gone")
	}
}

// A registrations file whose entries do not hold together (a user's main
// app or agent in the system domain, an unknown kind, a plist name that
// is a path) loads none of them: a user's app never runs as root because
// the file says so.
func TestAppRegistryHostileEntries(t *testing.T) {
	h := newSystemHarness(t)
	if err := os.MkdirAll(h.paths.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := appsDir(t, h)
	id := "org.example.reghostilefile"
	root := bundletest.Make(t, dir, bundletest.Spec{Identifier: id, Agents: []bundletest.PlistSpec{{Label: id + ".agent"}}})
	entry := func(kind, dom, label, plist string) string {
		return fmt.Sprintf(`{"kind":%q,"uid":%d,"identifier":%q,"plist":%q,"root":%q,"domain":%q,"label":%q,"program":%q}`,
			kind, regUser, id, plist, root, dom, label, filepath.Join(root, "app"))
	}
	doc := `{"version":1,"registrations":[` + strings.Join([]string{
		entry(bootstrap.AppKindMain, DomainSystem, id, ""),
		entry(bootstrap.AppKindAgent, DomainSystem, id+".agent", id+".agent.plist"),
		entry("bogus", UserDomain(regUser), id+".bogus", ""),
		entry(bootstrap.AppKindAgent, UserDomain(regOther), id+".agent", id+".agent.plist"),
	}, ",") + `]}`
	if err := os.WriteFile(filepath.Join(h.paths.StateDir, registrationsFile), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	h.start()
	for _, target := range []string{DomainSystem + "/" + id, DomainSystem + "/" + id + ".agent", UserDomain(regOther) + "/" + id + ".agent"} {
		if s := h.stateOfTarget(target); s != "error: "+bootstrap.ReasonNotFound {
			t.Errorf("%s from a hostile registrations file: %q", target, s)
		}
	}
	r, err := h.admin(bootstrap.OpAppList)
	if err != nil {
		t.Fatal(err)
	}
	if arr, _ := r.Get(bootstrap.KeyRegistrations).(xpc.Array); len(arr) != 0 {
		t.Fatalf("registrations from a hostile file: %v", arr)
	}
}

// An approval id names what the administrator saw: registering the daemon
// again with another program (an unsigned bundle of the same identifier)
// gives it a new id, so that an administrator approving the id they
// listed never approves a program they were not shown.
func TestAppApprovalIDFollowsProgram(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	dir := appsDir(t, h)
	id := "org.example.regswap"
	a := daemonBundle(t, mkdirAll(t, filepath.Join(dir, "a")), id)
	b := daemonBundle(t, mkdirAll(t, filepath.Join(dir, "b")), id)
	if err := os.WriteFile(filepath.Join(b, "app"), []byte("#!/bin/sh\nexec sleep 601\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plist := id + ".daemon.plist"
	u := newAppClient(t, h, regUser, regUser)
	first := strOf(u.must(bootstrap.OpAppRegister, a, bootstrap.AppKindDaemon, plist), bootstrap.KeyApprovalID)
	// The administrator lists the approvals and sees a's program; the
	// user registers b meanwhile.
	second := strOf(u.must(bootstrap.OpAppRegister, b, bootstrap.AppKindDaemon, plist), bootstrap.KeyApprovalID)
	if second == first {
		t.Fatalf("another program kept approval id %s", first)
	}
	if _, err := h.admin(bootstrap.OpApprove, bootstrap.KeyApprovalID, first); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Fatalf("approve of the id of the program no longer registered: %v", err)
	}
	if s := h.stateOfTarget(DomainSystem + "/" + id + ".daemon"); s != bootstrap.StateUnapproved {
		t.Fatalf("the other program's daemon is %q", s)
	}
	// The same program registered again keeps its id.
	if again := strOf(u.must(bootstrap.OpAppRegister, b, bootstrap.AppKindDaemon, plist), bootstrap.KeyApprovalID); again != second {
		t.Fatalf("the same program got id %s, had %s", again, second)
	}
}

// An unsigned daemon's approval is bound to its job too, not only to its
// program: the same program registered again with another plist (here
// one that adds an environment variable; as well it could drop its
// UserName or point its arguments elsewhere) waits for a new approval.
func TestAppApprovalBoundToJob(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	dir := appsDir(t, h)
	id := "org.example.regjobswap"
	label := id + ".daemon"
	a := daemonBundle(t, mkdirAll(t, filepath.Join(dir, "a")), id)
	b := bundletest.Make(t, mkdirAll(t, filepath.Join(dir, "b")), bundletest.Spec{Identifier: id, Daemons: []bundletest.PlistSpec{{
		Label: label, Extra: map[string]any{"RunAtLoad": true, "MachServices": map[string]any{label + ".svc": true},
			"EnvironmentVariables": map[string]any{"LD_PRELOAD": "/tmp/evil.so"}},
	}}})
	plist := label + ".plist"
	u := newAppClient(t, h, regUser, regUser)
	h.mustAdmin(bootstrap.OpApprove, bootstrap.KeyApprovalID, strOf(u.must(bootstrap.OpAppRegister, a, bootstrap.AppKindDaemon, plist), bootstrap.KeyApprovalID))
	if s := u.status(a, bootstrap.AppKindDaemon, plist); s != bootstrap.AppStatusEnabled {
		t.Fatalf("approved: %q", s)
	}
	if s := strOf(u.must(bootstrap.OpAppRegister, b, bootstrap.AppKindDaemon, plist), bootstrap.KeyStatus); s != bootstrap.AppStatusRequiresApproval {
		t.Fatalf("the same program with another job kept its approval: %q", s)
	}
	waitFor(t, "the daemon to stop", func() bool { return h.stateOfTarget(DomainSystem+"/"+label) == bootstrap.StateUnapproved })
}

// A bundle path through /proc's links to xpcd's open files (its fds, its
// cwd: links the kernel lets xpcd's own threads follow whoever they act
// as) never reaches a directory the user could not reach by its path.
func TestAppRegisterThroughProcFD(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	closed := filepath.Join(appsDir(t, h), "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	root := bundletest.Make(t, closed, bundletest.Spec{Identifier: "org.example.regprocfd"})
	d, err := os.Open(root) // a directory xpcd's process has open
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	u := newAppClient(t, h, regUser, regUser)
	if _, err := u.req(bootstrap.OpAppRegister, root, bootstrap.AppKindMain, ""); err == nil {
		t.Fatal("the user registered a bundle in a directory closed to them")
	}
	for _, p := range []string{
		fmt.Sprintf("/proc/self/fd/%d", d.Fd()),
		fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), d.Fd()),
		fmt.Sprintf("/proc/thread-self/fd/%d", d.Fd()),
		fmt.Sprintf("/dev/fd/%d", d.Fd()),
	} {
		if r, err := u.req(bootstrap.OpAppRegister, p, bootstrap.AppKindMain, ""); err == nil {
			t.Errorf("registered %s, a bundle closed to the user, through %s: %v", root, p, r)
		}
	}
	if n := len(listRegs(t, u, false)); n != 0 {
		t.Fatalf("%d registrations", n)
	}
}

// The same holds for a plist a user bootstraps by path: /proc's links to
// xpcd's open files do not lead past directories closed to the user.
func TestBootstrapThroughProcFD(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	closed := filepath.Join(appsDir(t, h), "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	p := h.writePlist(h.lcJob("test.reg.procfd", nil, nil, nil, ""), closed)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p) // a file xpcd's process has open
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := newAppClient(t, h, regUser, regUser)
	for _, path := range []string{p, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), fmt.Sprintf("/dev/fd/%d", f.Fd())} {
		if r, err := u.send(bootstrap.OpBootstrap, bootstrap.KeyDomain, UserDomain(regUser), bootstrap.KeyPath, path); err == nil {
			t.Errorf("the user loaded %s, a plist closed to them, through %s: %v", p, path, r)
		}
	}
}

// heldAuthority holds each question until the test answers it.
type heldAuthority struct {
	mu   sync.Mutex
	asks []heldAsk
}

type heldAsk struct {
	program string
	answer  chan bool
}

func (a *heldAuthority) Authorize(ctx context.Context, _ int, _ uint64, _ uint32, _ string, details map[string]string) (bool, error) {
	ask := heldAsk{program: details["program"], answer: make(chan bool, 1)}
	a.mu.Lock()
	a.asks = append(a.asks, ask)
	a.mu.Unlock()
	select {
	case ok := <-ask.answer:
		return ok, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (a *heldAuthority) asked() []heldAsk {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]heldAsk(nil), a.asks...)
}

// The authority's yes approves what it was asked about, never what the
// user registered in its place while the question was open (another
// program under the same identifier, the dialog still showing the
// first).
func TestAppAuthorityYesForWhatItWasAsked(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	ha := &heldAuthority{}
	h.d.sup.authority = ha
	dir := appsDir(t, h)
	id := "org.example.regpkswap"
	a := daemonBundle(t, mkdirAll(t, filepath.Join(dir, "a")), id)
	b := daemonBundle(t, mkdirAll(t, filepath.Join(dir, "b")), id)
	if err := os.WriteFile(filepath.Join(b, "app"), []byte("#!/bin/sh\nexec sleep 602\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plist := id + ".daemon.plist"
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, a, bootstrap.AppKindDaemon, plist)
	waitFor(t, "the question about a", func() bool { return len(ha.asked()) == 1 })
	u.must(bootstrap.OpAppUnregister, a, bootstrap.AppKindDaemon, plist)
	u.must(bootstrap.OpAppRegister, b, bootstrap.AppKindDaemon, plist)
	first := ha.asked()[0]
	if first.program != filepath.Join(a, "app") {
		t.Fatalf("first question about %s", first.program)
	}
	first.answer <- true
	time.Sleep(200 * time.Millisecond) // the answer is taken on the loop
	if s := u.status(b, bootstrap.AppKindDaemon, plist); s != bootstrap.AppStatusRequiresApproval {
		t.Fatalf("b, never asked about, is %q after the yes about a", s)
	}
	if s := h.stateOfTarget(DomainSystem + "/" + id + ".daemon"); s != bootstrap.StateUnapproved {
		t.Fatalf("b's daemon is %q", s)
	}
}
