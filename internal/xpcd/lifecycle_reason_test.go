package xpcd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// Why a client's service went away, end to end: the service xpcd stops
// tells its clients why before SIGTERM can end it (ErrTerminationImminent,
// then ErrInterrupted, with the stop's reason); a service that goes
// unannounced is explained by xpcd (exit status, crash, an administrator's
// kill); and print counts the connections open now.

// raceNoExitSleep, as GORACE in a service's environment, keeps the race
// detector from making the service wait a second in its exit, during which
// it would go on serving (and announcing) after SIGTERM: these tests are
// about what happens when a service exits at once.
const raceNoExitSleep = "atexit_sleep_ms=0"

// events returns the events the log has received, in order.
func (e *eventLog) events() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.errs...)
}

// connReason returns the reason a connection error carries, nil if none.
func connReason(err error) *xpc.Reason {
	var ce *xpc.ConnError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return nil
}

// announcedThenGone checks that evs are ErrTerminationImminent, then
// ErrInterrupted, and nothing else, both with the reason code.
func announcedThenGone(evs []error, code string) error {
	if len(evs) != 2 || !errors.Is(evs[0], xpc.ErrTerminationImminent) || !errors.Is(evs[1], xpc.ErrInterrupted) {
		return fmt.Errorf("events %v, want ErrTerminationImminent then ErrInterrupted", evs)
	}
	for _, ev := range evs {
		if r := connReason(ev); r == nil || r.Code != code {
			return fmt.Errorf("%v: reason %+v, want %s", ev, r, code)
		}
	}
	return nil
}

// wantAnnounced checks that the connection heard that its service was
// about to be stopped, then that it went away, both for reason code.
func (e *eventLog) wantAnnounced(t *testing.T, code string) {
	t.Helper()
	if err := announcedThenGone(e.events(), code); err != nil {
		t.Error(err)
	}
}

// waitInterrupted waits for an ErrInterrupted event after the first from
// events, and returns the events from there on.
func (e *eventLog) waitInterrupted(t *testing.T, from int) []error {
	t.Helper()
	var evs []error
	waitFor(t, "the client to hear that its service went away", func() bool {
		evs = e.events()[from:]
		for _, ev := range evs {
			if errors.Is(ev, xpc.ErrInterrupted) {
				return true
			}
		}
		return false
	})
	return evs
}

// waitGone waits for an ErrInterrupted event after the first from events
// and returns its reason, failing if any event before it announced the
// service's exit.
func (e *eventLog) waitGone(t *testing.T, from int) *xpc.Reason {
	t.Helper()
	evs := e.waitInterrupted(t, from)
	if !errors.Is(evs[0], xpc.ErrInterrupted) {
		t.Errorf("events %v, want ErrInterrupted first: the service was not stopped by xpcd", evs)
	}
	for _, ev := range evs {
		if errors.Is(ev, xpc.ErrInterrupted) {
			return connReason(ev)
		}
	}
	return nil
}

// A service that idles out tells its clients so before it goes, whatever
// it does on SIGTERM (this one exits at once): each of three clients hears
// ErrTerminationImminent, then ErrInterrupted, both saying idle-exit, on
// each of five idle exits. (The idle timeout leaves the three pings of a
// round time to reach one instance on a busy machine.)
func TestLifecycleIdleExitAnnounced(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(h.lcJob("test.lidle", []string{"test.lidle.svc"}, map[string]string{"GORACE": raceNoExitSleep},
		map[string]any{"XPCIdleExitTimeout": 2}, ""))
	h.start()
	const rounds, clients = 5, 3
	var conns [clients]*xpc.Connection
	var logs [clients]*eventLog
	for i := range clients {
		conns[i], logs[i] = h.serviceConn("test.lidle.svc")
	}
	for round := range rounds {
		var marks [clients]int
		pids := map[int]bool{}
		for i, c := range conns {
			marks[i] = len(logs[i].events())
			pids[ping(t, c)] = true
		}
		if len(pids) != 1 {
			t.Fatalf("round %d: served by %v, want one instance", round, pids)
		}
		for i := range conns {
			// ErrTerminationImminent, if it came, was delivered first.
			if err := announcedThenGone(logs[i].waitInterrupted(t, marks[i]), xpc.ReasonIdleExit); err != nil {
				t.Fatalf("round %d, client %d: %v", round, i, err)
			}
		}
	}
	d := h.waitState("test.lidle", "waiting")
	if intOf(d, "runs") != rounds || strOf(d, "stop_reason") != "idle" {
		t.Errorf("after %d idle exits: %s", rounds, xpc.Format(d))
	}
}

// A service that goes unannounced is explained by xpcd, to the client's
// event and to the calls it fails: its exit status, the signal it died of,
// an administrator's kill. One stopped by xpcd says why itself: bootout,
// memory pressure, xpcd shutting down.
func TestLifecycleInterruptedReasons(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var pressure atomic.Bool
	h.cfg.PressureInterval = 20 * time.Millisecond
	h.cfg.Pressure = PressureFunc(func() (bool, error) { return pressure.Load(), nil })
	job := func(label string, env map[string]string, extra map[string]any) {
		e := map[string]string{"GORACE": raceNoExitSleep}
		for k, v := range env {
			e[k] = v
		}
		h.writePlist(h.lcJob(label, []string{label + ".svc"}, e, extra, ""))
	}
	job("test.lwhy.exit", nil, nil)
	job("test.lwhy.crash", map[string]string{"XPCD_LC_DFL_SEGV": "1"}, nil)
	job("test.lwhy.many", map[string]string{"XPCD_LC_DFL_SEGV": "1"}, nil)
	job("test.lwhy.kill", nil, nil)
	job("test.lwhy.kill9", nil, nil)
	job("test.lwhy.bootout", nil, nil)
	job("test.lwhy.px", nil, map[string]any{"EnablePressuredExit": true})
	job("test.lwhy.shut", nil, nil)
	h.start()

	t.Run("exited", func(t *testing.T) {
		c, ev := h.serviceConn("test.lwhy.exit.svc")
		pid := ping(t, c)
		if _, err := call(t, c, "exit", "status", 3); err != nil {
			t.Fatal(err)
		}
		r := ev.waitGone(t, 0)
		if r == nil || r.Code != xpc.ReasonExited || r.ExitStatus != 3 || !strings.Contains(r.Description, "pid "+strconv.Itoa(pid)) {
			t.Errorf("reason %+v, want exited with status 3, naming pid %d", r, pid)
		}
		if cr := c.Reason(); cr == nil || cr.Code != xpc.ReasonExited {
			t.Errorf("the connection's Reason: %+v", cr)
		}
	})
	t.Run("signaled", func(t *testing.T) {
		c, ev := h.serviceConn("test.lwhy.crash.svc")
		pid := ping(t, c)
		held := c.Go(testCtx(t), xpc.Dict("cmd", "hold"))
		waitFor(t, "the held request", func() bool { return intOf(h.print("test.lwhy.crash"), "transactions") == 1 })
		if err := unix.Kill(pid, syscall.SIGSEGV); err != nil {
			t.Fatal(err)
		}
		_, err := held.Wait(testCtx(t))
		r := connReason(err)
		if !errors.Is(err, xpc.ErrInterrupted) || r == nil || r.Code != xpc.ReasonSignaled || r.Signal != int(syscall.SIGSEGV) ||
			!strings.Contains(err.Error(), "SIGSEGV") {
			t.Errorf("the pending call: %v (reason %+v), want interrupted, signaled by SIGSEGV", err, r)
		}
		if r := ev.waitGone(t, 0); r == nil || r.Code != xpc.ReasonSignaled || r.Signal != int(syscall.SIGSEGV) {
			t.Errorf("the event's reason %+v, want signaled by SIGSEGV", r)
		}
	})
	t.Run("many through one Bootstrap", func(t *testing.T) {
		// More connections than xpcd lets one bootstrap connection have
		// questions waiting, all asking before the service has exited
		// (it ends their connections first): those it turns away as
		// busy ask again.
		b, err := xpc.NewBootstrap(xpc.WithBootstrapSocket(h.paths.Socket))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var logs []*eventLog
		var conns []*xpc.Connection
		for range 3 * maxWaitsPerSession {
			c, err := xpc.NewServiceConnection("test.lwhy.many.svc", xpc.WithBootstrap(b))
			if err != nil {
				t.Fatal(err)
			}
			ev := &eventLog{}
			c.SetHandler(ev)
			c.Activate()
			defer c.Cancel()
			ping(t, c)
			logs, conns = append(logs, ev), append(conns, c)
		}
		if _, err := call(t, conns[0], "drop", "status", 7, "after_ms", 100); err != nil {
			t.Fatal(err)
		}
		for i, ev := range logs {
			if r := ev.waitGone(t, 0); r == nil || r.Code != xpc.ReasonExited || r.ExitStatus != 7 {
				t.Errorf("connection %d: reason %+v, want exited with status 7", i, r)
			}
		}
	})
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		label := map[syscall.Signal]string{syscall.SIGTERM: "test.lwhy.kill", syscall.SIGKILL: "test.lwhy.kill9"}[sig]
		t.Run("kill "+unix.SignalName(sig), func(t *testing.T) {
			c, ev := h.serviceConn(label + ".svc")
			ping(t, c)
			h.mustAdmin(bootstrap.OpKill, bootstrap.KeyTarget, h.target(label), bootstrap.KeySignal, int64(sig))
			if r := ev.waitGone(t, 0); r == nil || r.Code != xpc.ReasonKilled || !strings.Contains(r.Description, unix.SignalName(sig)) {
				t.Errorf("reason %+v, want killed, naming %s", r, unix.SignalName(sig))
			}
		})
	}
	t.Run("bootout", func(t *testing.T) {
		c, ev := h.serviceConn("test.lwhy.bootout.svc")
		ping(t, c)
		h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.lwhy.bootout"))
		waitFor(t, "the client to hear of the bootout", func() bool { return ev.has(xpc.ErrInterrupted) })
		ev.wantAnnounced(t, xpc.ReasonKilled)
	})
	t.Run("memory pressure", func(t *testing.T) {
		c, ev := h.serviceConn("test.lwhy.px.svc")
		ping(t, c)
		pressure.Store(true)
		waitFor(t, "the client to hear of the pressured exit", func() bool { return ev.has(xpc.ErrInterrupted) })
		pressure.Store(false)
		ev.wantAnnounced(t, xpc.ReasonMemoryPressure)
	})
	t.Run("shutdown", func(t *testing.T) {
		c, ev := h.serviceConn("test.lwhy.shut.svc")
		ping(t, c)
		h.close(h.d) // it stops its services
		waitFor(t, "the client to hear of the shutdown", func() bool { return ev.has(xpc.ErrInterrupted) })
		ev.wantAnnounced(t, xpc.ReasonShuttingDown)
	})
}

// A service gets SIGTERM as soon as it has answered terminate (this one
// exits at SIGTERM only). One that speaks the check-in protocol but never
// answers (it hangs) gets it after termWait: not at once, and well before
// SIGKILL at ExitTimeOut. One that never spoke on its channel gets it at
// once.
func TestLifecycleTerminateUnanswered(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.lmute", names: []string{"test.lmute.svc"},
		env: map[string]string{"XPCD_TEST_MUTE_TERM": "1", "GORACE": raceNoExitSleep}, extra: map[string]any{"ExitTimeOut": 4}})
	h.writePlist(h.lcJob("test.lplain", nil, map[string]string{"XPCD_LC_PLAIN": "1", "GORACE": raceNoExitSleep},
		map[string]any{"RunAtLoad": true, "ExitTimeOut": 4}, ""))
	h.writePlist(h.lcJob("test.lanswer", []string{"test.lanswer.svc"}, map[string]string{"XPCD_LC_SIGTERM_ONLY": "1", "GORACE": raceNoExitSleep},
		map[string]any{"ExitTimeOut": 4}, ""))
	h.start()
	h.lookupPing("test.lmute.svc")
	h.waitState("test.lplain", "running")
	answer, ev := h.serviceConn("test.lanswer.svc")
	ping(t, answer)
	for _, c := range []struct {
		label    string
		min, max time.Duration
	}{
		{"test.lanswer", 0, termWait(4*time.Second) - 200*time.Millisecond},
		{"test.lmute", termWait(4 * time.Second), 3 * time.Second},
		{"test.lplain", 0, termWait(4*time.Second) - 200*time.Millisecond},
	} {
		start := time.Now()
		h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target(c.label), bootstrap.KeyWait, true)
		took := time.Since(start)
		if took < c.min || took > c.max {
			t.Errorf("%s stopped in %v, want %v to %v", c.label, took, c.min, c.max)
		}
	}
	if strings.Contains(h.logs.String(), "SIGKILL") {
		t.Errorf("a service was killed, not terminated")
	}
	waitFor(t, "the client to hear of the bootout", func() bool { return ev.has(xpc.ErrInterrupted) })
	ev.wantAnnounced(t, xpc.ReasonKilled)
}

// print's connections is what the service has open now, as it reports it
// (unknown for a process that does not report it), connections_total the
// clients handed to it since it started.
func TestLifecycleConnectionsOpen(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(h.lcJob("test.lconn", []string{"test.lconn.svc"}, nil, nil, ""))
	h.writePlist(h.lcJob("test.lconn.plain", nil, map[string]string{"XPCD_LC_PLAIN": "1"}, map[string]any{"RunAtLoad": true}, ""))
	h.start()
	var conns []*xpc.Connection
	for range 3 {
		c, _ := h.serviceConn("test.lconn.svc")
		ping(t, c)
		conns = append(conns, c)
	}
	counts := func(open, total int) func() bool {
		return func() bool {
			d := h.print("test.lconn")
			return intOf(d, bootstrap.KeyConnections) == open && intOf(d, "connections_total") == total
		}
	}
	waitFor(t, "3 open of 3", counts(3, 3))
	conns[0].Cancel()
	waitFor(t, "2 open of 3", counts(2, 3))
	d := h.waitState("test.lconn.plain", "running")
	if v, _ := d.Get(bootstrap.KeyConnections).(xpc.String); v != "unknown" {
		t.Errorf("a process that does not report its connections: %s", xpc.Format(d))
	}
}

// exit-reason tells only a caller that may look the service up: user B is
// not told why user A's agent ended, nor about it by another name, nor
// about a system daemon whose name requires uid 0; A is, and anyone is
// about a system daemon without a requirement.
func TestExitReasonPolicy(t *testing.T) {
	b := newTestUser(t)
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.writePlist(h.lcJob("test.xr.sys", []string{"test.xr.sys.svc"}, nil, nil, in.exe), h.paths.Daemons)
	h.writePlist(h.reqJob("test.xr.root", map[string]string{"test.xr.root.svc": "uid 0"}, in.exe), h.paths.Daemons)
	h.start()
	extra := filepath.Join(h.dir, "extra")
	os.Mkdir(extra, 0o755)
	aPlist := h.writePlist(h.lcJob("test.xr.a", []string{"test.xr.a.svc"}, nil, nil, in.exe), extra)
	aDom := UserDomain(isoUserA)
	h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyDomain, aDom, bootstrap.KeyPath, aPlist)
	aTarget, sysTarget := aDom+"/test.xr.a", "system/test.xr.sys"
	if r := isoClient(t, in.exe, isoUserA, isoUserA, h.dir, []isoStep{{ID: "a", Op: "lookup", Name: "test.xr.a.svc"}})["a"]; !r.OK {
		t.Fatalf("A's lookup of its agent: %+v", r)
	}
	aPID := intOf(h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, aTarget), "pid")
	sysPID := h.lookupPing("test.xr.sys.svc")
	rootPID := h.lookupPing("test.xr.root.svc")
	rootTarget := "system/test.xr.root"
	for _, target := range []string{aTarget, sysTarget, rootTarget} {
		h.mustAdmin(bootstrap.OpKill, bootstrap.KeyTarget, target, bootstrap.KeySignal, int64(syscall.SIGKILL))
		waitFor(t, target+" to end", func() bool {
			return strOf(h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, target), "state") == "waiting"
		})
	}
	ask := func(id, name string, pid int) isoStep {
		return isoStep{ID: id, Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpExitReason, bootstrap.KeyName: name},
			Ints: map[string]int64{bootstrap.KeyPID: int64(pid)}}
	}
	resB := isoClient(t, in.exe, b.uid, b.gid, h.dir, []isoStep{
		ask("a", "test.xr.a.svc", aPID),
		ask("a-as-sys", "test.xr.sys.svc", aPID),
		ask("sys", "test.xr.sys.svc", sysPID),
		ask("root-only", "test.xr.root.svc", rootPID),
	})
	resA := isoClient(t, in.exe, isoUserA, isoUserA, h.dir, []isoStep{ask("a", "test.xr.a.svc", aPID)})
	for _, c := range []struct {
		who string
		r   isoResult
		ok  bool
	}{{"B about A's agent", resB["a"], false}, {"B about A's agent as the daemon", resB["a-as-sys"], false},
		{"B about the system daemon", resB["sys"], true}, {"A about its agent", resA["a"], true},
		{"B about a daemon whose name requires uid 0", resB["root-only"], false}} {
		if c.r.OK != c.ok || (!c.ok && c.r.Reason != bootstrap.ReasonNotFound) {
			t.Errorf("%s: %+v, want answered %v (else not-found)", c.who, c.r, c.ok)
		}
	}
	d, err := h.admin(bootstrap.OpExitReason, bootstrap.KeyName, "test.xr.a.svc", bootstrap.KeyPID, aPID)
	if err != nil || strOf(d, bootstrap.KeyReason) != bootstrap.ReasonKilled {
		t.Errorf("root about A's agent: %v %v, want killed", d, err)
	}
	if d, err := h.admin(bootstrap.OpExitReason, bootstrap.KeyName, "test.xr.root.svc", bootstrap.KeyPID, rootPID); err != nil || strOf(d, bootstrap.KeyReason) != bootstrap.ReasonKilled {
		t.Errorf("root about the daemon that requires uid 0: %v %v, want killed", d, err)
	}
}
