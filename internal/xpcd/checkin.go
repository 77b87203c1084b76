package xpcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// The check-in channel (docs/XPCD.md): what a service tells xpcd on it
// (checkin, transactions), the channel's loss, and adoption of a service
// that outlived an xpcd restart.

// checkin: the instance listens for name. The reply goes through the
// channel ahead of the queued clients, so the service learns its check-in
// succeeded before its first client arrives.
func (m *supervisor) checkin(inst *instance, ch *channel, name string, msg *xpc.Message) {
	j := inst.job
	reply := func(err *opError) {
		it := outItem{reply: msg, msg: &xpc.Dictionary{}}
		if err != nil {
			it.replyErr = err.object()
		}
		// If the channel has closed, nobody would read the reply.
		ch.send(it)
	}
	if j.inst != inst || inst.ch != ch {
		reply(&opError{reason: bootstrap.ReasonDenied, desc: "this channel no longer belongs to a running instance"})
		return
	}
	if _, ok := inst.def.MachServices[name]; !ok {
		if launchd.CheckServiceName(name) == nil {
			// Only a name: clients are told it (failfast.go).
			inst.checkins.undeclared = name
		}
		reply(&opError{reason: bootstrap.ReasonNotDeclared,
			desc: fmt.Sprintf("service %q is not declared in the MachServices of job %s (%s)", name, inst.def.Label, inst.def.Path)})
		return
	}
	inst.names[name] = true
	inst.checkins.add(name)
	inst.spoke = true
	if !inst.txKnown {
		inst.txKnown = true
		inst.idleFrom = time.Now()
	}
	reply(nil)
	m.log.Debug("checked in", "target", j.target(), "pid", inst.pid, "name", name)
	if inst.stopWhy == "" {
		m.giveMonitors(inst) // before its clients, so it sees their first message
		m.flush(inst, name)
		if !m.upgradeIfClean(inst) {
			m.armIdle(inst)
		}
	}
	m.changed(j)
}

// upgradeIfClean stops an instance whose upgrade is pending once it is
// known to be clean.
func (m *supervisor) upgradeIfClean(inst *instance) bool {
	if inst.upgrade && inst.stopWhy == "" && !inst.spawning && inst.txKnown && inst.tx == 0 {
		m.stop(inst, stopUpgrade)
		return true
	}
	return false
}

// transactions: the instance reports its open transaction count.
func (m *supervisor) transactions(inst *instance, ch *channel, n int) {
	j := inst.job
	if j.inst != inst || inst.ch != ch {
		return
	}
	inst.spoke = true
	if n < 0 {
		n = 0
	}
	was := inst.tx
	inst.tx = n
	if n == 0 && (was != 0 || !inst.txKnown) {
		inst.idleFrom = time.Now()
	}
	inst.txKnown = true
	if !m.upgradeIfClean(inst) {
		m.armIdle(inst)
	}
	m.changed(j)
}

// connections: the instance reports its listeners' open peer connections
// (with its transactions, when it reports them).
func (m *supervisor) connections(inst *instance, ch *channel, n int) {
	if inst.job.inst == inst && inst.ch == ch {
		inst.conns, inst.connsKnown = n, true
	}
}

// channelLost: the instance's check-in channel ended. The process may live
// on; it can adopt a new channel.
func (m *supervisor) channelLost(inst *instance, ch *channel) {
	ch.close()
	ch.conn.Cancel()
	if inst.job.inst != inst || inst.ch != ch {
		return
	}
	inst.ch = nil
	clear(inst.names)
	clear(inst.acts)
	m.log.Info("check-in channel closed", "target", inst.job.target(), "pid", inst.pid)
	m.changed(inst.job)
}

// adopt makes ch the check-in channel of the instance whose pid is pid, if
// that instance belongs to label.
func (m *supervisor) adopt(label string, pid int, ch *channel, msg *xpc.Message) (*instance, *opError) {
	inst := m.byPID[pid]
	// Our pidfd must still reach the process: if it has ended (and the
	// loop has not heard yet), the pid may already be another process's.
	if inst == nil || inst.def.Label != label || inst.spawning || inst.proc.signal(0) != nil {
		return nil, &opError{reason: bootstrap.ReasonDenied,
			desc: fmt.Sprintf("adopt: pid %d is not a process xpcd launched for %s", pid, label)}
	}
	if old := inst.ch; old != nil {
		old.close()
		old.conn.Cancel()
	}
	inst.ch = ch
	inst.spoke = true
	clear(inst.names)
	clear(inst.acts)
	ch.send(outItem{reply: msg, msg: &xpc.Dictionary{}})
	m.log.Info("adopted", "target", inst.job.target(), "pid", pid)
	m.changed(inst.job)
	return inst, nil
}

// adopt: {"op":"adopt","label":LABEL} from a service whose check-in
// channel is gone (xpcd restarted): if the kernel says the caller is the
// process xpcd launched for LABEL, this connection becomes its check-in
// channel.
func (ss *session) adopt(ctx context.Context, msg *xpc.Message) {
	label, err := msg.Body.String(bootstrap.KeyLabel)
	if err != nil {
		ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBadRequest, desc: "adopt: no label"})
		return
	}
	if ss.adopted != nil {
		ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBadRequest, desc: "adopt: this connection is already a check-in channel"})
		return
	}
	if !ss.peer.Alive() {
		ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonDenied, desc: "adopt: the caller has exited"})
		return
	}
	ch := newChannel(ss.conn, 0)
	msg.Defer()
	var inst *instance
	var oe *opError
	if e := ss.do(func() { inst, oe = ss.m.adopt(label, ss.peer.PID, ch, msg) }); e != nil {
		oe = e
	}
	if oe != nil {
		ch.close()
		ss.fail(ctx, msg, oe)
		return
	}
	ss.adopted, ss.adoptCh = inst, ch
}

// channelMessage: checkin and transactions on an adopted connection.
func (ss *session) channelMessage(ctx context.Context, op string, msg *xpc.Message) {
	inst, ch := ss.adopted, ss.adoptCh
	if inst == nil {
		ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBadRequest,
			desc: op + ": not a check-in channel (a service launched by xpcd checks in on descriptor $" + bootstrap.CheckinFDEnv + ", or adopts after a restart)"})
		return
	}
	handleChannelMessage(ctx, ss.m, inst, ch, op, msg)
}

// handleChannelMessage handles what a service sends on its check-in
// channel, whichever connection that is.
func handleChannelMessage(ctx context.Context, m *supervisor, inst *instance, ch *channel, op string, msg *xpc.Message) {
	switch op {
	case bootstrap.OpCheckin:
		name, err := msg.Body.String(bootstrap.KeyName)
		if err != nil {
			if msg.WantsReply() {
				msg.ReplyError(ctx, (&opError{reason: bootstrap.ReasonBadRequest, desc: "checkin: no name"}).object())
			}
			return
		}
		msg.Defer()
		m.post(func() { m.checkin(inst, ch, name, msg) })
	case bootstrap.OpTransactions:
		n, err := msg.Body.Int64(bootstrap.KeyCount)
		if err != nil {
			return
		}
		// The open connections, from a library that counts them.
		conns, err := msg.Body.Int64(bootstrap.KeyConnections)
		if err != nil || conns < 0 || conns > 1<<31 {
			conns = -1
		}
		m.post(func() {
			if conns >= 0 {
				m.connections(inst, ch, int(conns))
			}
			m.transactions(inst, ch, int(n))
		})
	case bootstrap.OpEventHandler:
		eventHandlerRequest(ctx, m, inst, ch, msg)
	case bootstrap.OpActivityRegister, bootstrap.OpActivityUnregister, bootstrap.OpActivityState:
		activityChannelMessage(ctx, m, inst, ch, op, msg)
	default:
		if msg.WantsReply() {
			msg.ReplyError(ctx, (&opError{reason: bootstrap.ReasonBadRequest, desc: fmt.Sprintf("unknown op %q on a check-in channel", op)}).object())
		}
	}
}

// checkinHandler handles the check-in channel of an instance xpcd launched
// (descriptor 3 of the service).
type checkinHandler struct {
	m    *supervisor
	inst *instance
	ch   *channel
}

func (h *checkinHandler) HandleMessage(ctx context.Context, msg *xpc.Message) {
	defer xpc.CloseAttachments(msg.Body)
	op, _ := msg.Body.String(bootstrap.KeyOp)
	handleChannelMessage(ctx, h.m, h.inst, h.ch, op, msg)
}

func (h *checkinHandler) HandleEvent(err error) {
	if errors.Is(err, xpc.ErrInvalid) {
		h.m.post(func() { h.m.channelLost(h.inst, h.ch) })
	}
}
