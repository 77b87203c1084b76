package xpcd

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/launchd"
)

// Tests of the state machine alone: a fake launcher, no processes, no
// sockets, and testing/synctest's clock, so that throttle, idle and kill
// timers are checked to the second without waiting for them.

type fakeLauncher struct {
	mu    sync.Mutex
	procs []*fakeProc
	next  int
}

// fakePIDBase is above PID_MAX_LIMIT (1<<22), so a fake instance's pid is
// never that of a real process: tests that also start real processes (the
// applications of apps_limits_test.go) would otherwise see xpcd take one
// of them for an instance (byPID) when the kernel hands out the same
// number, as it does in a fresh container.
const fakePIDBase = 1 << 22

func (f *fakeLauncher) launch(spec *spawnSpec) (*spawned, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	p := &fakeProc{pid: fakePIDBase + f.next, exit: make(chan exitStatus, 1), closed: make(chan struct{}), started: time.Now()}
	f.procs = append(f.procs, p)
	return &spawned{proc: p, pid: p.pid}, nil
}

func (f *fakeLauncher) adopt(processRecord) (*spawned, error) { return nil, os.ErrNotExist }

func (f *fakeLauncher) marked() ([]markedProcess, error) { return nil, nil }

func (f *fakeLauncher) launches() []*fakeProc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeProc(nil), f.procs...)
}

// fakeProc exits when told to, or at SIGKILL; SIGTERM only if termExits.
type fakeProc struct {
	pid       int
	started   time.Time
	exit      chan exitStatus
	closed    chan struct{}
	termExits bool

	mu   sync.Mutex
	dead bool
	sigs []syscall.Signal
	at   []time.Time
	once sync.Once
}

func (p *fakeProc) die(st exitStatus) {
	p.once.Do(func() {
		p.mu.Lock()
		p.dead = true
		p.mu.Unlock()
		p.exit <- st
	})
}

func (p *fakeProc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead
}

func (p *fakeProc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	p.sigs = append(p.sigs, sig)
	p.at = append(p.at, time.Now())
	p.mu.Unlock()
	if sig == syscall.SIGKILL || (sig == syscall.SIGTERM && p.termExits) {
		p.die(exitStatus{known: true, signal: sig})
	}
	return nil
}

func (p *fakeProc) killGroup(sig syscall.Signal) error { return p.signal(sig) }

func (p *fakeProc) wait(bool) (exitStatus, error) {
	select {
	case st := <-p.exit:
		return st, nil
	case <-p.closed:
		return exitStatus{}, errProcessClosed
	}
}

func (p *fakeProc) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closed:
	default:
		close(p.closed)
	}
}

func (p *fakeProc) signals() ([]syscall.Signal, []time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]syscall.Signal(nil), p.sigs...), append([]time.Time(nil), p.at...)
}

// machine is a supervisor with a fake launcher and one domain.
type machine struct {
	t  *testing.T
	m  *supervisor
	fl *fakeLauncher
	d  *domain
}

func newMachine(t *testing.T, defs ...*launchd.Job) *machine {
	fl := &fakeLauncher{}
	m := newSupervisor(supervisorConfig{
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		launcher: fl,
		domains:  map[string]uint32{"user/0": 0},
		userMode: true,
	})
	d := m.domains["user/0"]
	for _, def := range defs {
		if _, err := m.addJob(d, def, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	mc := &machine{t: t, m: m, fl: fl, d: d}
	t.Cleanup(func() { m.close(context.Background()) })
	synctest.Wait()
	return mc
}

func def(label string, mod func(*launchd.Job)) *launchd.Job {
	j := &launchd.Job{
		Label: label, Program: "/bin/true", Path: "/test/" + label + ".plist",
		MachServices:     map[string]launchd.MachService{label + ".svc": {}},
		ThrottleInterval: launchd.DefaultThrottleInterval,
		ExitTimeOut:      launchd.DefaultExitTimeOut,
	}
	if mod != nil {
		mod(j)
	}
	return j
}

// do runs fn on the loop and lets everything settle.
func (mc *machine) do(fn func()) {
	mc.t.Helper()
	if err := mc.m.call(context.Background(), fn); err != nil {
		mc.t.Fatal(err)
	}
	synctest.Wait()
}

func (mc *machine) state(label string) string {
	var s string
	mc.do(func() { s = mc.d.jobs[label].stateOf() })
	return s
}

func (mc *machine) lookup(name string) {
	mc.t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		mc.t.Fatal(err)
	}
	w.Close()
	mc.do(func() {
		if oe := mc.m.lookup(0, 0, 4242, name, "", xpc.NewFD(r)); oe != nil {
			mc.t.Errorf("lookup %s: %v", name, oe)
			r.Close()
		}
	})
}

func (mc *machine) inst(label string) *instance {
	var inst *instance
	mc.do(func() { inst = mc.d.jobs[label].inst })
	return inst
}

func TestMachineDemandLaunchesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc := newMachine(t, def("a", nil))
		if st := mc.state("a"); st != "waiting" {
			t.Fatalf("state %s", st)
		}
		for range 20 {
			mc.lookup("a.svc")
		}
		if n := len(mc.fl.launches()); n != 1 {
			t.Fatalf("%d launches for 20 lookups, want 1", n)
		}
		var queued int
		mc.do(func() { queued = len(mc.d.jobs["a"].queue) })
		if queued != 20 || mc.state("a") != "running" {
			t.Errorf("queued %d, state %s", queued, mc.state("a"))
		}
	})
}

// After an exit xpcd did not ask for, KeepAlive relaunches no sooner than
// ThrottleInterval after the previous launch.
func TestMachineKeepAliveThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		mc := newMachine(t, def("ka", func(j *launchd.Job) { j.KeepAlive.Always = true }))
		if n := len(mc.fl.launches()); n != 1 {
			t.Fatalf("KeepAlive job not started at load: %d launches", n)
		}
		time.Sleep(2 * time.Second)
		mc.fl.launches()[0].die(exitStatus{known: true, code: 1})
		synctest.Wait()
		if st := mc.state("ka"); st != "throttled" {
			t.Fatalf("state after exit: %s", st)
		}
		time.Sleep(8*time.Second - time.Nanosecond)
		synctest.Wait()
		if n := len(mc.fl.launches()); n != 1 {
			t.Fatalf("relaunched after %v", time.Since(t0))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		ps := mc.fl.launches()
		if len(ps) != 2 || !ps[1].started.Equal(t0.Add(10*time.Second)) {
			t.Fatalf("relaunch at %v, want ThrottleInterval after the first launch", ps[len(ps)-1].started.Sub(t0))
		}
		// A run longer than ThrottleInterval is relaunched at once.
		time.Sleep(15 * time.Second)
		ps[1].die(exitStatus{known: true, code: 1})
		synctest.Wait()
		if n := len(mc.fl.launches()); n != 3 {
			t.Fatalf("%d launches, want an immediate relaunch", n)
		}
	})
}

// A crash of an instance that had checked the name in (it served), with
// clients queued: they stay queued for the next instance, which is
// launched (throttled) for them.
func TestMachineCrashKeepsQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc := newMachine(t, def("c", nil))
		mc.lookup("c.svc")
		mc.lookup("c.svc")
		inst := mc.inst("c")
		mc.do(func() { inst.checkins.add("c.svc") })
		mc.fl.launches()[0].die(exitStatus{known: true, signal: syscall.SIGSEGV})
		synctest.Wait()
		if st := mc.state("c"); st != "throttled" {
			t.Fatalf("state %s", st)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		var queued int
		var why string
		mc.do(func() { queued, why = len(mc.d.jobs["c"].queue), mc.d.jobs["c"].lastReason.why })
		if n := len(mc.fl.launches()); n != 2 || queued != 2 || why != reasonDemand {
			t.Fatalf("launches %d, queued %d, reason %s", n, queued, why)
		}
	})
}

// Idle exit: after IdleExitTimeout clean, terminate and SIGTERM; SIGKILL
// ExitTimeOut later. A dirty service is never stopped for idleness.
func TestMachineIdleExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc := newMachine(t, def("i", func(j *launchd.Job) {
			j.RunAtLoad = true
			j.IdleExitTimeout = 30 * time.Second
			j.ExitTimeOut = 5 * time.Second
		}))
		inst := mc.inst("i")
		p := mc.fl.launches()[0]
		// Start-up is not idleness: nothing happens before it reports.
		time.Sleep(time.Minute)
		synctest.Wait()
		if st := mc.state("i"); st != "running" {
			t.Fatalf("stopped before reporting: %s", st)
		}
		t0 := time.Now()
		mc.do(func() { mc.m.transactions(inst, nil, 0) })
		time.Sleep(30*time.Second - time.Nanosecond)
		synctest.Wait()
		if st := mc.state("i"); st != "running" {
			t.Fatalf("stopped after %v", time.Since(t0))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if st := mc.state("i"); st != "exiting" {
			t.Fatalf("state %s after IdleExitTimeout", st)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		sigs, at := p.signals()
		if len(sigs) != 2 || sigs[0] != syscall.SIGTERM || sigs[1] != syscall.SIGKILL || at[1].Sub(at[0]) != 5*time.Second {
			t.Fatalf("signals %v at %v", sigs, at)
		}
		var stop string
		mc.do(func() { stop = mc.d.jobs["i"].lastStop })
		if st := mc.state("i"); st != "waiting" || stop != stopIdle {
			t.Fatalf("after idle exit: %s (%s)", st, stop)
		}

		// Dirty: never stopped.
		mc.do(func() { mc.m.spawn(mc.d.jobs["i"], launchReason{why: reasonKickstart}) })
		inst = mc.inst("i")
		mc.do(func() { mc.m.transactions(inst, nil, 2) })
		time.Sleep(time.Hour)
		synctest.Wait()
		if st := mc.state("i"); st != "running" {
			t.Fatalf("dirty service: %s", st)
		}
		mc.do(func() { mc.m.transactions(inst, nil, 0) })
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if st := mc.state("i"); st != "exiting" {
			t.Fatalf("clean again: %s", st)
		}
	})
}

// An exit xpcd asked for is not throttled, and KeepAlive does not undo a
// stop xpcd made.
func TestMachineRequestedStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc := newMachine(t, def("r", func(j *launchd.Job) {
			j.KeepAlive.Crashed = new(bool) // restart after any end that is not a crash
			j.RunAtLoad = true
		}))
		inst := mc.inst("r")
		p := mc.fl.launches()[0]
		p.termExits = true
		mc.do(func() {
			inst.restart = launchReason{why: reasonKickstart}
			mc.m.stop(inst, stopKickstart)
		})
		// kickstart -k: relaunched at once, not ThrottleInterval later.
		if n := len(mc.fl.launches()); n != 2 {
			t.Fatalf("%d launches after kickstart -k", n)
		}
		p2 := mc.fl.launches()[1]
		p2.termExits = true
		mc.do(func() { mc.m.stop(mc.d.jobs["r"].inst, stopIdle) })
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(mc.fl.launches()); n != 2 || mc.state("r") != "waiting" {
			t.Fatalf("KeepAlive restarted a job xpcd stopped: %d launches, %s", n, mc.state("r"))
		}
	})
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Target
		bad  bool
	}{
		{in: "system", want: Target{Domain: "system"}},
		{in: "system/com.x", want: Target{Domain: "system", Label: "com.x"}},
		{in: "user/501", want: Target{Domain: "user/501", UID: 501}},
		{in: "gui/501/com.x", want: Target{Domain: "user/501", UID: 501, Label: "com.x"}},
		{in: "user/0/a/b", bad: true},
		{in: "user/x", bad: true},
		{in: "user/0501", bad: true},
		{in: "pid/1", bad: true},
		{in: "system/", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParseTarget(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseTarget(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestPermissions(t *testing.T) {
	for _, tc := range []struct {
		uid          uint32
		dom          string
		owner        uint32
		read, modify bool
	}{
		{0, "system", 0, true, true},
		{501, "system", 0, true, false},
		{501, "user/501", 501, true, true},
		{501, "user/502", 502, false, false},
		{0, "user/502", 502, true, true},
	} {
		if r, m := mayRead(tc.uid, tc.dom, tc.owner), mayModify(tc.uid, tc.dom, tc.owner); r != tc.read || m != tc.modify {
			t.Errorf("uid %d on %s: read %v modify %v, want %v %v", tc.uid, tc.dom, r, m, tc.read, tc.modify)
		}
	}
}

// KeepAlive OtherJobEnabled is looked at again when another job is loaded,
// unloaded, enabled or disabled, not only at load and exit.
func TestMachineOtherJobEnabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc := newMachine(t,
			def("a", func(j *launchd.Job) { j.KeepAlive.OtherJobEnabled = map[string]bool{"b": true} }),
			def("c", func(j *launchd.Job) { j.KeepAlive.OtherJobEnabled = map[string]bool{"d": false} }),
			def("d", nil))
		if mc.state("a") != "waiting" || mc.state("c") != "waiting" {
			t.Fatalf("a %s, c %s before anything changed", mc.state("a"), mc.state("c"))
		}
		// b is loaded: a starts.
		mc.do(func() {
			if _, oe := mc.m.bootstrap("user/0", 0, 0, def("b", nil)); oe != nil {
				t.Errorf("bootstrap b: %v", oe)
			}
		})
		if mc.state("a") != "running" || mc.reason("a") != reasonKeepAlive {
			t.Errorf("a: %s (%s) once b was loaded", mc.state("a"), mc.reason("a"))
		}
		// d goes: c starts.
		mc.do(func() {
			j := mc.d.jobs["d"]
			j.unloading = true
			mc.m.finishUnload(j)
		})
		if mc.state("c") != "running" || mc.reason("c") != reasonKeepAlive {
			t.Errorf("c: %s (%s) once d was unloaded", mc.state("c"), mc.reason("c"))
		}
	})
}

// A session asks the loop whether a user's domain exists only if neither
// it nor the supervisor has seen it made: domains are never removed, and a
// lookup that asked every time cost two more trips through the loop (each
// lookup without a shared Bootstrap is a new session).
func TestSessionEnsuresDomainOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		m := newSupervisor(supervisorConfig{
			log:       log,
			launcher:  &fakeLauncher{},
			domains:   map[string]uint32{DomainSystem: 0},
			jobs:      newJobStore(nil, log),
			agentsDir: t.TempDir(),
		})
		if err := m.start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.close(context.Background()) })
		ss := &session{m: m, peer: &xpc.Peer{UID: 1000}, log: log}
		exists := func() bool {
			var ok bool
			m.call(context.Background(), func() { ok = m.domains["user/1000"] != nil })
			return ok
		}
		ss.ensureOwn()
		if !exists() {
			t.Fatal("the user's domain was not made")
		}
		// Take it away behind the session's back: a session that asked
		// the loop again would make it anew.
		m.call(context.Background(), func() { delete(m.domains, "user/1000") })
		ss.ensureOwn()
		if exists() {
			t.Error("the session asked the loop again for a domain it had seen")
		}
		// Nor does a new session: the supervisor has seen the domain
		// made, and domains are never removed.
		(&session{m: m, peer: &xpc.Peer{UID: 1000}, log: log}).ensureOwn()
		if exists() {
			t.Error("a new session asked the loop for a domain the supervisor had seen made")
		}
		// Another user's domain, never made: the session asks, and it is
		// made.
		(&session{m: m, peer: &xpc.Peer{UID: 1001}, log: log}).ensureOwn()
		var made bool
		m.call(context.Background(), func() { made = m.domains["user/1001"] != nil })
		if !made {
			t.Error("a domain not seen before was not made")
		}
	})
}
