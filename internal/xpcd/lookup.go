package xpcd

import (
	"context"
	"fmt"
	"strings"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// Lookups: a client's request for a service by name, resolved in the
// domains it may see, checked against the policy and the per-user limits,
// and its socket queued for the service (clients.go).

// lookup: {"op":"lookup","name":NAME,"domain":DOMAIN?,"socket":FD}. As a
// request it is answered with {} or an error. Sent as a one-way message it
// is pipelined: the client is already writing to its end of the socket
// pair, nobody waits for this session, and a failure is told to the client
// on that socket (refuse).
func (ss *session) lookup(ctx context.Context, msg *xpc.Message) {
	body := msg.Body
	fd, _ := body.Get(bootstrap.KeySocket).(*xpc.FD)
	if fd != nil {
		body.Delete(bootstrap.KeySocket)
	}
	xpc.CloseAttachments(body)
	name, err := body.String(bootstrap.KeyName)
	var oe *opError
	switch {
	case err != nil:
		oe = &opError{reason: bootstrap.ReasonBadRequest, desc: "lookup: no name"}
	case fd == nil:
		oe = &opError{reason: bootstrap.ReasonBadRequest, desc: "lookup: no socket"}
	}
	dom, _ := body.String(bootstrap.KeyDomain)
	if oe == nil {
		ss.ensureOwn()
		if dn, owner, err := ParseDomain(dom); err == nil && dom != "" && mayRead(ss.peer.UID, dn, owner) {
			ss.ensure(dn, owner)
		}
		uid, pid := ss.peer.UID, ss.peer.PID
		if !msg.WantsReply() {
			if ss.m.post(func() {
				switch oe := ss.m.lookup(uid, ss.bucket, pid, name, dom, fd); {
				case oe == nil:
				case ss.s.forwards(dom, oe):
					ss.forward(name, fd, nil, oe)
				default:
					ss.refused(name, fd, oe)
				}
			}) {
				return
			}
			oe = &opError{reason: bootstrap.ReasonShuttingDown, desc: errStopped.Error()}
		} else if e := ss.do(func() { oe = ss.m.lookup(uid, ss.bucket, pid, name, dom, fd) }); e != nil {
			oe = e
		}
	}
	if oe == nil {
		ss.reply(ctx, msg, nil)
		return
	}
	switch {
	case fd != nil && msg.WantsReply() && ss.s.forwards(dom, oe):
		ss.forward(name, fd, msg, oe)
	case fd != nil && !msg.WantsReply():
		ss.refused(name, fd, oe)
	case fd != nil:
		fd.Close()
		fallthrough
	default:
		ss.log.Debug("lookup failed", "name", name, "reason", oe.reason, "err", oe.desc)
		ss.fail(ctx, msg, oe)
	}
}

// refused tells the client of a pipelined lookup that it failed.
func (ss *session) refused(name string, fd *xpc.FD, oe *opError) {
	ss.log.Debug("lookup failed", "name", name, "reason", oe.reason, "err", oe.desc)
	if err := refuse(fd, oe); err != nil {
		ss.log.Debug("lookup: the client did not get its refusal", "name", name, "err", err)
	}
}

// lookup resolves name for a client (uid, pid) and queues its socket.
// On success it owns fd; on error the caller keeps it.
//
// bucket is what the client's waiting sockets are counted under
// (buckets.of(uid)), worked out by the caller off the loop.
func (m *supervisor) lookup(uid, bucket uint32, pid int, name, reqDom string, fd *xpc.FD) *opError {
	if m.closing {
		return &opError{reason: bootstrap.ReasonShuttingDown, desc: "xpcd is shutting down"}
	}
	if err := launchd.CheckServiceName(name); err != nil {
		return badRequest("lookup: %v", err)
	}
	visible := m.visibleDomains(uid)
	var j *job
	if reqDom != "" {
		dn, owner, err := ParseDomain(reqDom)
		if err != nil {
			return badRequest("lookup: %v", err)
		}
		if !mayRead(uid, dn, owner) {
			return domainDenied(uid, "look up "+name+" in", dn)
		}
		if d := m.domains[dn]; d != nil {
			j = d.names[name]
		}
		if j == nil {
			for _, d := range visible {
				if d.names[name] != nil {
					oe := &opError{reason: bootstrap.ReasonWrongDomain,
						desc: fmt.Sprintf("service %s is not in %s: it is in %s", name, dn, d.name)}
					oe.extra = xpc.Dict(bootstrap.KeyDomain, d.name)
					return oe
				}
			}
			return notFound("no service named %s in %s", name, dn)
		}
	} else {
		for _, d := range visible {
			if j = d.names[name]; j != nil {
				break
			}
		}
		if j == nil {
			var names []string
			for _, d := range visible {
				names = append(names, d.name)
			}
			if len(names) == 0 {
				return notFound("no service named %s (no domain of uid %d is served here)", name, uid)
			}
			return notFound("no service named %s in %s", name, strings.Join(names, " or "))
		}
	}
	switch {
	case j.unloading:
		return notFound("service %s: job %s is being unloaded", name, j.target())
	case j.disabled:
		return notFound("service %s: job %s is disabled", name, j.target())
	case j.refused != nil:
		return ruleOpError(j.refused, "service %s: job %s is refused: %s", name, j.target(), j.refused.Detail)
	case j.def.MachServices[name].HideUntilCheckIn && (j.inst == nil || !j.inst.names[name]):
		return notFound("service %s is hidden until job %s checks in (HideUntilCheckIn)", name, j.target())
	}
	if oe := m.roomToQueue(j, bucket, name); oe != nil {
		return oe
	}
	m.demand(j, name, fd, bucket, pid)
	return nil
}

// roomToQueue checks that a client of uid may wait for job j: the job has
// fewer than maxQueued clients waiting, and uid (unless root) holds fewer
// than maxQueuedPerUser client sockets in xpcd, counting only clients
// still there (those that gave up are let go first). Each costs xpcd a
// descriptor, and one user must not take them all, nor fill another's
// service's queue.
func (m *supervisor) roomToQueue(j *job, bucket uint32, name string) *opError {
	if len(j.queue) >= maxQueued {
		m.pruneQueues(j, -1)
	}
	if len(j.queue) >= maxQueued {
		return &opError{reason: bootstrap.ReasonBusy, desc: fmt.Sprintf("service %s: %d clients are already waiting", name, len(j.queue))}
	}
	if bucket == 0 || m.queuedBy[bucket] < maxQueuedPerUser {
		return nil
	}
	m.pruneQueues(nil, int64(bucket))
	if n := m.queuedBy[bucket]; n >= maxQueuedPerUser {
		re := refusedBy(bootstrap.RuleQueueLimit, "%s has %d clients waiting for services, the limit", bucketName(bucket), n)
		oe := ruleOpError(re, "service %s: %s", name, re.Detail)
		oe.reason = bootstrap.ReasonBusy
		return oe
	}
	return nil
}

// visibleDomains are the domains a lookup from uid searches, in order: its
// own user domain, then system. In a --user instance, root also sees the
// instance's domain.
func (m *supervisor) visibleDomains(uid uint32) []*domain {
	var out []*domain
	if d := m.domains[UserDomain(uid)]; d != nil {
		out = append(out, d)
	} else if d := m.onlyDomain(); d != nil && uid == 0 {
		out = append(out, d)
	}
	if d := m.domains[DomainSystem]; d != nil {
		out = append(out, d)
	}
	return out
}
