package xpcd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/criteria"
	"github.com/goxpc/xpc/launchd"
)

// Tests of the activities' scheduler on synctest's clock, with the fake
// launcher of machine_test.go and a criteria.Fake: the service's side of
// the check-in channel is played by calling the loop's handlers.

// newActMachine is newMachine with criteria src, recheck, and records
// restored as if read from activities.json.
func newActMachine(t *testing.T, src criteria.Sources, recheck time.Duration, recs []activityRecord, defs ...*launchd.Job) *machine {
	fl := &fakeLauncher{}
	m := newSupervisor(supervisorConfig{
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		launcher: fl,
		domains:  map[string]uint32{"user/0": 0},
		userMode: true,
		criteria: src,
		recheck:  recheck,
	})
	for _, r := range recs {
		if m.acts.stored[r.Domain] == nil {
			m.acts.stored[r.Domain] = map[string][]activityRecord{}
		}
		m.acts.stored[r.Domain][r.Label] = append(m.acts.stored[r.Domain][r.Label], r)
	}
	d := m.domains["user/0"]
	for _, def := range defs {
		if _, err := m.addJob(d, def, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.close(context.Background()) })
	synctest.Wait()
	return &machine{t: t, m: m, fl: fl, d: d}
}

// actDef is a job with no MachServices that declares the activity "a".
func actDef(label string, c xpc.ActivityCriteria) *launchd.Job {
	return def(label, func(j *launchd.Job) {
		j.MachServices = nil
		j.Activities = map[string]xpc.ActivityCriteria{"a": c}
	})
}

// act returns a snapshot of the activity "a" of label.
func (mc *machine) act(label string) activity {
	var a activity
	mc.do(func() { a = *mc.d.jobs[label].acts["a"] })
	return a
}

// checkIn plays the service registering for "a" (without criteria).
func (mc *machine) checkIn(label string) {
	mc.t.Helper()
	mc.do(func() {
		j := mc.d.jobs[label]
		if _, oe := mc.m.activityRegister(j.inst, "a", nil); oe != nil {
			mc.t.Fatalf("register: %v", oe)
		}
		mc.m.activityCheckedIn(j.acts["a"], j.inst)
	})
}

// setState plays the service's OpActivityState.
func (mc *machine) setState(label, state string) {
	mc.t.Helper()
	mc.do(func() {
		j := mc.d.jobs[label]
		if oe := mc.m.activityState(j.inst, "a", state); oe != nil {
			mc.t.Fatalf("state %s: %v", state, oe)
		}
	})
}

// utility is criteria that read nothing of the machine.
func utility(c xpc.ActivityCriteria) xpc.ActivityCriteria {
	c.Priority, c.AllowBattery = xpc.PriorityUtility, true
	return c
}

// Interval: due Interval after registration, launched for it, delivered
// once the instance checks in, and due again Interval after the run
// started, to the instance that still runs.
func TestActivityMachineInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		mc := newActMachine(t, criteria.NewFake(), time.Hour, nil, actDef("iv", utility(xpc.ActivityCriteria{Interval: time.Minute})))
		sleepTo(t0, 59*time.Second)
		if n := len(mc.fl.launches()); n != 0 {
			t.Fatalf("%d launches before due", n)
		}
		sleepTo(t0, time.Minute)
		if n := len(mc.fl.launches()); n != 1 || mc.reason("iv") != reasonActivity {
			t.Fatalf("at 60s: %d launches, reason %q", n, mc.reason("iv"))
		}
		if a := mc.act("iv"); a.phase != phasePending {
			t.Fatalf("before check-in: phase %d", a.phase)
		}
		sleepTo(t0, 61*time.Second)
		mc.checkIn("iv")
		if a := mc.act("iv"); a.phase != phaseRun || !a.runStart.Equal(t0.Add(61*time.Second)) {
			t.Fatalf("after check-in: phase %d, start %v", a.phase, a.runStart.Sub(t0))
		}
		sleepTo(t0, 70*time.Second)
		mc.setState("iv", bootstrap.ActivityDone)
		sleepTo(t0, 120*time.Second)
		if a := mc.act("iv"); a.phase != phaseWait {
			t.Fatalf("at 120s: phase %d; due at 121s (interval after the run started)", a.phase)
		}
		sleepTo(t0, 121*time.Second)
		a := mc.act("iv")
		if a.phase != phaseRun || len(mc.fl.launches()) != 1 {
			t.Fatalf("at 121s: phase %d, %d launches (want delivered to the running instance)", a.phase, len(mc.fl.launches()))
		}
	})
}

// Delay and grace: a maintenance activity is held back by pressure for
// GracePeriod past due, read again every recheck, and runs when the grace
// period ends.
func TestActivityMachineDelayGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		f := criteria.NewFake()
		f.Set(criteria.CPUPressure, true)
		f.Set(criteria.MemoryPressure, false)
		f.Set(criteria.IOPressure, false)
		c := xpc.ActivityCriteria{Delay: 30 * time.Second, GracePeriod: 20 * time.Second, AllowBattery: true}
		mc := newActMachine(t, f, 7*time.Second, nil, actDef("gr", c))
		sleepTo(t0, 30*time.Second)
		a := mc.act("gr")
		if len(mc.fl.launches()) != 0 || !a.evaluated || len(a.unmet) != 1 || a.unmet[0].Key != xpc.CriteriaPriority {
			t.Fatalf("at 30s: %d launches, unmet %v", len(mc.fl.launches()), a.unmet)
		}
		reads := f.Reads(criteria.CPUPressure)
		sleepTo(t0, 37*time.Second)
		if f.Reads(criteria.CPUPressure) != reads+1 {
			t.Fatalf("not read again at the recheck: %d reads", f.Reads(criteria.CPUPressure))
		}
		sleepTo(t0, 49*time.Second)
		if len(mc.fl.launches()) != 0 {
			t.Fatal("ran within the grace period under pressure")
		}
		sleepTo(t0, 50*time.Second)
		if len(mc.fl.launches()) != 1 {
			t.Fatalf("at 50s (grace over): %d launches", len(mc.fl.launches()))
		}
	})
}

// Coalescing: an activity whose runs were missed while xpcd was down (its
// record says its base was ten intervals ago) runs once at start, and
// then Interval after that run.
func TestActivityMachineCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		c := utility(xpc.ActivityCriteria{Interval: time.Hour}).Normalized()
		rec := activityRecord{Domain: "user/0", Label: "co", ID: "a", Criteria: c, Declared: true,
			Base: t0.Add(-10 * time.Hour), LastRun: t0.Add(-10 * time.Hour)}
		mc := newActMachine(t, criteria.NewFake(), time.Hour, []activityRecord{rec}, actDef("co", c))
		if a := mc.act("co"); !a.lastRun.Equal(rec.LastRun) {
			t.Fatalf("last run not restored: %v", a.lastRun)
		}
		if n := len(mc.fl.launches()); n != 1 {
			t.Fatalf("at start: %d launches, want 1 for ten missed runs", n)
		}
		mc.checkIn("co")
		mc.setState("co", bootstrap.ActivityDone)
		sleepTo(t0, 59*time.Minute)
		if a := mc.act("co"); a.phase != phaseWait || !a.due().Equal(t0.Add(time.Hour)) {
			t.Fatalf("after the run: phase %d, due %v", a.phase, a.due().Sub(t0))
		}
	})
}

// Deferral: the service defers; the activity is eligible again after a
// backoff that doubles (1 s, 2 s, 4 s) and is reset by done. An instance
// that exits while the activity runs defers it too.
func TestActivityMachineDefer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		mc := newActMachine(t, criteria.NewFake(), time.Hour, nil, actDef("df", utility(xpc.ActivityCriteria{Interval: time.Minute})))
		sleepTo(t0, time.Minute)
		mc.checkIn("df")
		at := time.Minute
		for i, back := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			mc.setState("df", bootstrap.ActivityDefer)
			if a := mc.act("df"); a.phase != phaseWait || a.defers != i+1 {
				t.Fatalf("defer %d: phase %d, defers %d", i+1, a.phase, a.defers)
			}
			sleepTo(t0, at+back-time.Millisecond)
			if a := mc.act("df"); a.phase != phaseWait {
				t.Fatalf("defer %d: ran again before its backoff of %v", i+1, back)
			}
			at += back
			sleepTo(t0, at)
			if a := mc.act("df"); a.phase != phaseRun {
				t.Fatalf("defer %d: not run again after %v", i+1, back)
			}
		}
		mc.setState("df", bootstrap.ActivityDone)
		if a := mc.act("df"); a.defers != 0 || !a.due().Equal(t0.Add(at+time.Minute)) {
			t.Fatalf("after done: defers %d, due %v", a.defers, a.due().Sub(t0))
		}
		sleepTo(t0, at+time.Minute)
		mc.fl.launches()[0].die(exitStatus{known: true, signal: 9})
		synctest.Wait()
		if a := mc.act("df"); a.phase != phaseWait || a.defers != 1 {
			t.Fatalf("after its instance died running it: phase %d, defers %d", a.phase, a.defers)
		}
	})
}

// Criteria flipping: an activity waiting on the battery runs when the
// source says it changed (no recheck needed), and a running one is told to
// defer when its criteria stop holding.
func TestActivityMachineCriteriaFlip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		f := criteria.NewFake()
		f.Set(criteria.OnBattery, true)
		c := xpc.ActivityCriteria{Interval: time.Minute, Priority: xpc.PriorityUtility}
		mc := newActMachine(t, f, time.Hour, nil, actDef("fl", c))
		sleepTo(t0, 90*time.Second)
		if a := mc.act("fl"); len(mc.fl.launches()) != 0 || len(a.unmet) != 1 || a.unmet[0].Key != xpc.CriteriaAllowBattery {
			t.Fatalf("on battery: %d launches, unmet %v", len(mc.fl.launches()), a.unmet)
		}
		f.Set(criteria.OnBattery, false)
		synctest.Wait()
		if len(mc.fl.launches()) != 1 {
			t.Fatal("not launched when the battery criterion came to hold")
		}
		mc.checkIn("fl")
		f.Set(criteria.OnBattery, true)
		synctest.Wait()
		if a := mc.act("fl"); a.phase != phaseRun || !a.shouldDefer {
			t.Fatalf("running, criteria gone: phase %d, shouldDefer %v", a.phase, a.shouldDefer)
		}
	})
}

// One timer: however many activities, the scheduler arms one timer for
// the earliest, and wakes only when one is due.
func TestActivityMachineOneTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		var defs []*launchd.Job
		for i := range 50 {
			defs = append(defs, actDef("j"+string(rune('A'+i%26))+string(rune('a'+i/26)),
				utility(xpc.ActivityCriteria{Interval: time.Duration(i+1) * time.Hour})))
		}
		mc := newActMachine(t, criteria.NewFake(), time.Hour, nil, defs...)
		var arms, fires, n int
		var at time.Time
		mc.do(func() { arms, fires, n, at = mc.m.acts.arms, mc.m.acts.fires, mc.m.acts.heap.Len(), mc.m.acts.timerAt })
		if n != 50 || !at.Equal(t0.Add(time.Hour)) || fires != 0 || arms != 1 {
			t.Fatalf("heap %d, timer at %v, armed %d times, fires %d", n, at.Sub(t0), arms, fires)
		}
		sleepTo(t0, 59*time.Minute)
		mc.do(func() { fires = mc.m.acts.fires })
		if fires != 0 {
			t.Fatalf("%d wake-ups before the first activity was due", fires)
		}
		sleepTo(t0, time.Hour)
		mc.do(func() { fires = mc.m.acts.fires })
		t.Logf("50 activities: timer armed %d times at load, %d wake-ups in the first hour", arms, fires)
		if fires != 1 {
			t.Fatalf("%d wake-ups at the first due time", fires)
		}
	})
}

// Limits: a job may have maxActivitiesPerJob activities, a user domain of
// a root xpcd maxActivitiesPerUserDomain over all its jobs; past either,
// a registration is refused naming the rule, and a removal makes room.
func TestActivityMachineLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newSupervisor(supervisorConfig{
			log: slog.New(slog.NewTextHandler(io.Discard, nil)), launcher: &fakeLauncher{},
			domains: map[string]uint32{"user/1000": 1000}, root: true,
		})
		d := m.domains["user/1000"]
		if err := m.start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.close(context.Background()) })
		c := utility(xpc.ActivityCriteria{Interval: time.Hour})
		var refusals []*opError
		m.call(context.Background(), func() {
			for i := 0; m.acts.byUser[d.bucket] < maxActivitiesPerUserDomain; i++ {
				j, oe := m.addJob(d, def(fmt.Sprintf("lim.%d", i), func(j *launchd.Job) { j.MachServices = nil }), false)
				if oe != nil {
					t.Fatal(oe)
				}
				j.inst = &instance{job: j}
				for k := 0; ; k++ {
					_, oe := m.activityRegister(j.inst, fmt.Sprintf("a%d", k), &c)
					if oe != nil {
						refusals = append(refusals, oe)
						break
					}
				}
				if i == 0 && len(j.acts) != maxActivitiesPerJob {
					t.Errorf("first job: %d activities", len(j.acts))
				}
			}
			x, _ := m.addJob(d, def("lim.extra", func(j *launchd.Job) { j.MachServices = nil }), false)
			x.inst = &instance{job: x}
			if _, oe := m.activityRegister(x.inst, "one", &c); oe != nil {
				refusals = append(refusals, oe)
			}
			j := d.jobs["lim.0"]
			m.removeActivity(j.acts["a0"])
			if _, oe := m.activityRegister(j.inst, "again", &c); oe != nil {
				t.Errorf("after a removal: %v", oe)
			}
		})
		last := refusals[len(refusals)-1]
		if last.reason != bootstrap.ReasonDenied || last.extra == nil || !strings.Contains(last.desc, "has 1024 activities") {
			t.Errorf("domain limit: %+v", last)
		}
		if rule, _ := refusals[0].extra.String(bootstrap.KeyRule); rule != bootstrap.RuleActivityLimit || !strings.Contains(refusals[0].desc, "64 activities") {
			t.Errorf("job limit: %+v", refusals[0])
		}
	})
}
