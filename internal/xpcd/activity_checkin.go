package xpcd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// What a service says of its activities on its check-in channel:
// OpActivityRegister, OpActivityUnregister, OpActivityState. Each is read
// on the channel's goroutine and done on the loop; the reply goes through
// the channel, ahead of the OpActivity that may follow it.

// activityChannelMessage handles an activity op from inst's channel ch.
func activityChannelMessage(ctx context.Context, m *supervisor, inst *instance, ch *channel, op string, msg *xpc.Message) {
	fail := func(oe *opError) {
		if msg.WantsReply() {
			msg.ReplyError(ctx, oe.object())
		}
	}
	id, err := msg.Body.String(bootstrap.KeyActivityID)
	if err != nil {
		fail(badRequest("%s: no %s", op, bootstrap.KeyActivityID))
		return
	}
	if oe := checkActivityID(id); oe != nil {
		fail(oe)
		return
	}
	var run func() *xpc.Dictionary
	var oe *opError
	switch op {
	case bootstrap.OpActivityRegister:
		var crit *xpc.ActivityCriteria
		if cd, ok := msg.Body.Get(bootstrap.KeyCriteria).(*xpc.Dictionary); ok {
			c, _, err := xpc.ParseActivityCriteria(cd)
			if err != nil {
				fail(&opError{reason: bootstrap.ReasonBadCriteria, desc: strings.TrimPrefix(err.Error(), "xpc: ")})
				return
			}
			crit = &c
		}
		run = func() *xpc.Dictionary { r, e := m.activityRegister(inst, id, crit); oe = e; return r }
	case bootstrap.OpActivityUnregister:
		run = func() *xpc.Dictionary { oe = m.activityUnregister(inst, id); return nil }
	case bootstrap.OpActivityState:
		state, _ := msg.Body.String(bootstrap.KeyActivityState)
		run = func() *xpc.Dictionary { oe = m.activityState(inst, id, state); return nil }
	}
	msg.Defer()
	m.post(func() {
		if inst.job.inst != inst || inst.ch != ch {
			oe = &opError{reason: bootstrap.ReasonDenied, desc: "this channel no longer belongs to a running instance"}
		}
		var r *xpc.Dictionary
		if oe == nil {
			r = run()
		}
		it := outItem{reply: msg, msg: r}
		if it.msg == nil {
			it.msg = &xpc.Dictionary{}
		}
		if oe != nil {
			it.replyErr = oe.object()
		}
		ch.send(it)
		if oe == nil && op == bootstrap.OpActivityRegister {
			// After the reply: the activity, if it is due.
			if a := inst.job.acts[id]; a != nil {
				m.activityCheckedIn(a, inst)
			}
		}
	})
}

// activityRegister: inst registers (crit set) or checks in for (crit nil)
// its job's activity id. The reply has the criteria in force.
func (m *supervisor) activityRegister(inst *instance, id string, crit *xpc.ActivityCriteria) (*xpc.Dictionary, *opError) {
	j := inst.job
	a := j.acts[id]
	now := time.Now()
	switch {
	case a == nil && crit == nil:
		return nil, notFound("job %s has no activity %q: declare it in the plist (LaunchEvents %s) or register it with criteria",
			j.target(), id, "com.apple.xpc.activity")
	case a == nil:
		if oe := m.actRoom(j); oe != nil {
			return nil, oe
		}
		a = m.newActivity(j, id, *crit, now)
		a.registered = true
		m.log.Info("activity registered", "target", j.target(), "activity", id)
	case crit != nil:
		m.setCriteria(a, *crit, now)
		a.registered = true
	}
	m.saveActivities()
	return xpc.Dict(bootstrap.KeyActivityID, id, bootstrap.KeyCriteria, xpc.Object(a.crit.Dictionary()),
		bootstrap.KeyActivityState, a.stateWord()), nil
}

// activityUnregister: inst removes its job's activity id.
func (m *supervisor) activityUnregister(inst *instance, id string) *opError {
	a := inst.job.acts[id]
	delete(inst.acts, id)
	if a == nil {
		return nil
	}
	m.log.Info("activity unregistered", "target", inst.job.target(), "activity", id)
	m.removeActivity(a)
	m.saveActivities()
	return nil
}

// activityState: the service's handler moved the running activity id to
// state.
func (m *supervisor) activityState(inst *instance, id, state string) *opError {
	a := inst.job.acts[id]
	if a == nil || a.phase != phaseRun || a.runPID != inst.pid {
		return &opError{reason: bootstrap.ReasonActivityNotRunning, desc: fmt.Sprintf("activity %q of %s is not running", id, inst.job.target())}
	}
	switch state {
	case bootstrap.ActivityContinue:
	case bootstrap.ActivityDone:
		m.activityDone(a)
	case bootstrap.ActivityDefer:
		m.deferActivity(a, "the service deferred it")
	default:
		return badRequest("activity %q: state %q: want %s, %s or %s", id, state,
			bootstrap.ActivityContinue, bootstrap.ActivityDone, bootstrap.ActivityDefer)
	}
	return nil
}
