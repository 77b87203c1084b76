package xpcd

import (
	"container/heap"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/criteria"
)

// The arithmetic of an activity's schedule (xpc.ActivityCriteria's rules),
// kept apart from the loop so that tests give it the time:
//
//	due        base + Delay; base is when it was registered or, for a
//	           repeating activity, when its last completed run started.
//	           A run missed (xpcd stopped, criteria not met) leaves base
//	           where it was, so that however many were missed, one run
//	           follows, and the next is due Interval after that run.
//	eligible   due, or later while a deferral's backoff lasts
//	held       a maintenance activity within GracePeriod past due: the
//	           machine's pressure holds it back too
//	backoff    after a deferral (the service said defer, or its instance
//	           ended while it ran): 1 s, doubling, at most deferMax

// Backoff after a deferral.
const (
	deferFirst = time.Second
	deferMax   = 5 * time.Minute
)

// actTimes is what the schedule of one activity is computed from.
type actTimes struct {
	crit       xpc.ActivityCriteria // Normalized
	base       time.Time
	deferUntil time.Time
}

func (t actTimes) due() time.Time { return t.base.Add(t.crit.Delay) }

// eligible is the earliest time the activity may run.
func (t actTimes) eligible() time.Time {
	if d := t.due(); t.deferUntil.After(d) {
		return t.deferUntil
	}
	return t.due()
}

// held tells whether the pressure criteria of a maintenance activity
// apply at now (criteria.Evaluate's held).
func (t actTimes) held(now time.Time) bool {
	return t.crit.Priority == xpc.PriorityMaintenance && now.Before(t.due().Add(t.crit.GracePeriod))
}

// graceEnds is when held stops applying; zero if it does not at now.
func (t actTimes) graceEnds(now time.Time) time.Time {
	if !t.held(now) {
		return time.Time{}
	}
	return t.due().Add(t.crit.GracePeriod)
}

// deferBackoff is the wait after the n-th deferral in a row (n ≥ 1).
func deferBackoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := deferFirst << min(n-1, 16)
	return min(d, deferMax)
}

// baseAfterRun is a repeating activity's base once the run that started at
// start is done: the next is due Delay (Interval) after it.
func baseAfterRun(start time.Time) time.Time { return start }

// unsignalled tells whether c is a condition whose source cannot say it
// changed (criteria.Sources.Changed): xpcd reads it again every recheck
// interval while something waits on it.
func unsignalled(c criteria.Condition) bool {
	switch c {
	case criteria.OnBattery, criteria.CPUPressure, criteria.MemoryPressure, criteria.IOPressure:
		return true
	}
	return false
}

// readsUnsignalled tells whether evaluating c (with held) reads a condition
// that cannot signal.
func readsUnsignalled(c xpc.ActivityCriteria, held bool) bool {
	return !c.AllowBattery || c.CPUIntensive || c.MemoryIntensive || c.DiskIntensive ||
		held && c.Priority == xpc.PriorityMaintenance
}

// waitWake is when an activity waiting on the unmet criteria, evaluated
// at evalAt, is to be evaluated again without being told of a change: at
// the recheck interval if one of them cannot signal, at the end of its
// grace period if pressure held it, whichever comes first; zero: only when
// a source says something changed.
func waitWake(t actTimes, unmet []criteria.Unmet, evalAt time.Time, recheck time.Duration) time.Time {
	var w time.Time
	for _, u := range unmet {
		if unsignalled(u.Condition) {
			w = evalAt.Add(recheck)
			break
		}
	}
	if g := t.graceEnds(evalAt); !g.IsZero() && (w.IsZero() || g.Before(w)) {
		w = g
	}
	return w
}

// actHeap orders the activities that have a wake-up time by it; the
// scheduler's one timer is armed for the first.
type actHeap []*activity

func (h actHeap) Len() int           { return len(h) }
func (h actHeap) Less(i, k int) bool { return h[i].wakeAt.Before(h[k].wakeAt) }
func (h actHeap) Swap(i, k int) {
	h[i], h[k] = h[k], h[i]
	h[i].hidx, h[k].hidx = i, k
}
func (h *actHeap) Push(x any) {
	a := x.(*activity)
	a.hidx = len(*h)
	*h = append(*h, a)
}
func (h *actHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	a.hidx = -1
	return a
}

// setWake puts a in the heap at w, or takes it out for a zero w.
func (h *actHeap) setWake(a *activity, w time.Time) {
	a.wakeAt = w
	switch {
	case w.IsZero() && a.hidx >= 0:
		heap.Remove(h, a.hidx)
	case w.IsZero():
	case a.hidx >= 0:
		heap.Fix(h, a.hidx)
	default:
		heap.Push(h, a)
	}
}

// popDue takes out the activities whose wake-up time is not after now.
func (h *actHeap) popDue(now time.Time) []*activity {
	var out []*activity
	for h.Len() > 0 && !(*h)[0].wakeAt.After(now) {
		a := heap.Pop(h).(*activity)
		a.wakeAt = time.Time{}
		out = append(out, a)
	}
	return out
}
