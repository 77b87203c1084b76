package xpcd

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/goxpc/xpc"
)

// Under memory pressure (an injected PressureSource), only clean services
// that enable pressured exit are stopped: one without EnablePressuredExit
// keeps running, and so does a dirty one (a request it holds unanswered is
// an open transaction) until it is clean again.
func TestLifecyclePressuredExit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var pressure atomic.Bool
	var asked atomic.Int64
	h.cfg.PressureInterval = 20 * time.Millisecond
	h.cfg.Pressure = PressureFunc(func() (bool, error) {
		asked.Add(1)
		return pressure.Load(), nil
	})
	px := map[string]any{"EnablePressuredExit": true, "ExitTimeOut": 5}
	h.writePlist(h.lcJob("test.lpx.clean", []string{"test.lpx.clean.svc"}, nil, px, ""))
	h.writePlist(h.lcJob("test.lpx.dirty", []string{"test.lpx.dirty.svc"}, nil, px, ""))
	h.writePlist(h.lcJob("test.lpx.off", []string{"test.lpx.off.svc"}, nil, map[string]any{"ExitTimeOut": 5}, ""))
	h.start()

	clean, _ := h.serviceConn("test.lpx.clean.svc")
	dirty, _ := h.serviceConn("test.lpx.dirty.svc")
	off, _ := h.serviceConn("test.lpx.off.svc")
	cleanPID, dirtyPID, offPID := ping(t, clean), ping(t, dirty), ping(t, off)
	// The dirty one holds a request unanswered.
	held := dirty.Go(testCtx(t), xpc.Dict("cmd", "hold"))
	waitFor(t, "the dirty service to report its transaction", func() bool {
		return intOf(h.print("test.lpx.dirty"), "transactions") == 1
	})
	// All three reported a count: each is a candidate as far as the
	// supervisor knows, and none was stopped without pressure.
	time.Sleep(100 * time.Millisecond)
	for _, l := range []string{"test.lpx.clean", "test.lpx.dirty", "test.lpx.off"} {
		if st := strOf(h.print(l), "state"); st != "running" {
			t.Fatalf("%s without pressure: %s", l, st)
		}
	}

	pressure.Store(true)
	d := h.waitState("test.lpx.clean", "waiting")
	if strOf(d, "stop_reason") != "pressure" || intOf(d, "runs") != 1 {
		t.Errorf("the clean service under pressure: %s", xpc.Format(d))
	}
	// Many more rounds of pressure: the others stay.
	n := asked.Load()
	waitFor(t, "ten more rounds of pressure", func() bool { return asked.Load() >= n+10 })
	for _, c := range []struct {
		label string
		pid   int
	}{{"test.lpx.off", offPID}, {"test.lpx.dirty", dirtyPID}} {
		d := h.print(c.label)
		if strOf(d, "state") != "running" || intOf(d, "pid") != c.pid || d.Get("stop_reason") != nil {
			t.Errorf("%s under pressure: %s", c.label, xpc.Format(d))
		}
	}
	if got := ping(t, off); got != offPID {
		t.Errorf("the service without EnablePressuredExit answered from pid %d, want %d", got, offPID)
	}

	// Clean again: now it goes too.
	if _, err := call(t, dirty, "release"); err != nil {
		t.Fatal(err)
	}
	if _, err := held.Wait(testCtx(t)); err != nil {
		t.Errorf("the held request: %v", err)
	}
	d = h.waitState("test.lpx.dirty", "waiting")
	if strOf(d, "stop_reason") != "pressure" {
		t.Errorf("the formerly dirty service under pressure: %s", xpc.Format(d))
	}
	if st := strOf(h.print("test.lpx.off"), "state"); st != "running" {
		t.Errorf("the service without EnablePressuredExit after pressure: %s", st)
	}

	// Pressure over: the next request launches the stopped service again.
	pressure.Store(false)
	if pid := pingInterrupted(t, clean); pid == cleanPID || pid == 0 {
		t.Errorf("after pressure, served by pid %d (the stopped one was %d)", pid, cleanPID)
	}
}
