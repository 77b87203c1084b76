package xpcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/wire"
)

// A root xpcd must not be a local user's way to root's files: what a job
// or a request names is opened with the user's rights, credentials are
// limited to the user's own, programs and plists must be changeable only
// by their trusted owners, and a denied request leaves nothing behind.
// Each test runs a root xpcd (system layout, socket 0666) and a user made
// for the test; they skip where they cannot be root.

// startRootWithUser makes a user for the test and starts a root xpcd
// (system layout) that user may reach; the test runs in parallel.
func startRootWithUser(t *testing.T) (testUser, *isoInstance, *harness) {
	t.Helper()
	b := newTestUser(t)
	t.Parallel()
	in := newIsoInstance(t)
	in.h.start()
	return b, in, in.h
}

// rootFile writes a file owned by root with the given mode.
func rootFile(t *testing.T, path string, mode os.FileMode, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// mkdirMode makes a directory with exactly mode, owned by uid.
func mkdirMode(t *testing.T, path string, mode os.FileMode, uid, gid uint32) string {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	// syscall's: os.Chmod takes the sticky bit as os.ModeSticky only.
	if err := syscall.Chmod(path, uint32(mode)); err != nil {
		t.Fatal(err)
	}
	return path
}

func uidOf(t *testing.T, path string) uint32 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}

// loadAs bootstraps a job (root's plist, in root's directory) into dom
// and returns its target.
func (in *isoInstance) load(t *testing.T, dom, label string, names []string, extra map[string]any) string {
	t.Helper()
	h := in.h
	dir := filepath.Join(h.dir, "plists")
	os.MkdirAll(dir, 0o755)
	p := h.writePlist(h.lcJob(label, names, nil, extra, in.exe), dir)
	h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyDomain, dom, bootstrap.KeyPath, p)
	return dom + "/" + label
}

// logLines counts the lines of the daemon's log with msg and the target.
func logLines(h *harness, msg, target string) int {
	n := 0
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(line, " msg="+msg+" ") && strings.Contains(line, " target="+target+" ") {
			n++
		}
	}
	return n
}

func launches(h *harness, target string) int { return logLines(h, "launching", target) }

// Standard input, output and error are opened as the job's user: a job in
// a user's domain cannot write root's file (which used to be opened as
// root and handed to the user) nor read a root-only one, and the files it
// may create are the user's without any chown.
func TestRootOpensStdioAsJobUser(t *testing.T) {
	b, in, h := startRootWithUser(t)
	files := mkdirMode(t, filepath.Join(h.dir, "files"), 0o755, 0, 0)
	victim := filepath.Join(files, "victim")
	rootFile(t, victim, 0o644, "root's\n")
	secret := filepath.Join(files, "secret")
	rootFile(t, secret, 0o600, "root's secret\n")
	bdir := mkdirMode(t, filepath.Join(h.dir, "bdir"), 0o755, b.uid, b.gid)
	dom := UserDomain(b.uid)

	for _, c := range []struct {
		label, key, path string
	}{
		{"test.stdio.out", "StandardOutPath", victim},
		{"test.stdio.err", "StandardErrorPath", victim},
		{"test.stdio.in", "StandardInPath", secret},
	} {
		target := in.load(t, dom, c.label, nil, map[string]any{c.key: c.path})
		_, err := h.admin(bootstrap.OpKickstart, bootstrap.KeyTarget, target)
		if reasonOf(err) != bootstrap.ReasonLaunchFailed || !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s naming root's %s: %v, want launch-failed, permission denied", c.key, c.path, err)
		}
	}
	if u := uidOf(t, victim); u != 0 {
		t.Errorf("root's file now belongs to uid %d", u)
	}
	if b, _ := os.ReadFile(victim); string(b) != "root's\n" {
		t.Errorf("root's file now holds %q", b)
	}

	// Where the user may write, the file is made as theirs.
	out := filepath.Join(bdir, "out.log")
	target := in.load(t, dom, "test.stdio.ok", nil, map[string]any{"StandardOutPath": out, "StandardErrorPath": out})
	h.mustAdmin(bootstrap.OpKickstart, bootstrap.KeyTarget, target)
	if u := uidOf(t, out); u != b.uid {
		t.Errorf("%s belongs to uid %d, want the job's user %d", out, u, b.uid)
	}
}

// WatchPaths, QueueDirectories and PathState are looked at as the job's
// user: a root-only directory with work in it starts a system job (root's)
// but not the same job in a user's domain, whose user cannot list it. And
// a user domain may have only so many jobs watching paths.
func TestRootWatchesAsJobUser(t *testing.T) {
	b := newTestUser(t)
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.cfg.MaxWatchesPerUser = 2
	h.start()
	private := mkdirMode(t, filepath.Join(h.dir, "private"), 0o700, 0, 0)
	rootFile(t, filepath.Join(private, "work"), 0o600, "x")
	extra := map[string]any{
		"QueueDirectories": []any{private},
		"KeepAlive":        map[string]any{"PathState": map[string]any{filepath.Join(private, "work"): true}},
	}
	sys := in.load(t, DomainSystem, "test.watch.sys", nil, extra)
	dom := UserDomain(b.uid)
	user := in.load(t, dom, "test.watch.user", nil, extra)
	// root's job sees the work and starts; by then the user's has looked.
	waitFor(t, "the system job to start for its queue", func() bool { return launches(h, sys) > 0 })
	waitFor(t, "the user's queue check", func() bool {
		return logLines(h, `"queue directory"`, user) > 0
	})
	time.Sleep(200 * time.Millisecond)
	if n := launches(h, user); n != 0 {
		t.Errorf("the user's job was started %d times for a directory its user cannot list", n)
	}

	// Two jobs of the domain watch; the third is refused by the rule.
	in.load(t, dom, "test.watch.w1", nil, map[string]any{"WatchPaths": []any{h.dir}})
	third := in.load(t, dom, "test.watch.w2", nil, map[string]any{"WatchPaths": []any{h.dir}})
	why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, third), bootstrap.KeyWhy)
	if !strings.Contains(why, bootstrap.RuleWatchLimit) {
		t.Errorf("blame of the third watching job: %q, want the rule %s", why, bootstrap.RuleWatchLimit)
	}
	// Booting one out makes room.
	h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, user, bootstrap.KeyWait, true)
	fourth := in.load(t, dom, "test.watch.w3", nil, map[string]any{"WatchPaths": []any{h.dir}})
	if why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, fourth), bootstrap.KeyWhy); strings.Contains(why, bootstrap.RuleWatchLimit) {
		t.Errorf("after a bootout: %q", why)
	}
}

// In a user domain, a job runs with its user's own groups only and as its
// user only. A job refused for that is not launched again (its throttle
// would otherwise retry it forever); print, blame and lookups name the
// rule; a GroupName the user belongs to is fine.
func TestUserDomainCredentialsRefused(t *testing.T) {
	b, in, h := startRootWithUser(t)
	dom := UserDomain(b.uid)
	grp := in.load(t, dom, "test.cred.group", []string{"test.cred.group.svc"},
		map[string]any{"GroupName": "root", "RunAtLoad": true, "ThrottleInterval": 1})
	usr := in.load(t, dom, "test.cred.user", nil, map[string]any{"UserName": "root", "RunAtLoad": true, "ThrottleInterval": 1})
	for target, rule := range map[string]string{grp: bootstrap.RuleDomainGroups, usr: bootstrap.RuleDomainUser} {
		waitFor(t, target+" refused", func() bool {
			return strOf(h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, target), "state") == "refused"
		})
		d := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, target)
		if strOf(d, bootstrap.KeyRule) != rule || intOf(d, "runs") != 0 {
			t.Errorf("%s: %s, want rule %s and no run", target, xpc.Format(d), rule)
		}
		if why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, target), bootstrap.KeyWhy); !strings.Contains(why, rule) {
			t.Errorf("blame %s: %q", target, why)
		}
	}
	time.Sleep(2500 * time.Millisecond) // past two throttle intervals
	for _, target := range []string{grp, usr} {
		if n := launches(h, target); n != 1 {
			t.Errorf("%s was launched %d times, want once", target, n)
		}
	}
	_, err := h.lookup("test.cred.group.svc", bootstrap.KeyDomain, dom)
	var re *xpc.RemoteError
	if !errors.As(err, &re) || reasonOf(err) != bootstrap.ReasonDenied {
		t.Fatalf("lookup of a refused job: %v", err)
	}
	if r, _ := re.Object.String(bootstrap.KeyRule); r != bootstrap.RuleDomainGroups {
		t.Errorf("lookup refusal names rule %q", r)
	}

	// The user's own group is theirs to name.
	own := in.load(t, dom, "test.cred.own", nil, map[string]any{"GroupName": b.name})
	h.mustAdmin(bootstrap.OpKickstart, bootstrap.KeyTarget, own)
}

// A request the caller may not make is refused before anything is done
// for it: no user domain is made, so its RunAtLoad agents do not start and
// xpcd does not grow.
func TestDeniedRequestCreatesNothing(t *testing.T) {
	b := newTestUser(t)
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.writePlist(h.lcJob("test.deny.agent", nil, nil, map[string]any{"RunAtLoad": true}, in.exe), h.paths.Agents)
	h.start()
	admin := func(id string, req map[string]any) isoStep { return isoStep{ID: id, Op: "admin", Req: req} }
	var steps []isoStep
	for i := range 40 {
		dom := UserDomain(uint32(60000 + i))
		steps = append(steps,
			admin(fmt.Sprintf("print-%d", i), map[string]any{bootstrap.KeyOp: bootstrap.OpPrint, bootstrap.KeyTarget: dom}),
			admin(fmt.Sprintf("print-job-%d", i), map[string]any{bootstrap.KeyOp: bootstrap.OpPrint, bootstrap.KeyTarget: dom + "/test.deny.agent"}),
			admin(fmt.Sprintf("blame-%d", i), map[string]any{bootstrap.KeyOp: bootstrap.OpBlame, bootstrap.KeyTarget: dom + "/test.deny.agent"}),
			admin(fmt.Sprintf("disabled-%d", i), map[string]any{bootstrap.KeyOp: bootstrap.OpPrintDisabled, bootstrap.KeyDomain: dom}),
			admin(fmt.Sprintf("watch-%d", i), map[string]any{bootstrap.KeyOp: bootstrap.OpWatch, bootstrap.KeyTarget: dom}),
			admin(fmt.Sprintf("kickstart-%d", i), map[string]any{bootstrap.KeyOp: bootstrap.OpKickstart, bootstrap.KeyTarget: dom + "/test.deny.agent"}),
		)
	}
	steps = append(steps, isoStep{ID: "lookup", Op: "lookup", Name: "test.nothing", Domain: "user/0"})
	res := isoClient(t, in.exe, b.uid, b.gid, h.dir, steps)
	for id, r := range res {
		if r.OK || r.Reason != bootstrap.ReasonDenied {
			t.Errorf("%s: %+v, want denied", id, r)
		}
	}
	var doms []string
	if err := h.d.sup.call(testCtx(t), func() {
		for name := range h.d.sup.domains {
			doms = append(doms, name)
		}
	}); err != nil {
		t.Fatal(err)
	}
	for _, d := range doms {
		if strings.HasPrefix(d, "user/6") {
			t.Errorf("a denied request made domain %s (domains: %v)", d, doms)
		}
	}
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(line, "msg=launching") && strings.Contains(line, "target=user/6") {
			t.Errorf("a denied request started a job: %s", line)
		}
	}
}

// bootstrap reads the plist with the requester's rights: a user naming a
// root-only plist learns no more than opening it would tell them, and the
// plist does not load. A plist sent as a descriptor is read from it (and
// checked by what the descriptor's file is).
func TestBootstrapReadsPlistAsRequester(t *testing.T) {
	b, in, h := startRootWithUser(t)
	private := mkdirMode(t, filepath.Join(h.dir, "private"), 0o700, 0, 0)
	secret := h.writePlist(h.lcJob("test.boot.secret", nil, map[string]string{"SECRET": "root's"}, nil, in.exe), private)
	missing := filepath.Join(private, "missing.plist")
	dom := UserDomain(b.uid)
	req := func(path string) map[string]any {
		return map[string]any{bootstrap.KeyOp: bootstrap.OpBootstrap, bootstrap.KeyDomain: dom, bootstrap.KeyPath: path}
	}
	res := isoClient(t, in.exe, b.uid, b.gid, h.dir, []isoStep{
		{ID: "secret", Op: "admin", Req: req(secret)},
		{ID: "missing", Op: "admin", Req: req(missing)},
	})
	for id, r := range res {
		if r.OK || r.Reason != bootstrap.ReasonBadPlist || !strings.Contains(r.Error, "permission denied") {
			t.Errorf("%s: %+v, want bad-plist, permission denied", id, r)
		}
	}
	strip := func(s string) string { return strings.NewReplacer(secret, "P", missing, "P").Replace(s) }
	if strip(res["secret"].Error) != strip(res["missing"].Error) {
		t.Errorf("an existing root-only plist and a missing one answer differently:\n%s\n%s", res["secret"].Error, res["missing"].Error)
	}
	if _, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, dom+"/test.boot.secret"); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("the root-only plist loaded: %v", err)
	}

	// By descriptor: the path only names it.
	f, err := os.Open(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyDomain, dom, bootstrap.KeyPath, "/nowhere/secret.plist", bootstrap.KeyPlist, xpc.NewFD(f))
	if strOf(r, bootstrap.KeyStatus) != "loaded" {
		t.Fatalf("bootstrap by descriptor: %s", xpc.Format(r))
	}
	// The ownership rule applies to the descriptor's file.
	lax := filepath.Join(h.dir, "lax.plist")
	rootFile(t, lax, 0o666, string(h.plist(h.lcJob("test.boot.lax", nil, nil, nil, in.exe))))
	g, err := os.Open(lax)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	_, err = h.admin(bootstrap.OpBootstrap, bootstrap.KeyDomain, dom, bootstrap.KeyPath, lax, bootstrap.KeyPlist, xpc.NewFD(g))
	if reasonOf(err) != bootstrap.ReasonBadPlist || !strings.Contains(err.Error(), bootstrap.RulePlistOwner) {
		t.Errorf("a world-writable plist by descriptor: %v", err)
	}
}

// A program anyone else could change is not run as root, nor is one in a
// directory others may write; a sticky directory (like /tmp) is fine when
// the program in it is root's; a user's own program runs in their domain
// but not as a system daemon.
func TestProgramOwnership(t *testing.T) {
	b, in, h := startRootWithUser(t)
	copyTo := func(dir string, mode os.FileMode, uid uint32) string {
		p := filepath.Join(dir, "prog")
		copyFile(t, in.exe, p)
		os.Chown(p, int(uid), -1)
		os.Chmod(p, mode)
		return p
	}
	open := copyTo(mkdirMode(t, filepath.Join(h.dir, "open"), 0o777, 0, 0), 0o755, 0)
	groupW := copyTo(mkdirMode(t, filepath.Join(h.dir, "groupw"), 0o755, 0, 0), 0o775, 0)
	sticky := copyTo(mkdirMode(t, filepath.Join(h.dir, "sticky"), 0o1777, 0, 0), 0o755, 0)
	users := copyTo(mkdirMode(t, filepath.Join(h.dir, "users"), 0o755, b.uid, b.gid), 0o755, b.uid)
	dom := UserDomain(b.uid)
	job := func(dom, label, prog string) string {
		x := h.lcJob(label, nil, nil, nil, prog)
		p := h.writePlist(x, mkdirAll(t, filepath.Join(h.dir, "plists")))
		h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyDomain, dom, bootstrap.KeyPath, p)
		return dom + "/" + label
	}
	for _, c := range []struct {
		dom, label, prog string
		ok               bool
	}{
		{DomainSystem, "test.prog.open", open, false},
		{DomainSystem, "test.prog.groupw", groupW, false},
		{DomainSystem, "test.prog.users", users, false},
		{DomainSystem, "test.prog.sticky", sticky, true},
		{dom, "test.prog.own", users, true},
	} {
		target := job(c.dom, c.label, c.prog)
		_, err := h.admin(bootstrap.OpKickstart, bootstrap.KeyTarget, target)
		if c.ok {
			if err != nil {
				t.Errorf("%s (%s): %v", c.label, c.prog, err)
			}
			continue
		}
		if reasonOf(err) != bootstrap.ReasonLaunchFailed || !strings.Contains(err.Error(), bootstrap.RuleProgramOwner) {
			t.Errorf("%s (%s): %v, want launch-failed by %s", c.label, c.prog, err, bootstrap.RuleProgramOwner)
		}
		if d := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, target); strOf(d, "state") != "refused" || strOf(d, bootstrap.KeyRule) != bootstrap.RuleProgramOwner {
			t.Errorf("%s: %s", c.label, xpc.Format(d))
		}
		// blame says why once, with the rule.
		why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, target), bootstrap.KeyWhy)
		if !strings.Contains(why, "by rule "+bootstrap.RuleProgramOwner) || strings.Count(why, "path may be changed") != 1 {
			t.Errorf("%s: blame: %s", c.label, why)
		}
	}
}

func mkdirAll(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A root xpcd refuses directories someone else could change: an XPCD_ROOT
// that belongs to a user, and a run directory that is a symbolic link,
// whose target it leaves as it was.
func TestRootRefusesForeignDirectories(t *testing.T) {
	b := newTestUser(t)
	t.Parallel()
	start := func(h *harness) error {
		d, err := New(h.cfg)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Start(ctx); err != nil {
			return err
		}
		d.Close(ctx)
		return errors.New("started")
	}
	wantRule := func(what string, err error) {
		t.Helper()
		var re *RuleError
		if !errors.Is(err, ErrRefused) || !errors.As(err, &re) || re.Rule != bootstrap.RuleDirOwner {
			t.Errorf("%s: %v, want a refusal by %s", what, err, bootstrap.RuleDirOwner)
		}
	}

	h := newHarness(t)
	h.paths = bootstrap.ForRoot(h.dir, false)
	h.cfg.Paths = h.paths
	if err := os.Chown(h.dir, int(b.uid), int(b.gid)); err != nil {
		t.Fatal(err)
	}
	wantRule("XPCD_ROOT owned by a user", start(h))

	h2 := newHarness(t)
	h2.paths = bootstrap.ForRoot(h2.dir, false)
	h2.cfg.Paths = h2.paths
	elsewhere := mkdirMode(t, filepath.Join(h2.dir, "elsewhere"), 0o700, 0, 0)
	if err := os.Symlink(elsewhere, h2.paths.RunDir); err != nil {
		t.Fatal(err)
	}
	wantRule("a symbolic link as the run directory", start(h2))
	if fi, err := os.Stat(elsewhere); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the link's target: %v %v, want 0700 as it was", fi.Mode(), err)
	}
}

// Found by trying a root xpcd as a hostile local user would: a job's
// paths cannot hang xpcd, its program's path tells nothing about files its
// user cannot see, and it gets no priority its user could not take.
func TestHostileJobPaths(t *testing.T) {
	b, in, h := startRootWithUser(t)
	dom := UserDomain(b.uid)
	bdir := mkdirMode(t, filepath.Join(h.dir, "bdir"), 0o755, b.uid, b.gid)

	// A FIFO as a queue directory: the check must not wait for a writer
	// (it used to, holding a thread for good, once per enable).
	fifo := filepath.Join(bdir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chown(fifo, int(b.uid), int(b.gid))
	q := in.load(t, dom, "test.hostile.fifo", nil, map[string]any{"QueueDirectories": []any{fifo}})
	for range 5 {
		h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, q)
		h.mustAdmin(bootstrap.OpEnable, bootstrap.KeyTarget, q)
	}
	// The checks of the schedules disabled meanwhile may or may not have
	// ended before; the last one's must end, and say why it found nothing.
	h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, q)
	n := logLines(h, `"queue directory"`, q)
	h.mustAdmin(bootstrap.OpEnable, bootstrap.KeyTarget, q)
	waitFor(t, "the last queue check to end", func() bool { return logLines(h, `"queue directory"`, q) > n })

	// A program in a root-only directory fails as a missing one does,
	// whatever is there; it is not looked at as root.
	private := mkdirMode(t, filepath.Join(h.dir, "private"), 0o700, 0, 0)
	rootFile(t, filepath.Join(private, "groupw"), 0o775, "#!/bin/sh\n")
	errOf := func(label, prog string, extra map[string]any) string {
		x := map[string]any{"ProgramArguments": []any{prog}}
		for k, v := range extra {
			x[k] = v
		}
		target := in.load(t, dom, label, nil, x)
		_, err := h.admin(bootstrap.OpKickstart, bootstrap.KeyTarget, target)
		if err == nil {
			t.Fatalf("%s started", prog)
		}
		return strings.NewReplacer(prog, "P", target, "T").Replace(err.Error())
	}
	there := errOf("test.hostile.there", filepath.Join(private, "groupw"), nil)
	missing := errOf("test.hostile.missing", filepath.Join(private, "missing"), nil)
	umask := errOf("test.hostile.umask", filepath.Join(private, "groupw"), map[string]any{"Umask": 18})
	if there != missing || umask != there {
		t.Errorf("a root-only program and a missing one answer differently:\n%s\n%s\n%s", there, missing, umask)
	}
	if strings.Contains(there, bootstrap.RuleProgramOwner) || !strings.Contains(there, "permission denied") {
		t.Errorf("a program the user cannot reach: %s", there)
	}

	// A negative Nice is root's to give, not a user domain's.
	nice := in.load(t, dom, "test.hostile.nice", nil, map[string]any{"Nice": -5})
	pid := intOf(h.mustAdmin(bootstrap.OpKickstart, bootstrap.KeyTarget, nice), bootstrap.KeyPID)
	if n, err := unix.Getpriority(unix.PRIO_PROCESS, pid); err != nil || 20-n != 0 {
		t.Errorf("a user's job runs at nice %d (%v), want 0", 20-n, err)
	}
}

// A user other than root may hold only so many watch connections: each
// may keep up to watchLimit events in xpcd's memory when it stops reading.
func TestWatchersPerUser(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	knownUIDs(h)
	const uid = 1001
	watch := func(c *xpc.Connection) error {
		_, err := c.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpWatch))
		return err
	}
	for i := range maxWatchersPerUser {
		if err := watch(dialAs(t, h, uid)); err != nil {
			t.Fatalf("watcher %d: %v", i+1, err)
		}
	}
	err := watch(dialAs(t, h, uid))
	var re *xpc.RemoteError
	if !errors.As(err, &re) || reasonOf(err) != bootstrap.ReasonDenied {
		t.Fatalf("watcher %d: %v, want denied", maxWatchersPerUser+1, err)
	}
	if r, _ := re.Object.String(bootstrap.KeyRule); r != bootstrap.RuleWatcherLimit {
		t.Errorf("refusal names rule %q", r)
	}
	if err := watch(h.dial(nil)); err != nil {
		t.Errorf("root's watcher: %v", err)
	}
}

// The upgrade monitor looks at executables as the job's user: a link a
// user points into a root-only directory shows no change.
func TestUpgradeMonitorAsUser(t *testing.T) {
	b := newTestUser(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	private := mkdirMode(t, filepath.Join(dir, "private"), 0o700, 0, 0)
	rootFile(t, filepath.Join(private, "exe"), 0o755, "x")
	as := func() (*ident, error) { return &ident{uid: b.uid, gid: b.gid}, nil }
	w := exeWatched{inst: &instance{}, path: filepath.Join(private, "exe"), id: fileID{Ino: 1}, ident: as}
	if got := changedExecutables([]exeWatched{w}); len(got) != 0 {
		t.Errorf("a root-only executable, looked at as uid %d, changed", b.uid)
	}
	w.ident = nil // root's job: root looks
	if got := changedExecutables([]exeWatched{w}); len(got) != 1 {
		t.Errorf("root's job's executable changed, not seen")
	}
}

// lookupOn sends a lookup of name on the bootstrap connection c, with a
// new socket pair's far end, and returns the client's end.
func lookupOn(t *testing.T, c *xpc.Connection, name string) (*os.File, error) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine := os.NewFile(uintptr(fds[0]), "client")
	theirs := xpc.NewFD(os.NewFile(uintptr(fds[1]), "service"))
	defer theirs.Close()
	msg := xpc.Dict(bootstrap.KeyOp, bootstrap.OpLookup, bootstrap.KeyName, name)
	msg.Set(bootstrap.KeySocket, theirs)
	if _, err := c.SendWithReply(testCtx(t), msg); err != nil {
		mine.Close()
		return nil, err
	}
	t.Cleanup(func() { mine.Close() })
	return mine, nil
}

// A user may keep only so many clients waiting for services (each is a
// descriptor in xpcd): past maxQueuedPerUser their lookups are busy, by
// rule queue-limit, while root is still served; clients that gave up are
// let go, and make room.
func TestQueuedClientsPerUser(t *testing.T) {
	h := newSystemHarness(t)
	h.writePlist(testJob{label: "test.q", names: []string{"test.q.svc"},
		extra: map[string]any{"ProgramArguments": []any{"/bin/sleep", "60"}}}, h.paths.Daemons)
	h.start()
	knownUIDs(h)
	const uid = 1001
	c := dialAs(t, h, uid)
	var mine []*os.File
	for i := range maxQueuedPerUser {
		f, err := lookupOn(t, c, "test.q.svc")
		if err != nil {
			t.Fatalf("lookup %d: %v", i+1, err)
		}
		mine = append(mine, f)
	}
	_, err := lookupOn(t, c, "test.q.svc")
	var re *xpc.RemoteError
	if !errors.As(err, &re) || reasonOf(err) != bootstrap.ReasonBusy {
		t.Fatalf("lookup %d: %v, want busy", maxQueuedPerUser+1, err)
	}
	if r, _ := re.Object.String(bootstrap.KeyRule); r != bootstrap.RuleQueueLimit {
		t.Errorf("refusal names rule %q", r)
	}
	if _, err := lookupOn(t, h.dial(nil), "test.q.svc"); err != nil {
		t.Errorf("root's lookup: %v", err)
	}
	// Clients that gave up make room.
	for _, f := range mine[:10] {
		f.Close()
	}
	for i := range 10 {
		if _, err := lookupOn(t, c, "test.q.svc"); err != nil {
			t.Fatalf("lookup after 10 clients left, %d: %v", i+1, err)
		}
	}
	if _, err := lookupOn(t, c, "test.q.svc"); reasonOf(err) != bootstrap.ReasonBusy {
		t.Errorf("at the limit again: %v", err)
	}
}

// One connection may have only so many requests waiting for their answer
// (their credit comes back as they are taken, so flow control does not
// bound them): past maxWaitsPerSession a request is busy.
func TestWaitingRequestsPerConnection(t *testing.T) {
	h := newHarness(t)
	// The job ignores SIGTERM from the moment it says so (ready), so the
	// bootouts wait; a SIGTERM before its trap would end it at once.
	ready := filepath.Join(h.dir, "ready")
	h.writePlist(testJob{label: "test.waits", extra: map[string]any{
		"ProgramArguments": []any{"/bin/sh", "-c", "trap '' TERM; : > \"$0\"; exec sleep 60", ready},
		"ExitTimeOut":      60, "RunAtLoad": true}})
	h.start()
	h.waitState("test.waits", "running")
	waitFor(t, "the job to ignore SIGTERM", func() bool { _, err := os.Stat(ready); return err == nil })
	c := h.dial(nil)
	const n = maxWaitsPerSession + 4
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.waits"), bootstrap.KeyWait, true))
			errs <- err
		}()
	}
	for range n - maxWaitsPerSession {
		if err := <-errs; reasonOf(err) != bootstrap.ReasonBusy {
			t.Fatalf("a request past the limit: %v, want busy", err)
		}
	}
	h.mustAdmin(bootstrap.OpKill, bootstrap.KeyTarget, h.target("test.waits"), bootstrap.KeySignal, 9)
	for range maxWaitsPerSession {
		if err := <-errs; err != nil {
			t.Errorf("a waiting bootout: %v", err)
		}
	}
}

// A user's domain gets at most maxJobsPerUserDomain jobs, and its jobs at
// least minUserThrottle between launches: neither root's memory nor a core
// of root's is a user's to take.
func TestUserDomainJobLimits(t *testing.T) {
	b, in, h := startRootWithUser(t)
	dom := UserDomain(b.uid)
	spin := in.load(t, dom, "test.limit.spin", nil, map[string]any{
		"ProgramArguments": []any{"/bin/true"}, "KeepAlive": true, "ThrottleInterval": 0})
	time.Sleep(2500 * time.Millisecond)
	if n := launches(h, spin); n > 4 {
		t.Errorf("a job that exits at once was launched %d times in 2.5 s", n)
	}
	h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, spin, bootstrap.KeyWait, true)

	dir := mkdirAll(t, filepath.Join(h.dir, "many"))
	var err error
	for i := range maxJobsPerUserDomain + 1 {
		label := fmt.Sprintf("test.limit.%d", i)
		p := h.writePlist(testJob{label: label, extra: map[string]any{"ProgramArguments": []any{"/bin/true"}}}, dir)
		if _, err = h.admin(bootstrap.OpBootstrap, bootstrap.KeyDomain, dom, bootstrap.KeyPath, p); err != nil {
			if i != maxJobsPerUserDomain {
				t.Fatalf("job %d: %v", i+1, err)
			}
		}
	}
	var re *xpc.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("job %d: %v, want refused", maxJobsPerUserDomain+1, err)
	}
	if r, _ := re.Object.String(bootstrap.KeyRule); r != bootstrap.RuleJobLimit {
		t.Errorf("refusal names rule %q (%v)", r, err)
	}
}

// rawDialAs connects a bare SOCK_SEQPACKET socket to xpcd as uid (on a
// thread of its own that ends with its goroutine) and returns it.
func rawDialAs(t *testing.T, h *harness, uid uint32) int {
	t.Helper()
	ch := make(chan int, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see dialAs
		fd := -1
		defer func() { ch <- fd }()
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
			return
		}
		s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return
		}
		if unix.Connect(s, &unix.SockaddrUnix{Name: h.paths.Socket}) != nil {
			unix.Close(s)
			return
		}
		fd = s
	}()
	fd := <-ch
	if fd < 0 {
		t.Fatal("could not connect as uid", uid)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// A client cut off for leaving xpcd's out-of-line replies unread keeps
// them in its socket for as long as it likes, out of xpcd's sight: its
// connection keeps its place in the user's connection count, so that what
// one user can pin is bounded by the cap.
func TestCutOffConnectionKeepsItsPlace(t *testing.T) {
	h := newSystemHarness(t)
	h.cfg.MaxConnectionsPerUser = 2
	names := make([]string, 2000)
	for i := range names {
		names[i] = fmt.Sprintf("test.cutoff.a-rather-long-service-name-to-make-print-large.%04d", i)
	}
	h.writePlist(testJob{label: "test.cutoff", names: names,
		extra: map[string]any{"ProgramArguments": []any{"/bin/true"}}}, h.paths.Daemons)
	h.start()
	knownUIDs(h)
	const uid = 1001
	fd := rawDialAs(t, h, uid)
	body, err := xpc.Encode(xpc.Dict(bootstrap.KeyOp, bootstrap.OpPrint, bootstrap.KeyTarget, "system/test.cutoff"))
	if err != nil {
		t.Fatal(err)
	}
	for id := range 40 { // ~150 KiB each, never read: past 1 MiB unread
		frame := make([]byte, wire.HeaderSize, wire.HeaderSize+len(body))
		wire.PutHeader(frame, wire.Header{Kind: wire.KindRequest, ID: uint64(id + 1)})
		if err := unix.Sendmsg(fd, append(frame, body...), nil, nil, unix.MSG_DONTWAIT); err != nil {
			break // xpcd has cut us off already
		}
	}
	waitFor(t, "the cut-off", func() bool { return strings.Contains(h.logs.String(), "connection cut off over a limit") })
	// One place is still taken: one more connection, then the cap.
	if err := ask(t, dialAs(t, h, uid)); err != nil {
		t.Fatalf("the second connection: %v", err)
	}
	if err := ask(t, dialAs(t, h, uid)); !errors.Is(err, xpc.ErrDenied) {
		t.Errorf("a third connection with one cut off and one open: %v, want refused", err)
	}
}

// Uids without an account (a user's subordinate uids, connecting from a
// user namespace) share one bucket in every per-user limit, and users but
// root share a cap on connections, so that descriptors are left for root.
func TestLimitsPerAccount(t *testing.T) {
	h := newSystemHarness(t)
	h.cfg.MaxConnectionsPerUser = 4
	h.cfg.MaxConnections = 6
	h.start()
	h.d.sup.buckets.setLookup(func(uid uint32) bool { return uid < 2000 })
	for _, uid := range []uint32{60001, 60002, 60003, 60004} {
		if err := ask(t, dialAs(t, h, uid)); err != nil {
			t.Fatalf("uid %d: %v", uid, err)
		}
	}
	err := ask(t, dialAs(t, h, 60005))
	if !errors.Is(err, xpc.ErrDenied) || !strings.Contains(err.Error(), "uids without an account has 4 connections") {
		t.Fatalf("a fifth uid without an account: %v", err)
	}
	// Accounts of their own, but all users together at the cap.
	for _, uid := range []uint32{1001, 1002} {
		if err := ask(t, dialAs(t, h, uid)); err != nil {
			t.Fatalf("uid %d: %v", uid, err)
		}
	}
	err = ask(t, dialAs(t, h, 1003))
	if !errors.Is(err, xpc.ErrDenied) || !strings.Contains(err.Error(), "the limit for all of them together") {
		t.Fatalf("past the cap of all users: %v", err)
	}
	if err := ask(t, h.dial(nil)); err != nil {
		t.Errorf("root: %v", err)
	}
}

// A user's domain may have only so many enable/disable overrides (any
// label the domain knows may get one, loaded or not, and overrides.json
// is rewritten whole at each change); one it has already may still
// change.
func TestOverridesPerUserDomain(t *testing.T) {
	h := newSystemHarness(t)
	h.writePlist(testJob{label: "test.ov.new"}, h.paths.Agents)
	h.writePlist(testJob{label: "test.ov.new"}, h.paths.Daemons)
	h.start()
	const dom = "user/1001"
	if err := h.d.sup.call(testCtx(t), func() {
		o := map[string]bool{}
		for i := range maxOverridesPerUserDomain {
			o[fmt.Sprintf("test.ov.%d", i)] = true
		}
		h.d.sup.overrides[dom] = o
	}); err != nil {
		t.Fatal(err)
	}
	_, err := h.admin(bootstrap.OpDisable, bootstrap.KeyTarget, dom+"/test.ov.new")
	var re *xpc.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("an override past the limit: %v", err)
	}
	if r, _ := re.Object.String(bootstrap.KeyRule); r != bootstrap.RuleOverrideLimit {
		t.Errorf("refusal names rule %q (%v)", r, err)
	}
	h.mustAdmin(bootstrap.OpEnable, bootstrap.KeyTarget, dom+"/test.ov.7")
	if _, err := h.admin(bootstrap.OpDisable, bootstrap.KeyTarget, "system/test.ov.new"); err != nil {
		t.Errorf("root's system domain: %v", err)
	}
}

// The override limit counts by bucket: uids without an account (a user's
// subordinate uids) share one limit, however many domains they have; a
// uid with an account has its own. Overrides read from the state count too
// (bucketOverrides, at start).
func TestOverridesPerBucket(t *testing.T) {
	h := newSystemHarness(t)
	h.writePlist(testJob{label: "test.ov.new"}, h.paths.Agents)
	h.start()
	m := h.d.sup
	m.buckets.setLookup(func(uid uint32) bool { return uid < 2000 })
	if err := m.call(testCtx(t), func() {
		o := map[string]bool{}
		for i := range maxOverridesPerUserDomain {
			o[fmt.Sprintf("test.ov.%d", i)] = true
		}
		m.overrides["user/60001"] = o
		m.bucketOverrides()
	}); err != nil {
		t.Fatal(err)
	}
	_, err := h.admin(bootstrap.OpDisable, bootstrap.KeyTarget, "user/60002/test.ov.new")
	var re *xpc.RemoteError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "uids without an account") {
		t.Fatalf("another uid without an account, past the limit: %v", err)
	}
	if r, _ := re.Object.String(bootstrap.KeyRule); r != bootstrap.RuleOverrideLimit {
		t.Errorf("refusal names rule %q (%v)", r, err)
	}
	if _, err := h.admin(bootstrap.OpDisable, bootstrap.KeyTarget, "user/1001/test.ov.new"); err != nil {
		t.Errorf("a uid with an account: %v", err)
	}
}

// A system xpcd that restarts makes at once the user domains whose
// processes still run, and adopts them: they are not left unsupervised
// until their user comes back, and their RunAtLoad agents do not start a
// second time when the user does.
func TestRestartRestoresUserDomains(t *testing.T) {
	b := newTestUser(t)
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.cfg.StopServicesOnClose = false
	h.writePlist(h.lcJob("test.restore.agent", []string{"test.restore.svc"}, nil, map[string]any{"RunAtLoad": true}, in.exe), h.paths.Agents)
	first := h.start()
	isoClient(t, in.exe, b.uid, b.gid, h.dir, []isoStep{{ID: "list", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpList}}})
	target := UserDomain(b.uid) + "/test.restore.agent"
	waitFor(t, "the user's agent", func() bool {
		return strOf(h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, target), "state") == "running"
	})
	pid := intOf(h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, target), bootstrap.KeyPID)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	// The agent serves, so its check-in is done: "running" says only that
	// it was started, and an agent whose xpcd stops while it checks in
	// fails that check-in and exits, leaving nothing to adopt.
	c, err := h.lookup("test.restore.svc", bootstrap.KeyDomain, UserDomain(b.uid))
	if err != nil {
		t.Fatalf("lookup of the user's agent: %v", err)
	}
	if got := ping(t, c); got != pid {
		t.Fatalf("the user's agent is pid %d, print said %d", got, pid)
	}
	c.Cancel()
	h.close(first)

	h.cfg.StopServicesOnClose = true
	h.start()
	d := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, target)
	if intOf(d, bootstrap.KeyPID) != pid || !boolOf(d, "adopted") {
		t.Fatalf("after the restart, before the user came back: %s, want pid %d adopted", xpc.Format(d), pid)
	}
	isoClient(t, in.exe, b.uid, b.gid, h.dir, []isoStep{{ID: "list", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpList}}})
	if n := launches(h, target); n != 1 {
		t.Errorf("the agent was launched %d times", n)
	}
}

func boolOf(d *xpc.Dictionary, key string) bool {
	v, _ := d.Bool(key)
	return v
}

// /proc's links to xpcd's open files (/proc/self/fd/N, /dev/fd/N), which
// xpcd's threads may follow whoever they act as, lead a user's
// QueueDirectories and PathState nowhere: a root-only directory with work
// in it, and a file in it, both open in xpcd's process, start nothing.
func TestWatchThroughProcFD(t *testing.T) {
	b := newTestUser(t)
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.start()
	private := mkdirMode(t, filepath.Join(h.dir, "private"), 0o700, 0, 0)
	rootFile(t, filepath.Join(private, "work"), 0o600, "x")
	d, err := os.Open(private) // open in xpcd's process
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := os.Open(filepath.Join(private, "work"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dom := UserDomain(b.uid)
	var jobs []string
	for i, link := range []string{"/proc/self/fd/%d", "/dev/fd/%d", fmt.Sprintf("/proc/%d/fd/%%d", os.Getpid())} {
		jobs = append(jobs, in.load(t, dom, fmt.Sprintf("test.watch.procfd%d", i), nil, map[string]any{
			"QueueDirectories": []any{fmt.Sprintf(link, d.Fd())},
			"KeepAlive":        map[string]any{"PathState": map[string]any{fmt.Sprintf(link, f.Fd()): true}},
		}))
	}
	for _, j := range jobs {
		waitFor(t, "the user's queue check", func() bool { return logLines(h, `"queue directory"`, j) > 0 })
	}
	time.Sleep(300 * time.Millisecond)
	for _, j := range jobs {
		if n := launches(h, j); n != 0 {
			t.Errorf("%s was started %d times for a directory or file its user cannot reach, through /proc", j, n)
		}
	}
}
