package xpcd

import (
	"context"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/criteria"
)

// Running activities: the one timer, the criteria read off the loop, the
// launch of the job and the delivery of the activity once its instance
// has registered or checked in for it, and what the service says after.

// Bounds of the criteria reads.
const (
	// evalTimeout bounds the reads of one activity's criteria.
	evalTimeout = 5 * time.Second
	// evalBatch is the most activities one batch reads.
	evalBatch = 256
)

// reasonActivity is the launch reason of a job launched to run one of its
// activities.
const reasonActivity = "activity"

// schedule computes a's next wake-up and re-arms the timer.
func (m *supervisor) schedule(a *activity) {
	var w time.Time
	switch {
	case a.removed || a.evaluating || m.acts.stopped:
	case a.phase == phaseWait && !a.evaluated:
		w = a.eligible()
	case a.phase == phaseWait:
		w = waitWake(a.actTimes, a.unmet, a.evalAt, m.recheck)
	case a.phase == phaseRun && !a.manual && readsUnsignalled(a.crit, a.held(a.evalAt)):
		w = a.evalAt.Add(m.recheck)
	}
	m.acts.heap.setWake(a, w)
	m.armActivities()
}

// armActivities arms the timer for the earliest wake-up, if it is not
// already.
func (m *supervisor) armActivities() {
	h := m.acts.heap
	if h.Len() == 0 || m.acts.stopped {
		if m.acts.timer != nil && !m.acts.timerAt.IsZero() {
			m.acts.timer.Stop()
			m.acts.timerAt = time.Time{}
		}
		return
	}
	at := h[0].wakeAt
	if at.Equal(m.acts.timerAt) {
		return
	}
	m.acts.timerAt = at
	m.acts.arms++
	d := max(time.Until(at), 0)
	if m.acts.timer == nil {
		m.acts.timer = time.AfterFunc(d, func() { m.post(m.activityTimer) })
		return
	}
	m.acts.timer.Reset(d)
}

// activityTimer: the earliest wake-up has come.
func (m *supervisor) activityTimer() {
	m.acts.timerAt = time.Time{}
	m.acts.fires++
	due := m.acts.heap.popDue(time.Now())
	m.evaluate(due)
	m.armActivities()
}

// evaluate reads the criteria of as, off the loop, one batch at a time.
func (m *supervisor) evaluate(as []*activity) {
	for _, a := range as {
		if !a.evaluating && !a.removed {
			a.evaluating = true
			m.acts.heap.setWake(a, time.Time{})
			m.acts.evalQueue = append(m.acts.evalQueue, a)
		}
	}
	if m.acts.evalBusy || len(m.acts.evalQueue) == 0 || m.acts.stopped {
		return
	}
	n := min(len(m.acts.evalQueue), evalBatch)
	batch := make([]evalJob, n)
	for i, a := range m.acts.evalQueue[:n] {
		uid := criteria.AnyUser
		if a.job.dom.name != DomainSystem {
			uid = a.job.dom.owner
		}
		batch[i] = evalJob{a: a, gen: a.gen, crit: a.crit, uid: uid, held: a.held(time.Now())}
	}
	m.acts.evalQueue = append(m.acts.evalQueue[:0], m.acts.evalQueue[n:]...)
	m.acts.evalBusy = true
	src := m.criteria
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		memo := newMemoSources(src)
		for i := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), evalTimeout)
			batch[i].unmet = criteria.Evaluate(ctx, memo, batch[i].crit, batch[i].uid, batch[i].held)
			cancel()
		}
		m.post(func() { m.evaluated(batch) })
	}()
}

// evalJob is one activity's criteria read.
type evalJob struct {
	a     *activity
	gen   uint64
	crit  xpc.ActivityCriteria
	uid   uint32
	held  bool
	unmet []criteria.Unmet
}

// evaluated: a batch of reads is back.
func (m *supervisor) evaluated(batch []evalJob) {
	m.acts.evalBusy = false
	now := time.Now()
	for _, e := range batch {
		a := e.a
		a.evaluating = false
		if a.removed {
			continue
		}
		if a.gen != e.gen {
			m.schedule(a) // changed meanwhile: read again
			continue
		}
		a.evalAt = now
		switch a.phase {
		case phaseWait:
			if len(e.unmet) == 0 && !now.Before(a.eligible()) {
				m.startActivity(a, false)
				continue
			}
			a.evaluated, a.unmet = true, e.unmet
		case phaseRun:
			if hold := len(e.unmet) > 0; hold != a.shouldDefer && !a.manual {
				a.shouldDefer = hold
				m.sendActivity(a, xpc.Dict(bootstrap.KeyOp, bootstrap.OpActivityShouldDefer,
					bootstrap.KeyActivityID, a.id, bootstrap.KeyShouldDefer, hold))
			}
		}
		m.schedule(a)
	}
	m.evaluate(nil)
}

// criteriaChanged: a source says a condition may have changed. Activities
// waiting on their criteria, and those running, are read again.
func (m *supervisor) criteriaChanged() {
	var as []*activity
	for _, d := range m.domains {
		for _, j := range d.jobs {
			for _, a := range j.acts {
				if a.phase == phaseWait && a.evaluated || a.phase == phaseRun && !a.manual {
					as = append(as, a)
				}
			}
		}
	}
	m.evaluate(as)
	m.armActivities()
}

// watchCriteria posts criteriaChanged whenever the sources say so, until
// the loop stops.
func (m *supervisor) watchCriteria() {
	defer m.bg.Done()
	changed := m.criteria.Changed()
	for {
		select {
		case _, ok := <-changed:
			if !ok {
				return // the sources were closed
			}
			m.post(m.criteriaChanged)
		case <-m.quit:
			return
		}
	}
}

// startActivity runs a: delivered at once if its job's instance has
// registered or checked in for it; otherwise the job is launched if it
// does not run, and a is delivered once the instance registers for it.
func (m *supervisor) startActivity(a *activity, manual bool) {
	j := a.job
	a.phase, a.manual, a.evaluated, a.unmet = phasePending, manual, false, nil
	a.gen++
	m.acts.heap.setWake(a, time.Time{})
	m.armActivities()
	if inst := j.inst; inst != nil {
		if inst.acts[a.id] && !inst.spawning && inst.stopWhy == "" {
			m.deliverActivity(a, inst)
		}
		return
	}
	if j.disabled || j.unloading || j.refused != nil || m.closing {
		m.deferActivity(a, "its job cannot be launched now")
		return
	}
	m.want(j, launchReason{why: reasonActivity})
	m.changed(j)
}

// deliverActivity sends a to inst: it runs from now.
func (m *supervisor) deliverActivity(a *activity, inst *instance) {
	now := time.Now()
	a.phase, a.runStart, a.lastRun, a.runPID, a.shouldDefer, a.evalAt = phaseRun, now, now, inst.pid, false, now
	m.log.Debug("activity run", "target", a.job.target(), "activity", a.id, "pid", inst.pid)
	m.sendActivity(a, xpc.Dict(bootstrap.KeyOp, bootstrap.OpActivity, bootstrap.KeyActivityID, a.id,
		bootstrap.KeyCriteria, xpc.Object(a.crit.Dictionary())))
	m.schedule(a)
	m.saveActivities()
}

// sendActivity sends msg on the check-in channel of a's job's instance.
func (m *supervisor) sendActivity(a *activity, msg *xpc.Dictionary) {
	if inst := a.job.inst; inst != nil && inst.ch != nil {
		inst.ch.send(outItem{msg: msg})
	}
}

// activityDone: the run has ended. A repeating activity is due again
// Interval after the run started; a one-shot one is removed.
func (m *supervisor) activityDone(a *activity) {
	m.log.Debug("activity done", "target", a.job.target(), "activity", a.id)
	if !a.crit.Repeating {
		m.removeActivity(a)
		m.saveActivities()
		return
	}
	a.base, a.defers, a.deferUntil = baseAfterRun(a.runStart), 0, time.Time{}
	m.resetWait(a)
	m.saveActivities()
}

// deferActivity puts a back to wait, eligible again after a backoff.
func (m *supervisor) deferActivity(a *activity, why string) {
	a.defers++
	a.deferUntil = time.Now().Add(deferBackoff(a.defers))
	m.log.Debug("activity deferred", "target", a.job.target(), "activity", a.id, "why", why, "until", a.deferUntil)
	m.resetWait(a)
	m.saveActivities()
}

// activitiesAfterExit: j's instance has ended (or its launch failed). What
// it was running, or was launched for, goes back to wait.
func (m *supervisor) activitiesAfterExit(j *job) {
	for _, a := range sortedActivities(j) {
		switch {
		case a.phase == phaseWait:
		case m.closing:
			m.resetWait(a) // xpcd stops it: no deferral, it runs again once due
		case a.phase == phaseRun:
			m.deferActivity(a, "its instance ended while it ran")
		case a.phase == phasePending:
			m.deferActivity(a, "its instance ended before it registered for it")
		}
	}
}

// activityCheckedIn: inst has registered or checked in for a; a due
// activity is delivered now.
func (m *supervisor) activityCheckedIn(a *activity, inst *instance) {
	if inst.acts == nil {
		inst.acts = map[string]bool{}
	}
	inst.acts[a.id] = true
	if a.phase == phasePending && inst.stopWhy == "" {
		m.deliverActivity(a, inst)
	}
}

// stopActivities: xpcd is shutting down. Nothing more is scheduled;
// running activities are recorded as waiting, to run again once due.
func (m *supervisor) stopActivities() {
	m.acts.stopped = true
	if m.acts.timer != nil {
		m.acts.timer.Stop()
	}
	if m.acts.saveTimer != nil {
		m.acts.saveTimer.Stop()
	}
	m.writeActivities()
}

// memoSources answers each condition once per batch of reads: a batch of
// many activities asks the sources no more than one does.
type memoSources struct {
	criteria.Sources
	seen map[memoKey]criteria.Fact
}

type memoKey struct {
	c   criteria.Condition
	uid uint32
}

func newMemoSources(s criteria.Sources) *memoSources {
	return &memoSources{Sources: s, seen: map[memoKey]criteria.Fact{}}
}

func (s *memoSources) Read(ctx context.Context, c criteria.Condition, uid uint32) criteria.Fact {
	k := memoKey{c, uid}
	if f, ok := s.seen[k]; ok {
		return f
	}
	f := s.Sources.Read(ctx, c, uid)
	s.seen[k] = f
	return f
}
