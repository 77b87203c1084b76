package xpcd

import (
	"context"
	"strings"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// What a service says of its activities on its check-in channel:
// OpActivityRegister, OpActivityUnregister, OpActivityState. Each is read
// on the channel's goroutine and done on the loop (activityRegister,
// activityUnregister, activityState: activity.go); the reply goes through
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
