package xpcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

func TestOnDemandLaunchOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.demand", names: []string{"test.demand.svc"}})
	h.start()

	if st := strOf(h.print("test.demand"), "state"); st != "waiting" {
		t.Fatalf("state before any lookup = %q, want waiting", st)
	}
	const n = 20
	pids := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := h.lookup("test.demand.svc")
			if err != nil {
				t.Errorf("lookup: %v", err)
				return
			}
			r, err := call(t, c, "ping")
			if err != nil {
				t.Errorf("ping: %v", err)
				return
			}
			pid, _ := r.Int64("pid")
			pids[i] = int(pid)
		}()
	}
	wg.Wait()
	for _, p := range pids {
		if p != pids[0] || p == 0 {
			t.Fatalf("pids %v: want one instance", pids)
		}
	}
	d := h.print("test.demand")
	if got := intOf(d, "runs"); got != 1 {
		t.Errorf("runs = %d, want 1", got)
	}
	if strOf(d, "state") != "running" || intOf(d, "pid") != pids[0] || strOf(d, "launch_reason") != "demand" {
		t.Errorf("job = %s", xpc.Format(d))
	}
	if intOf(d, "requester_pid") == 0 || intOf(d, "connections_total") != n {
		t.Errorf("requester_pid/connections: %s", xpc.Format(d))
	}
}

func TestRunAtLoad(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.ral", names: []string{"test.ral.svc"}, runAtLoad: true})
	h.start()
	d := h.waitState("test.ral", "running")
	if strOf(d, "launch_reason") != "run-at-load" || intOf(d, "requester_pid") != 0 {
		t.Errorf("job = %s", xpc.Format(d))
	}
	c := h.mustLookup("test.ral.svc")
	if pid := ping(t, c); pid != intOf(d, "pid") {
		t.Errorf("served by pid %d, want %d", pid, intOf(d, "pid"))
	}
	if runs := intOf(h.print("test.ral"), "runs"); runs != 1 {
		t.Errorf("runs = %d", runs)
	}
}

// A crash: queued clients wait for the next instance; a client whose
// connection was delivered sees it end and looks the name up again, which
// relaunches the service.
func TestCrashRelaunchOnNextLookup(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.crash", names: []string{"test.crash.svc"},
		extra: map[string]any{"ThrottleInterval": 1}})
	h.start()
	c := h.mustLookup("test.crash.svc")
	pid1 := ping(t, c)
	if _, err := call(t, c, "crash"); !errors.Is(err, xpc.ErrInvalid) {
		t.Fatalf("call that crashed the service: %v, want ErrInvalid (peer gone)", err)
	}
	d := h.waitState("test.crash", "waiting")
	if intOf(d, "last_exit_signal") != int(syscall.SIGSEGV) {
		t.Errorf("after crash: %s", xpc.Format(d))
	}
	pid2 := h.lookupPing("test.crash.svc")
	if pid2 == pid1 {
		t.Fatalf("same pid %d after crash", pid1)
	}
	// The relaunch waited for ThrottleInterval after the first launch.
	d = h.print("test.crash")
	if intOf(d, "runs") != 2 || strOf(d, "launch_reason") != "demand" {
		t.Errorf("after relaunch: %s", xpc.Format(d))
	}
}

func TestKeepAliveThrottle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.ka", env: map[string]string{"XPCD_TEST_EXIT": "3"},
		extra: map[string]any{"KeepAlive": true, "ThrottleInterval": 1}})
	h.start()
	d := h.waitState("test.ka", "throttled")
	until, err := d.Date("throttled_until")
	if err != nil || intOf(d, "last_exit_status") != 3 {
		t.Fatalf("throttled job: %s", xpc.Format(d))
	}
	if w := time.Until(until); w > time.Second+100*time.Millisecond {
		t.Errorf("throttled for %v, want at most ThrottleInterval", w)
	}
	waitFor(t, "a third run", func() bool { return intOf(h.print("test.ka"), "runs") >= 3 })
	// Three runs took at least two throttle intervals.
	d = h.print("test.ka")
	if r := strOf(d, "launch_reason"); r != "keep-alive" {
		t.Errorf("launch_reason = %q", r)
	}
	r := h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.ka"), bootstrap.KeyWait, true)
	if s := strOf(r, bootstrap.KeyStatus); s != "unloaded" {
		t.Errorf("bootout: %s", xpc.Format(r))
	}
}

func TestIdleExit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.idle", names: []string{"test.idle.svc"},
		extra: map[string]any{"XPCIdleExitTimeout": 1}})
	h.start()

	// Clean: stopped after a second of idleness.
	c := h.mustLookup("test.idle.svc")
	ping(t, c)
	t0 := time.Now()
	d := h.waitState("test.idle", "waiting")
	if el := time.Since(t0); el < 800*time.Millisecond {
		t.Errorf("stopped after %v, before the idle timeout", el)
	}
	if strOf(d, "stop_reason") != "idle" {
		t.Errorf("after idle exit: %s", xpc.Format(d))
	}

	// Dirty: a transaction is open; it stays.
	h.writePlist(testJob{label: "test.dirty", names: []string{"test.dirty.svc"}, runAtLoad: true,
		env: map[string]string{"XPCD_TEST_HOLD": "1"}, extra: map[string]any{"XPCIdleExitTimeout": 1}})
	h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, filepath.Join(h.paths.Agents, "test.dirty.plist"))
	waitFor(t, "the dirty service to report", func() bool { return intOf(h.print("test.dirty"), "transactions") == 1 })
	time.Sleep(2500 * time.Millisecond)
	d = h.print("test.dirty")
	if strOf(d, "state") != "running" || intOf(d, "transactions") != 1 {
		t.Fatalf("with an open transaction: %s", xpc.Format(d))
	}
	c = h.mustLookup("test.dirty.svc")
	if _, err := call(t, c, "end"); err != nil {
		t.Fatal(err)
	}
	d = h.waitState("test.dirty", "waiting")
	if strOf(d, "stop_reason") != "idle" {
		t.Errorf("after the transaction ended: %s", xpc.Format(d))
	}
}

func TestLookupErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.errs", names: []string{"test.errs.svc"}})
	h.start()

	_, err := h.lookup("test.nobody.home")
	if !errors.As(err, new(*xpc.RemoteError)) || reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("lookup of a name nobody provides: %v (reason %q)", err, reasonOf(err))
	}
	_, err = h.lookup("test.errs.svc", bootstrap.KeyDomain, "system")
	if reasonOf(err) != bootstrap.ReasonWrongDomain || !strings.Contains(err.Error(), UserDomain(uint32(os.Geteuid()))) {
		t.Errorf("lookup in the wrong domain: %v (reason %q)", err, reasonOf(err))
	}
	_, err = h.lookup("bad name!")
	if reasonOf(err) != bootstrap.ReasonBadRequest {
		t.Errorf("lookup of an invalid name: %v", err)
	}

	// The library's lookups are pipelined: xpcd answers a failed one on
	// the socket it was given (a refused frame), and the client's first
	// request fails with the same reason, as invalid, never interrupted,
	// whichever of the refusal and the request comes first.
	ctx := testCtx(t)
	for i := range 20 {
		for _, tc := range []struct {
			name, domain string
			want         error
			in           string
		}{
			{"test.nobody.home", "", xpc.ErrServiceNotFound, "no service named test.nobody.home"},
			{"test.errs.svc", "system", xpc.ErrOtherDomain, UserDomain(uint32(os.Geteuid()))},
		} {
			opts := []xpc.Option{xpc.WithBootstrapSocket(h.paths.Socket)}
			if tc.domain != "" {
				opts = append(opts, xpc.WithDomain(tc.domain))
			}
			c, err := xpc.NewServiceConnection(tc.name, opts...)
			if err != nil {
				t.Fatal(err)
			}
			c.Activate()
			_, err = c.SendWithReply(ctx, xpc.Dict("op", "ping"))
			c.Cancel()
			if !errors.Is(err, xpc.ErrInvalid) || !errors.Is(err, tc.want) || errors.Is(err, xpc.ErrInterrupted) || !strings.Contains(err.Error(), tc.in) {
				t.Fatalf("pipelined lookup %d of %s (domain %q): %v", i, tc.name, tc.domain, err)
			}
			var ce *xpc.ConnError
			if tc.want == xpc.ErrOtherDomain && (!errors.As(err, &ce) || ce.Reason.Domain != UserDomain(uint32(os.Geteuid()))) {
				t.Fatalf("pipelined lookup %d of %s in %s: the reason of %v does not name the domain it is in", i, tc.name, tc.domain, err)
			}
		}
	}

	c := h.mustLookup("test.errs.svc")
	r, err := call(t, c, "checkin", "name", "test.errs.undeclared")
	if err != nil {
		t.Fatal(err)
	}
	if strOf(r, "reason") != bootstrap.ReasonNotDeclared || !strings.Contains(strOf(r, "error"), "test.errs.plist") {
		t.Errorf("checkin of an undeclared name: %s", xpc.Format(r))
	}
}

// The caller's identity is the kernel's: keys in a request that claim
// another uid or pid change nothing.
func TestIdentityFromKernel(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.id", names: []string{"test.id.svc"}})
	h.start()
	c, err := h.lookup("test.id.svc", "uid", int64(4242), "pid", int64(1))
	if err != nil {
		t.Fatal(err)
	}
	ping(t, c)
	if got := intOf(h.print("test.id"), "requester_pid"); got != os.Getpid() {
		t.Errorf("requester_pid = %d, want this process, %d", got, os.Getpid())
	}
	// Admin requests likewise: the target's domain decides, checked
	// against the kernel's uid (root here, who may change any domain this
	// instance serves, and no other).
	_, err = h.admin(bootstrap.OpDisable, bootstrap.KeyTarget, "user/4242/test.id", "uid", int64(4242))
	if reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("disable in a domain this instance does not serve: %v", err)
	}
}

func TestBadPlistRejected(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.good", names: []string{"test.shared"}})
	// A wrong type: rejected whole, with file, key and reason.
	bad := h.writePlist(testJob{label: "test.bad", names: []string{"test.bad.svc"}, extra: map[string]any{"RunAtLoad": "yes"}})
	// A name another job already provides: the second is rejected.
	h.writePlist(testJob{label: "test.zdup", names: []string{"test.shared", "test.zdup.own"}})
	h.start()

	r := h.mustAdmin(bootstrap.OpList)
	jobs, _ := r.Array(bootstrap.KeyJobs)
	errs, _ := r.Array(bootstrap.KeyErrors)
	if len(jobs) != 1 || strOf(jobs[0].(*xpc.Dictionary), "label") != "test.good" {
		t.Errorf("jobs = %s", xpc.Format(jobs))
	}
	if len(errs) != 2 {
		t.Fatalf("errors = %s", xpc.Format(errs))
	}
	e0, e1 := errs[0].(*xpc.Dictionary), errs[1].(*xpc.Dictionary)
	if strOf(e0, "file") != bad || strOf(e0, "key") != "RunAtLoad" || !strings.Contains(strOf(e0, "reason"), "bool") {
		t.Errorf("bad plist error = %s", xpc.Format(e0))
	}
	if strOf(e1, "key") != "MachServices.test.shared" || !strings.Contains(strOf(e1, "reason"), "test.good") {
		t.Errorf("duplicate name error = %s", xpc.Format(e1))
	}
	if _, err := h.lookup("test.zdup.own"); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("a name of the rejected job: %v", err)
	}
	// bootstrap says the same.
	_, err := h.admin(bootstrap.OpBootstrap, bootstrap.KeyPath, bad)
	if reasonOf(err) != bootstrap.ReasonBadPlist || !strings.Contains(err.Error(), "RunAtLoad") {
		t.Errorf("bootstrap of the bad plist: %v", err)
	}
}

// The whole contract with the library on both sides: NewServiceConnection
// for the client, CheckIn and Listen for the service. Crash, idle exit and
// a restart of xpcd.
func TestWithLibraryRuntime(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.StopServicesOnClose = false
	h.writePlist(testJob{label: "test.rt", names: []string{"test.rt.svc"},
		env:   map[string]string{"XPCD_TEST_RUNTIME": "1"},
		extra: map[string]any{"ThrottleInterval": 1, "XPCIdleExitTimeout": 2}})
	d1 := h.start()
	c, err := xpc.NewServiceConnection("test.rt.svc", xpc.WithBootstrapSocket(h.paths.Socket))
	if err != nil {
		t.Fatal(err)
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	pid1 := ping(t, c)

	// xpcd restarts; the service lives on and is adopted.
	h.close(d1)
	if got := ping(t, c); got != pid1 {
		t.Fatalf("pid %d while xpcd was down", got)
	}
	h.cfg.StopServicesOnClose = true
	h.start()
	waitFor(t, "the service to check in again", func() bool {
		a, _ := h.print("test.rt").Array("checked_in")
		return len(a) == 1
	})
	if got := ping(t, h.mustLookup("test.rt.svc")); got != pid1 {
		t.Fatalf("a new client reached pid %d, want the adopted %d", got, pid1)
	}

	// A crash interrupts; the next send relaunches it.
	if _, err := call(t, c, "crash"); !errors.Is(err, xpc.ErrInterrupted) {
		t.Fatalf("call that crashed the service: %v, want ErrInterrupted", err)
	}
	// (The library may report the same interruption once more on a send
	// made at the very moment it drops the dead link: retry as a caller
	// would.)
	pid2 := pingInterrupted(t, c)
	if pid2 == pid1 {
		t.Fatal("not relaunched")
	}

	// Idle exit; the connection stays usable and relaunches it.
	d := h.waitState("test.rt", "waiting")
	if strOf(d, "stop_reason") != "idle" {
		t.Errorf("after idle: %s", xpc.Format(d))
	}
	if pid := pingInterrupted(t, c); pid == pid2 {
		t.Errorf("after idle exit, served by pid %d", pid)
	}
}

// pingInterrupted pings through a service connection, sending again after
// an interruption.
func pingInterrupted(t *testing.T, c *xpc.Connection) int {
	t.Helper()
	for try := 0; ; try++ {
		r, err := call(t, c, "ping")
		if err == nil {
			pid, _ := r.Int64("pid")
			return int(pid)
		}
		if !errors.Is(err, xpc.ErrInterrupted) || try == 3 {
			t.Fatalf("ping: %v", err)
		}
	}
}

// TestUmaskAndProcessType: a job's Umask, Nice and ProcessType are what its
// process runs with.
func TestUmaskAndProcessType(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.bg", names: []string{"test.bg.svc"},
		extra: map[string]any{"Umask": 63 /* 077 */, "ProcessType": "Background"}})
	h.writePlist(testJob{label: "test.std", names: []string{"test.std.svc"},
		extra: map[string]any{"Nice": 5}})
	h.writePlist(testJob{label: "test.bgnice", names: []string{"test.bgnice.svc"},
		extra: map[string]any{"ProcessType": "Background", "Nice": 15}})
	h.start()
	sched := func(name string) *xpc.Dictionary {
		r, err := call(t, h.mustLookup(name), "sched")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r
	}
	bg := sched("test.bg.svc")
	if u := intOf(bg, "umask"); u != 0o077 {
		t.Errorf("Umask 077: the job runs with umask %04o", u)
	}
	if n := intOf(bg, "nice"); n != backgroundNice {
		t.Errorf("Background: nice %d, want %d", n, backgroundNice)
	}
	if c := intOf(bg, "ioprio_class"); c != ioprioClassIdle {
		t.Errorf("Background: I/O class %d, want idle (%d)", c, ioprioClassIdle)
	}
	// Through the shell, argv[0] is the program's path (the harness's
	// ProgramArguments[0] is that path too).
	if a := strOf(bg, "argv0"); a != h.exe {
		t.Errorf("argv[0] %q, want %q", a, h.exe)
	}
	std := sched("test.std.svc")
	if n := intOf(std, "nice"); n != 5 {
		t.Errorf("Nice 5: nice %d", n)
	}
	if c := intOf(std, "ioprio_class"); c == ioprioClassIdle {
		t.Error("Standard job in the idle I/O class")
	}
	if u := intOf(std, "umask"); u == 0o077 {
		t.Error("a job without Umask got another job's")
	}
	if n := intOf(sched("test.bgnice.svc"), "nice"); n != 15 {
		t.Errorf("Background with Nice 15: nice %d", n)
	}
}

// TestPriorityEveryThread: a job's Nice and ProcessType hold for every
// thread of its process, however late xpcd runs again after the fork.
// Linux keeps both per thread, and a Go service has made several threads
// before its main function: the process must start with them.
func TestPriorityEveryThread(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.thr", names: []string{"test.thr.svc"},
		extra: map[string]any{"ProcessType": "Background", "Nice": 15}})
	h.start()
	// xpcd gets the CPU back only once the new process runs more than
	// one thread, as on a loaded machine.
	if err := h.d.sup.call(testCtx(t), func() {
		h.d.sup.launcher.(*execLauncher).afterFork = func(_ *spawnSpec, pid int) { waitThreads(pid, 2) }
	}); err != nil {
		t.Fatal(err)
	}
	r, err := call(t, h.mustLookup("test.thr.svc"), "sched")
	if err != nil {
		t.Fatal(err)
	}
	nices, _ := r.Array("thread_nice")
	classes, _ := r.Array("thread_ioprio_class")
	if len(nices) < 2 || len(classes) != len(nices) {
		t.Fatalf("threads: nice %v, I/O class %v", nices, classes)
	}
	for i := range nices {
		if nices[i] != xpc.Int64(15) || classes[i] != xpc.Int64(ioprioClassIdle) {
			t.Errorf("Background with Nice 15: threads have nice %v, I/O class %v; want 15 and idle (%d)",
				nices, classes, ioprioClassIdle)
			break
		}
	}
}

// waitThreads waits, for a bounded time, until process pid runs at least
// n threads.
func waitThreads(pid, n int) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid)); err == nil && len(ents) >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
