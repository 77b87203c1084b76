package xpcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/codesign"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/bundletest"
)

// Users the registry tests act as: nobody registers apps (a user with an
// account, whose agents can run); regOther, without an account, is
// another user, an administrator only when given adminGroup's gid.
const (
	regUser  = 65534
	regOther = 4343
)

// dialIDs opens a bootstrap connection whose kernel-attested uid and gid
// are uid and gid (set on a thread of its own that ends with its
// goroutine).
func dialIDs(t *testing.T, h *harness, uid, gid uint32, handler xpc.Handler) *xpc.Connection {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to connect as other uids")
	}
	type result struct {
		c   *xpc.Connection
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			ch <- result{err: fmt.Errorf("setgroups: %w", e)}
			return
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, ^uintptr(0), uintptr(gid), ^uintptr(0)); e != 0 {
			ch <- result{err: fmt.Errorf("setresgid: %w", e)}
			return
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
			ch <- result{err: fmt.Errorf("setresuid: %w", e)}
			return
		}
		c, err := xpc.DialUnix(testCtx(t), h.paths.Socket)
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if handler == nil {
		handler = xpc.HandlerFunc(func(context.Context, *xpc.Message) {})
	}
	r.c.SetHandler(handler)
	r.c.Activate()
	t.Cleanup(r.c.Cancel)
	return r.c
}

// appClient is a user's bootstrap connection for the registry's requests.
type appClient struct {
	t *testing.T
	c *xpc.Connection
}

func newAppClient(t *testing.T, h *harness, uid, gid uint32) *appClient {
	return &appClient{t: t, c: dialIDs(t, h, uid, gid, nil)}
}

func (a *appClient) req(op, root, kind, plist string) (*xpc.Dictionary, error) {
	a.t.Helper()
	msg := xpc.Dict(bootstrap.KeyOp, op, bootstrap.KeyPath, root, bootstrap.KeyAppKind, kind)
	if plist != "" {
		msg.Set(bootstrap.KeyAppPlist, xpc.String(plist))
	}
	return a.c.SendWithReply(testCtx(a.t), msg)
}

func (a *appClient) send(op string, kv ...any) (*xpc.Dictionary, error) {
	a.t.Helper()
	return a.c.SendWithReply(testCtx(a.t), xpc.Dict(append([]any{bootstrap.KeyOp, op}, kv...)...))
}

func (a *appClient) status(root, kind, plist string) string {
	a.t.Helper()
	r, err := a.req(bootstrap.OpAppStatus, root, kind, plist)
	if err != nil {
		a.t.Fatalf("status %s %s %s: %v", root, kind, plist, err)
	}
	return strOf(r, bootstrap.KeyStatus)
}

func (a *appClient) must(op, root, kind, plist string) *xpc.Dictionary {
	a.t.Helper()
	r, err := a.req(op, root, kind, plist)
	if err != nil {
		a.t.Fatalf("%s %s %s %s: %v", op, root, kind, plist, err)
	}
	return r
}

func ruleOfErr(err error) string {
	var re *xpc.RemoteError
	if errors.As(err, &re) {
		s, _ := re.Object.Get(bootstrap.KeyRule).(xpc.String)
		return string(s)
	}
	return ""
}

// appsDir is a directory for bundles, root's and readable by everyone.
func appsDir(t *testing.T, h *harness) string {
	t.Helper()
	d := filepath.Join(h.dir, "apps")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// stateOfTarget is the state print gives of DOMAIN/LABEL.
func (h *harness) stateOfTarget(target string) string {
	h.t.Helper()
	r, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, target)
	if err != nil {
		return "error: " + reasonOf(err)
	}
	return strOf(r, bootstrap.KeyState)
}

// statusWatch collects an app-watch's statuses.
type statusWatch struct {
	ch chan string
}

func (w *statusWatch) HandleMessage(_ context.Context, m *xpc.Message) {
	if s, err := m.Body.String(bootstrap.KeyStatus); err == nil {
		w.ch <- s
	}
}
func (w *statusWatch) HandleEvent(error) {}

func (w *statusWatch) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-w.ch:
		return s
	case <-testCtx(t).Done():
		t.Fatal("no status came")
	}
	return ""
}

// A user registers an app's main app: it is loaded and started in their
// domain, Status and Watch say enabled; unregister returns once it has
// stopped, Watch says not-registered, and registering again at once works.
func TestAppRegisterStatusWatchUnregister(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	root := bundletest.Make(t, appsDir(t, h), bundletest.Spec{Identifier: "org.example.regapp"})
	// A main app that takes half a second to stop: unregister must wait
	// for it.
	slow := "#!/bin/sh\ntrap 'sleep 0.5; exit 0' TERM\nwhile :; do sleep 0.05; done\n"
	if err := os.WriteFile(filepath.Join(root, "app"), []byte(slow), 0o755); err != nil {
		t.Fatal(err)
	}
	u := newAppClient(t, h, regUser, regUser)
	if s := u.status(root, bootstrap.AppKindMain, ""); s != bootstrap.AppStatusNotRegistered {
		t.Fatalf("status before register: %q", s)
	}
	if s := u.status(root+"-missing", bootstrap.AppKindMain, ""); s != bootstrap.AppStatusNotFound {
		t.Fatalf("status of a bundle that is not there: %q", s)
	}
	w := &statusWatch{ch: make(chan string, 16)}
	wc := dialIDs(t, h, regUser, regUser, w)
	if _, err := wc.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpAppWatch, bootstrap.KeyPath, root, bootstrap.KeyAppKind, bootstrap.AppKindMain)); err != nil {
		t.Fatal(err)
	}
	if s := w.next(t); s != bootstrap.AppStatusNotRegistered {
		t.Fatalf("watch's first status: %q", s)
	}
	r := u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindMain, "")
	target := UserDomain(regUser) + "/org.example.regapp"
	if strOf(r, bootstrap.KeyStatus) != bootstrap.AppStatusEnabled || strOf(r, bootstrap.KeyDomain)+"/"+strOf(r, bootstrap.KeyLabel) != target {
		t.Fatalf("register: %v", r)
	}
	if s := w.next(t); s != bootstrap.AppStatusEnabled {
		t.Fatalf("watch after register: %q", s)
	}
	waitFor(t, "the main app to run", func() bool { return h.stateOfTarget(target) == "running" })
	if s := u.status(root, bootstrap.AppKindMain, ""); s != bootstrap.AppStatusEnabled {
		t.Fatalf("status after register: %q", s)
	}
	// Registering again changes nothing and duplicates nothing.
	u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindMain, "")
	if n := len(listRegs(t, u, false)); n != 1 {
		t.Fatalf("%d registrations after registering twice", n)
	}

	u.must(bootstrap.OpAppUnregister, root, bootstrap.AppKindMain, "")
	if s := h.stateOfTarget(target); s != "error: "+bootstrap.ReasonNotFound {
		t.Fatalf("after unregister returned, the job is %q, want it gone", s)
	}
	if s := w.next(t); s != bootstrap.AppStatusNotRegistered {
		t.Fatalf("watch after unregister: %q", s)
	}
	if _, err := u.req(bootstrap.OpAppUnregister, root, bootstrap.AppKindMain, ""); reasonOf(err) != bootstrap.ReasonNotRegistered {
		t.Fatalf("unregister of what is not registered: %v", err)
	}
	u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindMain, "")
	if s := w.next(t); s != bootstrap.AppStatusEnabled {
		t.Fatalf("watch after registering again: %q", s)
	}
	waitFor(t, "the main app to run again", func() bool { return h.stateOfTarget(target) == "running" })
}

func listRegs(t *testing.T, a *appClient, stale bool) []*xpc.Dictionary {
	t.Helper()
	r, err := a.send(bootstrap.OpAppList, bootstrap.KeyStale, stale)
	if err != nil {
		t.Fatal(err)
	}
	arr, _ := r.Get(bootstrap.KeyRegistrations).(xpc.Array)
	var out []*xpc.Dictionary
	for _, o := range arr {
		out = append(out, o.(*xpc.Dictionary))
	}
	return out
}

// daemonBundle is a bundle with a daemon that starts at load and provides
// a name.
func daemonBundle(t *testing.T, dir, id string) string {
	return bundletest.Make(t, dir, bundletest.Spec{Identifier: id, Daemons: []bundletest.PlistSpec{{
		Label: id + ".daemon", Extra: map[string]any{"RunAtLoad": true, "MachServices": map[string]any{id + ".daemon.svc": true}},
	}}})
}

// adminGroup is a group that exists on every machine and that regUser is
// not in, made the only administrator group of the test's xpcd.
func adminGroup(t *testing.T) (string, uint32) {
	t.Helper()
	for _, name := range []string{"daemon", "bin", "sys", "adm"} {
		g, err := user.LookupGroup(name)
		if err != nil {
			continue
		}
		gid, _ := strconv.ParseUint(g.Gid, 10, 32)
		if gid != 0 && gid != regUser {
			return name, uint32(gid)
		}
	}
	t.Skip("skipped: none of the groups daemon, bin, sys, adm exists")
	return "", 0
}

// A daemon a user registers waits for an administrator: it is loaded, not
// started, its name refused with not-approved; another user cannot approve
// it; a member of an administrator group can, and it starts.
func TestAppDaemonApproval(t *testing.T) {
	h := newSystemHarness(t)
	gname, gid := adminGroup(t)
	h.cfg.AdminGroups = []string{gname}
	h.start()
	id := "org.example.regd"
	root := daemonBundle(t, appsDir(t, h), id)
	plist := id + ".daemon.plist"
	u := newAppClient(t, h, regUser, regUser)
	r := u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, plist)
	approval := strOf(r, bootstrap.KeyApprovalID)
	if strOf(r, bootstrap.KeyStatus) != bootstrap.AppStatusRequiresApproval || approval == "" {
		t.Fatalf("register: %v", r)
	}
	target := DomainSystem + "/" + id + ".daemon"
	// The application watches its daemon's status.
	w := &statusWatch{ch: make(chan string, 16)}
	wc := dialIDs(t, h, regUser, regUser, w)
	if _, err := wc.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpAppWatch, bootstrap.KeyPath, root,
		bootstrap.KeyAppKind, bootstrap.AppKindDaemon, bootstrap.KeyAppPlist, plist)); err != nil {
		t.Fatal(err)
	}
	if s := w.next(t); s != bootstrap.AppStatusRequiresApproval {
		t.Fatalf("watch: %q", s)
	}
	if s := h.stateOfTarget(target); s != bootstrap.StateUnapproved {
		t.Fatalf("daemon waiting for approval is %q", s)
	}
	if n := intOf(h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, target), bootstrap.KeyRuns); n != 0 {
		t.Fatalf("daemon waiting for approval was launched %d times", n)
	}
	if _, err := h.lookup(id + ".daemon.svc"); reasonOf(err) != bootstrap.ReasonNotApproved {
		t.Fatalf("lookup of an unapproved daemon's name: %v (reason %q)", err, reasonOf(err))
	}
	if why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, target), bootstrap.KeyWhy); !strings.Contains(why, "approval approve "+approval) {
		t.Fatalf("blame of an unapproved daemon: %q", why)
	}
	if _, err := h.admin(bootstrap.OpKickstart, bootstrap.KeyTarget, target); reasonOf(err) != bootstrap.ReasonNotApproved {
		t.Fatalf("kickstart of an unapproved daemon: %v", err)
	}
	if s := u.status(root, bootstrap.AppKindDaemon, plist); s != bootstrap.AppStatusRequiresApproval {
		t.Fatalf("status: %q", s)
	}
	// Neither the user who registered it nor another may approve it.
	for _, c := range []*appClient{u, newAppClient(t, h, regOther, regOther)} {
		if _, err := c.send(bootstrap.OpApprove, bootstrap.KeyApprovalID, approval); ruleOfErr(err) != bootstrap.RuleApprovalAdmin {
			t.Fatalf("approve by a user who is no administrator: %v", err)
		}
	}
	if s := h.stateOfTarget(target); s != bootstrap.StateUnapproved {
		t.Fatalf("after refused approvals the daemon is %q", s)
	}
	// A member of the administrator group sees it and approves it.
	admin := newAppClient(t, h, regOther, gid)
	l, err := admin.send(bootstrap.OpApprovalList)
	if err != nil {
		t.Fatal(err)
	}
	if arr, _ := l.Get(bootstrap.KeyApprovals).(xpc.Array); len(arr) != 1 || strOf(arr[0].(*xpc.Dictionary), bootstrap.KeyApprovalID) != approval {
		t.Fatalf("approval list: %v", l)
	}
	if _, err := admin.send(bootstrap.OpApprove, bootstrap.KeyApprovalID, approval); err != nil {
		t.Fatalf("approve by an administrator: %v", err)
	}
	if s := w.next(t); s != bootstrap.AppStatusEnabled {
		t.Fatalf("watch after approval: %q", s)
	}
	waitFor(t, "the approved daemon to run", func() bool { return h.stateOfTarget(target) == "running" })
	if s := u.status(root, bootstrap.AppKindDaemon, plist); s != bootstrap.AppStatusEnabled {
		t.Fatalf("status after approval: %q", s)
	}
}

// approval list shows an administrator what a user's daemon would run:
// its arguments, the user it runs as, its environment.
func TestApprovalListShowsWhatRuns(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	id := "org.example.regshow"
	root := bundletest.Make(t, appsDir(t, h), bundletest.Spec{Identifier: id, Daemons: []bundletest.PlistSpec{{
		Label: id + ".daemon", Extra: map[string]any{
			"ProgramArguments":     []string{"helper", "--mode", "a b"},
			"EnvironmentVariables": map[string]any{"LD_PRELOAD": "/home/u/x.so"},
		},
	}}})
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, id+".daemon.plist")
	l := h.mustAdmin(bootstrap.OpApprovalList)
	arr, _ := l.Get(bootstrap.KeyApprovals).(xpc.Array)
	if len(arr) != 1 {
		t.Fatalf("approval list: %s", xpc.Format(l))
	}
	d := arr[0].(*xpc.Dictionary)
	var args []string
	for _, a := range d.Get(bootstrap.KeyAppArguments).(xpc.Array) {
		args = append(args, string(a.(xpc.String)))
	}
	env, _ := d.Get(bootstrap.KeyAppEnvironment).(*xpc.Dictionary)
	if !slices.Equal(args, []string{"helper", "--mode", "a b"}) || env == nil || strOf(env, "LD_PRELOAD") != "/home/u/x.so" ||
		d.Get(bootstrap.KeyAppUserName) != xpc.String("") {
		t.Errorf("approval list entry: %s, want the arguments, the environment and an empty user name (root)", xpc.Format(d))
	}
}

// A daemon whose program others could change is refused at register,
// before anything is loaded or recorded.
func TestAppDaemonProgramOwner(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	id := "org.example.regunsafe"
	root := daemonBundle(t, appsDir(t, h), id)
	if err := os.Chmod(filepath.Join(root, "app"), 0o777); err != nil {
		t.Fatal(err)
	}
	u := newAppClient(t, h, regUser, regUser)
	_, err := u.req(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, id+".daemon.plist")
	if ruleOfErr(err) != bootstrap.RuleProgramOwner {
		t.Fatalf("register of a daemon anyone could change: %v", err)
	}
	if n := len(listRegs(t, u, false)); n != 0 {
		t.Fatalf("%d registrations after a refused register", n)
	}
	if s := h.stateOfTarget(DomainSystem + "/" + id + ".daemon"); s != "error: "+bootstrap.ReasonNotFound {
		t.Fatalf("refused daemon's job: %q", s)
	}
}

// fakeAuthority answers Authorize with yes.
type fakeAuthority struct {
	yes  bool
	mu   sync.Mutex
	asks []map[string]string
	pids []int
}

func (f *fakeAuthority) Authorize(_ context.Context, pid int, _ uint64, uid uint32, action string, details map[string]string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := map[string]string{"action": action, "uid": strconv.Itoa(int(uid))}
	for k, v := range details {
		d[k] = v
	}
	f.asks = append(f.asks, d)
	f.pids = append(f.pids, pid)
	return f.yes, nil
}

// With an approval authority configured, it is asked when a user
// registers a daemon: yes approves it at once, no leaves it waiting.
func TestAppDaemonAuthority(t *testing.T) {
	for _, yes := range []bool{true, false} {
		t.Run(fmt.Sprint(yes), func(t *testing.T) {
			h := newSystemHarness(t)
			h.start()
			fa := &fakeAuthority{yes: yes}
			h.d.sup.authority = fa // before any request reaches the loop
			id := "org.example.regpk"
			root := daemonBundle(t, appsDir(t, h), id)
			plist := id + ".daemon.plist"
			u := newAppClient(t, h, regUser, regUser)
			u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, plist)
			waitFor(t, "the authority to be asked", func() bool {
				fa.mu.Lock()
				defer fa.mu.Unlock()
				return len(fa.asks) == 1
			})
			fa.mu.Lock()
			ask, pid := fa.asks[0], fa.pids[0]
			fa.mu.Unlock()
			if pid != os.Getpid() {
				t.Fatalf("asked about pid %d, want the registering process, %d", pid, os.Getpid())
			}
			if ask["action"] != approvalAction || ask["identifier"] != id || ask["uid"] != strconv.Itoa(regUser) || ask["program"] != filepath.Join(root, "app") {
				t.Fatalf("asked %v", ask)
			}
			want := bootstrap.AppStatusRequiresApproval
			if yes {
				want = bootstrap.AppStatusEnabled
			}
			waitFor(t, "status "+want, func() bool { return u.status(root, bootstrap.AppKindDaemon, plist) == want })
			target := DomainSystem + "/" + id + ".daemon"
			if yes {
				waitFor(t, "the daemon to run", func() bool { return h.stateOfTarget(target) == "running" })
			} else if s := h.stateOfTarget(target); s != bootstrap.StateUnapproved {
				t.Fatalf("daemon the authority said no to: %q", s)
			}
		})
	}
}

// The registry is kept by identity: the bundle moved and registered from
// its new place updates the registration and its job, never duplicates
// it; bundleSeen makes it follow a move by itself; deleted, it is stale
// (not-found), and repair removes it and its job.
func TestAppBundleMovedAndDeleted(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	dir := appsDir(t, h)
	id := "org.example.regmove"
	agent := id + ".agent"
	// (Not running: a running one takes a new definition once it is
	// clean, which a program that does not check in never is.)
	a := bundletest.Make(t, dir, bundletest.Spec{Identifier: id, Agents: []bundletest.PlistSpec{{Label: agent}}})
	plist := agent + ".plist"
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, a, bootstrap.AppKindAgent, plist)
	target := UserDomain(regUser) + "/" + agent
	if s := h.stateOfTarget(target); s != "waiting" {
		t.Fatalf("the agent is %q", s)
	}

	b := filepath.Join(dir, "Moved.app")
	if err := os.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	u.must(bootstrap.OpAppRegister, b, bootstrap.AppKindAgent, plist)
	regs := listRegs(t, u, false)
	if len(regs) != 1 || strOf(regs[0], bootstrap.KeyAppBundle) != b || strOf(regs[0], bootstrap.KeyAppProgram) != filepath.Join(b, "app") {
		t.Fatalf("after the move: %v", regs)
	}
	jobs := h.mustAdmin(bootstrap.OpList, bootstrap.KeyDomain, UserDomain(regUser))
	if arr, _ := jobs.Get(bootstrap.KeyJobs).(xpc.Array); len(arr) != 1 {
		t.Fatalf("jobs after the move: %v", jobs)
	}
	waitFor(t, "the agent's job to take the new program", func() bool {
		r, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, target)
		return err == nil && strOf(r, "program") == filepath.Join(b, "app")
	})

	// Moved again, and seen running from there (the pid domain's hook).
	c := filepath.Join(dir, "Again.app")
	if err := os.Rename(b, c); err != nil {
		t.Fatal(err)
	}
	var ident = regs[0]
	if err := h.d.sup.call(testCtx(t), func() {
		h.d.sup.bundleSeen(bundleIdentity(strOf(ident, bootstrap.KeyAppIdentifier)), c, regUser)
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the registration to follow the bundle", func() bool {
		regs := listRegs(t, u, false)
		return len(regs) == 1 && strOf(regs[0], bootstrap.KeyAppBundle) == c
	})

	if err := os.RemoveAll(c); err != nil {
		t.Fatal(err)
	}
	if s := u.status(c, bootstrap.AppKindAgent, plist); s != bootstrap.AppStatusNotFound {
		t.Fatalf("status of a deleted bundle: %q", s)
	}
	stale := listRegs(t, u, true)
	if len(stale) != 1 || !boolOf(stale[0], bootstrap.KeyStale) {
		t.Fatalf("stale registrations: %v", stale)
	}
	r, err := u.send(bootstrap.OpAppRepair)
	if err != nil {
		t.Fatal(err)
	}
	if arr, _ := r.Get(bootstrap.KeyRemoved).(xpc.Array); len(arr) != 1 {
		t.Fatalf("repair: %v", r)
	}
	if n := len(listRegs(t, u, false)); n != 0 {
		t.Fatalf("%d registrations after repair", n)
	}
	waitFor(t, "the stale registration's job to go", func() bool { return h.stateOfTarget(target) == "error: "+bootstrap.ReasonNotFound })
}

// Registrations, approvals and their gates survive a restart of xpcd.
func TestAppRegistryPersists(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	dir := appsDir(t, h)
	app := bundletest.Make(t, dir, bundletest.Spec{Identifier: "org.example.regkeep"})
	id := "org.example.regkeepd"
	droot := daemonBundle(t, dir, id)
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, app, bootstrap.AppKindMain, "")
	u.must(bootstrap.OpAppRegister, droot, bootstrap.AppKindDaemon, id+".daemon.plist")
	u.c.Cancel()
	h.close(h.d)
	h.start()
	u = newAppClient(t, h, regUser, regUser)
	if s := u.status(app, bootstrap.AppKindMain, ""); s != bootstrap.AppStatusEnabled {
		t.Fatalf("main app after restart: %q", s)
	}
	if s := u.status(droot, bootstrap.AppKindDaemon, id+".daemon.plist"); s != bootstrap.AppStatusRequiresApproval {
		t.Fatalf("daemon after restart: %q", s)
	}
	if s := h.stateOfTarget(DomainSystem + "/" + id + ".daemon"); s != bootstrap.StateUnapproved {
		t.Fatalf("unapproved daemon after restart: %q", s)
	}
	// The user's domain is made on first use, with the main app in it.
	waitFor(t, "the main app to run after restart", func() bool {
		return h.stateOfTarget(UserDomain(regUser)+"/org.example.regkeep") == "running"
	})
}

// A registration whose write fails is answered io-error saying it is in
// effect but not saved; it is not lost: the registry is written again as
// xpcd stops, and the next xpcd has it.
func TestAppRegistryWriteFailureKeepsTheChange(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	app := bundletest.Make(t, appsDir(t, h), bundletest.Spec{Identifier: "org.example.regfail"})
	// A directory where the file goes: the rename over it fails, even
	// for root.
	path := filepath.Join(h.paths.StateDir, registrationsFile)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	u := newAppClient(t, h, regUser, regUser)
	_, err := u.req(bootstrap.OpAppRegister, app, bootstrap.AppKindMain, "")
	if reasonOf(err) != bootstrap.ReasonIO || !strings.Contains(err.Error(), "not saved") || !strings.Contains(err.Error(), "in effect") {
		t.Fatalf("register with the registry unwritable: %v, want io-error saying it is in effect but not saved", err)
	}
	if s := u.status(app, bootstrap.AppKindMain, ""); s != bootstrap.AppStatusEnabled {
		t.Fatalf("status after the failed write: %q, want %q", s, bootstrap.AppStatusEnabled)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	u.c.Cancel()
	h.close(h.d)
	h.start()
	u = newAppClient(t, h, regUser, regUser)
	if s := u.status(app, bootstrap.AppKindMain, ""); s != bootstrap.AppStatusEnabled {
		t.Fatalf("status after restart: %q, want %q (the registration was lost)", s, bootstrap.AppStatusEnabled)
	}
}

func bundleIdentity(identifier string) bundle.Identity {
	return bundle.Identity{Identifier: identifier}
}

// signBundle signs the main executable of the bundle at root (its file
// "app") as identifier, team, with a key it makes and trusts in trustDir.
func signBundle(t *testing.T, trustDir, root, identifier, team string) {
	t.Helper()
	keys := t.TempDir()
	if _, err := codesign.WriteKeyPair(filepath.Join(keys, "test")); err != nil {
		t.Fatal(err)
	}
	key, err := codesign.ReadPrivateKey(filepath.Join(keys, "test.key"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(keys, "test.pub"))
	if err == nil {
		err = os.MkdirAll(trustDir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(trustDir, "test.pub"), pub, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(root, "app")
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sig, err := codesign.Sign(f, key, codesign.Identity{Identifier: identifier, Team: team})
	if err == nil {
		err = codesign.WriteBeside(exe, sig)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// An unsigned bundle cannot take over the registration of a signed bundle
// with the same identifier; the signed one, moved, still can.
func TestAppUnsignedCannotTakeOverSigned(t *testing.T) {
	h := newSystemHarness(t)
	dir := appsDir(t, h)
	id := "org.example.regsigned"
	signed := bundletest.Make(t, dir, bundletest.Spec{Identifier: id, Name: "Signed.app"})
	signBundle(t, filepath.Join(h.dir, "trust.d"), signed, id, "ABCDE12345")
	unsigned := bundletest.Make(t, dir, bundletest.Spec{Identifier: id, Name: "Impostor.app"})
	h.start()
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, signed, bootstrap.AppKindMain, "")
	regs := listRegs(t, u, false)
	if len(regs) != 1 || !boolOf(regs[0], bootstrap.KeyAppSigned) || strOf(regs[0], bootstrap.KeyAppTeam) != "ABCDE12345" {
		t.Fatalf("signed registration: %v", regs)
	}
	_, err := u.req(bootstrap.OpAppRegister, unsigned, bootstrap.AppKindMain, "")
	if ruleOfErr(err) != bootstrap.RuleAppIdentity {
		t.Fatalf("unsigned bundle registering over a signed one: %v", err)
	}
	regs = listRegs(t, u, false)
	if len(regs) != 1 || strOf(regs[0], bootstrap.KeyAppBundle) != signed {
		t.Fatalf("after the refused takeover: %v", regs)
	}
	// The signed bundle, moved, still updates its registration.
	moved := filepath.Join(dir, "SignedMoved.app")
	if err := os.Rename(signed, moved); err != nil {
		t.Fatal(err)
	}
	u.must(bootstrap.OpAppRegister, moved, bootstrap.AppKindMain, "")
	if regs = listRegs(t, u, false); len(regs) != 1 || strOf(regs[0], bootstrap.KeyAppBundle) != moved {
		t.Fatalf("after the signed bundle moved: %v", regs)
	}
}

// Bad requests get a typed answer and change nothing.
func TestAppBadRequests(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	root := bundletest.Make(t, appsDir(t, h), bundletest.Spec{Identifier: "org.example.regbad",
		Agents: []bundletest.PlistSpec{{Label: "org.example.regbad.agent"}}})
	u := newAppClient(t, h, regUser, regUser)
	long := "/" + strings.Repeat("a", maxBundlePath)
	for _, tc := range []struct {
		name string
		kv   []any
		want string
	}{
		{"no path", []any{bootstrap.KeyAppKind, bootstrap.AppKindMain}, bootstrap.ReasonBadRequest},
		{"relative path", []any{bootstrap.KeyPath, "Example.app"}, bootstrap.ReasonBadRequest},
		{"path not a string", []any{bootstrap.KeyPath, int64(7)}, bootstrap.ReasonBadRequest},
		{"long path", []any{bootstrap.KeyPath, long}, bootstrap.ReasonBadRequest},
		{"unknown kind", []any{bootstrap.KeyPath, root, bootstrap.KeyAppKind, "plugin"}, bootstrap.ReasonBadRequest},
		{"agent without plist", []any{bootstrap.KeyPath, root, bootstrap.KeyAppKind, bootstrap.AppKindAgent}, bootstrap.ReasonBadRequest},
		{"plist with a slash", []any{bootstrap.KeyPath, root, bootstrap.KeyAppKind, bootstrap.AppKindAgent, bootstrap.KeyAppPlist, "../../etc/x.plist"}, bootstrap.ReasonBadRequest},
		{"plist dot-dot", []any{bootstrap.KeyPath, root, bootstrap.KeyAppKind, bootstrap.AppKindAgent, bootstrap.KeyAppPlist, ".."}, bootstrap.ReasonBadRequest},
		{"plist not in the bundle", []any{bootstrap.KeyPath, root, bootstrap.KeyAppKind, bootstrap.AppKindAgent, bootstrap.KeyAppPlist, "none.plist"}, bootstrap.ReasonNotFound},
		{"not a bundle", []any{bootstrap.KeyPath, h.dir}, bootstrap.ReasonNotFound},
		{"a file", []any{bootstrap.KeyPath, filepath.Join(root, "Info.plist")}, bootstrap.ReasonNotFound},
	} {
		for _, op := range []string{bootstrap.OpAppRegister, bootstrap.OpAppUnregister, bootstrap.OpAppStatus} {
			_, err := u.send(op, tc.kv...)
			want := tc.want
			if want == bootstrap.ReasonNotFound && op == bootstrap.OpAppUnregister {
				want = bootstrap.ReasonNotRegistered
			}
			if want == bootstrap.ReasonNotFound && op == bootstrap.OpAppStatus {
				want = "" // a status, not-found
			}
			if reasonOf(err) != want {
				t.Errorf("%s, %s: %v (reason %q), want reason %q", tc.name, op, err, reasonOf(err), want)
			}
		}
	}
	for _, op := range []string{bootstrap.OpApprove, bootstrap.OpDeny} {
		if _, err := h.admin(op); reasonOf(err) != bootstrap.ReasonBadRequest {
			t.Errorf("%s without an id: %v", op, err)
		}
		if _, err := h.admin(op, bootstrap.KeyApprovalID, "nope"); reasonOf(err) != bootstrap.ReasonNotFound {
			t.Errorf("%s of an id nobody has: %v", op, err)
		}
	}
	if n := len(listRegs(t, u, false)); n != 0 {
		t.Fatalf("%d registrations after bad requests", n)
	}
}

// blockingAuthority never answers until its question is given up.
type blockingAuthority struct{ asked chan struct{} }

func (b blockingAuthority) Authorize(ctx context.Context, _ int, _ uint64, _ uint32, _ string, _ map[string]string) (bool, error) {
	close(b.asked)
	<-ctx.Done()
	return false, ctx.Err()
}

// An authority that does not answer leaves the daemon waiting and does
// not hold xpcd up when it stops.
func TestAppAuthorityNoAnswer(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	ba := blockingAuthority{asked: make(chan struct{})}
	h.d.sup.authority = ba
	id := "org.example.regpkwait"
	root := daemonBundle(t, appsDir(t, h), id)
	u := newAppClient(t, h, regUser, regUser)
	if r := u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, id+".daemon.plist"); strOf(r, bootstrap.KeyStatus) != bootstrap.AppStatusRequiresApproval {
		t.Fatalf("register: %v", r)
	}
	<-ba.asked
	start := time.Now()
	h.close(h.d)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("close took %v with a question to the authority open", d)
	}
}

// A corrupt registrations file is moved aside, and xpcd starts without
// registrations.
func TestAppRegistryCorrupt(t *testing.T) {
	h := newSystemHarness(t)
	if err := os.MkdirAll(h.paths.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(h.paths.StateDir, registrationsFile)
	if err := os.WriteFile(path, []byte(`{"version":1,"registrations":[{"kind":`), 0o600); err != nil {
		t.Fatal(err)
	}
	h.start()
	if _, err := os.Stat(path + ".corrupt"); err != nil {
		t.Fatalf("the corrupt file was not moved aside: %v", err)
	}
	u := newAppClient(t, h, regUser, regUser)
	if n := len(listRegs(t, u, false)); n != 0 {
		t.Fatalf("%d registrations from a corrupt file", n)
	}
}

// A registrations file of a newer xpcd is read, not written: changes
// are refused with read-only-state.
func TestAppRegistryNewer(t *testing.T) {
	h := newSystemHarness(t)
	if err := os.MkdirAll(h.paths.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(h.paths.StateDir, registrationsFile)
	doc := []byte(`{"version":99,"registrations":[]}`)
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	h.start()
	root := bundletest.Make(t, appsDir(t, h), bundletest.Spec{Identifier: "org.example.regnewer"})
	u := newAppClient(t, h, regUser, regUser)
	if _, err := u.req(bootstrap.OpAppRegister, root, bootstrap.AppKindMain, ""); reasonOf(err) != bootstrap.ReasonReadOnlyState {
		t.Fatalf("register with a newer xpcd's file: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != string(doc) {
		t.Fatalf("the newer file was changed: %q %v", b, err)
	}
}

// A daemon waiting for approval does not keep its names from a daemon
// root loads later: that one gets them; another waiting daemon does not.
func TestAppUnapprovedYieldsNames(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	dir := appsDir(t, h)
	id := "org.example.regsquat"
	name := id + ".daemon.svc"
	root := daemonBundle(t, dir, id)
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, id+".daemon.plist")
	// Another user's daemon with the same name, waiting too: refused.
	other := bundletest.Make(t, dir, bundletest.Spec{Identifier: "org.example.regsquat2", Daemons: []bundletest.PlistSpec{{
		Label: "org.example.regsquat2.daemon", Extra: map[string]any{"MachServices": map[string]any{name: true}},
	}}})
	o := newAppClient(t, h, regOther, regOther)
	if _, err := o.req(bootstrap.OpAppRegister, other, bootstrap.AppKindDaemon, "org.example.regsquat2.daemon.plist"); reasonOf(err) != bootstrap.ReasonNameTaken {
		t.Fatalf("a second waiting daemon with the name: %v", err)
	}
	// Root's own daemon with the name loads, and has it.
	plist := h.writePlist(h.lcJob("test.reg.owner", []string{name}, nil, nil, ""), dir)
	if s := strOf(h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyDomain, DomainSystem, bootstrap.KeyPath, plist), bootstrap.KeyStatus); s != "loaded" {
		t.Fatalf("root's daemon with the name: %q", s)
	}
	if pid := h.lookupPing(name); pid <= 0 {
		t.Fatalf("lookup of the name: pid %d", pid)
	}
	if n := intOf(h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, DomainSystem+"/"+id+".daemon"), bootstrap.KeyRuns); n != 0 {
		t.Fatalf("the waiting daemon ran %d times", n)
	}
}

// A registered agent whose program is replaced in its bundle is upgraded
// as any job is: stopped once clean and, kept alive, started again at once
// on the new file.
func TestAppRegisteredAgentUpgradedOnNewExecutable(t *testing.T) {
	h := newSystemHarness(t)
	h.cfg.UpgradeInterval = 50 * time.Millisecond
	h.start()
	dir := appsDir(t, h)
	const id = "org.test.regup"
	agent := id + ".agent"
	env := map[string]any{}
	for k, v := range appEnv(agent) {
		env[k] = v
	}
	a := bundletest.Make(t, dir, bundletest.Spec{Identifier: id, Exe: h.exe, Agents: []bundletest.PlistSpec{{Label: agent,
		Extra: map[string]any{"KeepAlive": true, "MachServices": map[string]any{agent: true}, "EnvironmentVariables": env}}}})
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, a, bootstrap.AppKindAgent, agent+".plist")
	target := UserDomain(regUser) + "/" + agent
	var pid1 int
	waitFor(t, "the agent to run", func() bool {
		r, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, target)
		if err != nil || strOf(r, "state") != "running" {
			return false
		}
		pid1 = intOf(r, "pid")
		return pid1 > 0
	})
	prog := filepath.Join(a, "app")
	copyFile(t, h.exe, prog+".new")
	if err := os.Rename(prog+".new", prog); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the agent to run its new program", func() bool {
		r, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, target)
		return err == nil && strOf(r, "state") == "running" && intOf(r, "pid") > 0 && intOf(r, "pid") != pid1
	})
	if r, _ := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, target); strOf(r, bootstrap.KeyLaunchReason) != reasonUpgrade {
		t.Errorf("the agent was launched again for %q, want %q", strOf(r, bootstrap.KeyLaunchReason), reasonUpgrade)
	}
}
