package xpcd

import (
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// Clients waiting for a service. Each looked-up client's socket is held
// (queued, and counted for its user) until the job's instance has checked
// the name in, then handed over on the check-in channel; a socket whose
// client has gone is closed and let go, and one whose job cannot be
// launched now, or goes, is refused with the reason (failfast.go).

// demand queues a client socket for name, or hands it over at once if the
// instance has checked the name in, and launches the job if need be; a
// client of a job throttled after an instance that ended before checking
// name in is refused at once (throttledFor). It takes ownership of fd.
func (m *supervisor) demand(j *job, name string, fd *xpc.FD, uid uint32, requester int) {
	p := &pending{name: name, fd: fd, uid: uid, requester: requester, at: time.Now()}
	m.hold(p)
	if inst := j.inst; inst != nil && inst.ready(name) {
		m.deliver(inst, p)
	} else if oe := m.throttledFor(j, name); oe != nil {
		m.release(p)
		m.refusePending(p, oe)
	} else {
		j.queue = append(j.queue, p)
		m.want(j, launchReason{why: reasonDemand, requester: requester})
	}
	m.changed(j)
}

// ready reports whether a client for name can be handed to the instance
// now. An instance whose process has ended, or whose channel the far end
// has closed, is not, even if the loop has not heard yet: a client looking
// the name up again right after the service crashed must not be handed to
// the dead instance, but queued for the next.
func (inst *instance) ready(name string) bool {
	return !inst.spawning && inst.stopWhy == "" && inst.ch != nil && inst.names[name] &&
		!inst.proc.exited() && !inst.ch.hup()
}

// deliver sends a client socket to the instance. A send that fails puts the
// socket back in the job's queue, for the next instance.
func (m *supervisor) deliver(inst *instance, p *pending) {
	msg := xpc.Dict(bootstrap.KeyOp, bootstrap.OpConnect, bootstrap.KeyName, p.name)
	msg.Set(bootstrap.KeySocket, p.fd)
	ch := inst.ch
	ok := ch.send(outItem{msg: msg, fd: p.fd, failed: func(it outItem) {
		if !m.post(func() { m.requeue(inst, ch, p) }) {
			p.fd.Close()
		}
	}})
	if !ok {
		inst.job.queue = append(inst.job.queue, p)
		return
	}
	m.release(p)
	inst.delivered++
	inst.idleFrom = time.Now()
	m.armIdle(inst)
}

// requeue takes back a socket that could not be delivered on ch: the
// channel is broken, so it is done with.
func (m *supervisor) requeue(inst *instance, ch *channel, p *pending) {
	j := inst.job
	if j.inst == inst && inst.delivered > 0 {
		inst.delivered--
	}
	if inst.ch == ch {
		m.channelLost(inst, ch)
	}
	if j.unloading || j.disabled || m.closing || j.dom.names[p.name] != j {
		p.fd.Close()
		return
	}
	m.hold(p)
	j.queue = append([]*pending{p}, j.queue...)
	if j.inst != nil && j.inst.ready(p.name) {
		m.flush(j.inst, p.name)
	} else {
		m.want(j, launchReason{why: reasonDemand, requester: p.requester})
	}
	m.changed(j)
}

// flush hands the instance every queued client for name.
func (m *supervisor) flush(inst *instance, name string) {
	j := inst.job
	kept := j.queue[:0]
	var send []*pending
	for _, p := range j.queue {
		if p.name == name {
			send = append(send, p)
		} else {
			kept = append(kept, p)
		}
	}
	j.queue = kept
	for _, p := range send {
		m.deliver(inst, p)
	}
}

// dropQueue closes the waiting clients' sockets: they see the end and look
// the name up again.
func (m *supervisor) dropQueue(j *job) {
	for _, p := range j.queue {
		p.fd.Close()
		m.release(p)
	}
	j.queue = nil
}

// release notes that a client socket is no longer xpcd's to hold: handed
// to its service, or closed. Each uid but root may have maxQueuedPerUser
// held at once (lookup); release is idempotent.
func (m *supervisor) release(p *pending) {
	if p.released {
		return
	}
	p.released = true
	if m.queuedBy[p.uid]--; m.queuedBy[p.uid] <= 0 {
		delete(m.queuedBy, p.uid)
	}
}

// hold counts a client socket xpcd holds for uid (see release).
func (m *supervisor) hold(p *pending) {
	p.released = false
	m.queuedBy[p.uid]++
}

// pruneQueues closes the queued client sockets whose client has gone (its
// end hung up): of job j, or with j nil of every job, for uid, or with
// uid -1 anyone's. A client that gave up must not keep its place.
func (m *supervisor) pruneQueues(j *job, uid int64) {
	jobs := []*job{j}
	if j == nil {
		jobs = nil
		for _, d := range m.jobDomains() {
			for _, o := range d.jobs {
				jobs = append(jobs, o)
			}
		}
	}
	for _, o := range jobs {
		kept := o.queue[:0]
		for _, p := range o.queue {
			if (uid < 0 || int64(p.uid) == uid) && hungUp(p.fd) {
				p.fd.Close()
				m.release(p)
				continue
			}
			kept = append(kept, p)
		}
		clear(o.queue[len(kept):])
		o.queue = kept
	}
}
