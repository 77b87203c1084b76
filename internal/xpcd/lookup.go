package xpcd

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/codesign"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// Lookups: a client's request for a service by name, resolved in the
// domains it may see, checked against the policy and the per-user limits,
// and its socket queued for the service (clients.go).

// lookupReq is one lookup on its way through xpcd.
type lookupReq struct {
	name, dom string
	fd        *xpc.FD
	// The client made fd (lookupClient): the policy and the name's
	// requirement judge it, and the service sees it.
	uid    uint32 // the client's
	pid    int    // the client's: the launch's requester
	bucket uint32 // what the waiting socket counts under: the requester's (buckets.of)
	// met is the requirement client was found to meet (its text);
	// rounds counts the checks made.
	met    string
	rounds int
	trust  *codesign.Verifier // verifies the signatures a requirement asks for
	// app is the client as the pid domain sees it (apps_resolve.go);
	// nil when it is not the session's peer.
	app *pidClient
}

// maxRequirementRounds bounds the checks of one lookup: a name's
// requirement changes only when its job is loaded again.
const maxRequirementRounds = 3

// lookup: {"op":"lookup","name":NAME,"domain":DOMAIN?,"socket":FD}. As a
// request it is answered with {} or an error. Sent as a one-way message it
// is pipelined: the client is already writing to its end of the socket
// pair, nobody waits for this session, and a failure is told to the client
// on that socket (refuse).
func (ss *session) lookup(ctx context.Context, msg *xpc.Message) {
	r, oe := ss.lookupArgs(msg)
	if oe == nil {
		ss.ensureOwn()
		if dn, owner, err := ParseDomain(r.dom); err == nil && r.dom != "" && mayRead(ss.peer.UID, dn, owner) {
			ss.ensure(dn, owner)
		}
		if !msg.WantsReply() {
			if ss.m.post(func() { ss.lookupPipelined(r) }) {
				return
			}
			oe = &opError{reason: bootstrap.ReasonShuttingDown, desc: errStopped.Error()}
		} else {
			oe = ss.lookupNow(r)
		}
	}
	if oe == nil {
		ss.reply(ctx, msg, nil)
		return
	}
	switch fd := r.fd; {
	case fd != nil && msg.WantsReply() && ss.s.forwards(r.dom, oe):
		ss.forward(r.name, r.dom, fd, msg, oe)
	case fd != nil && !msg.WantsReply():
		ss.refused(r.name, fd, oe)
	case fd != nil:
		fd.Close()
		fallthrough
	default:
		ss.log.Debug("lookup failed", "name", r.name, "reason", oe.reason, "err", oe.desc)
		ss.fail(ctx, msg, oe)
	}
}

// lookupArgs reads a lookup's name, domain and socket, and who made the
// socket (lookupClient). r.fd is set whenever the request carried one.
func (ss *session) lookupArgs(msg *xpc.Message) (*lookupReq, *opError) {
	body := msg.Body
	r := &lookupReq{bucket: ss.bucket, trust: ss.m.trust}
	r.fd, _ = body.Get(bootstrap.KeySocket).(*xpc.FD)
	if r.fd != nil {
		body.Delete(bootstrap.KeySocket)
	}
	xpc.CloseAttachments(body)
	name, err := body.String(bootstrap.KeyName)
	r.name = name
	r.dom, _ = body.String(bootstrap.KeyDomain)
	switch {
	case err != nil:
		return r, &opError{reason: bootstrap.ReasonBadRequest, desc: "lookup: no name"}
	case r.fd == nil:
		return r, &opError{reason: bootstrap.ReasonBadRequest, desc: "lookup: no socket"}
	}
	mk, oe := ss.lookupClient(name, r.fd)
	r.uid, r.pid = mk.uid, mk.pid
	if oe == nil && r.dom == "" && r.pid == ss.peer.PID {
		r.app = ss.appOf()
	}
	return r, oe
}

// lookupNow resolves a lookup sent as a request, checking the client
// against the name's requirement, if it has one, in this goroutine.
func (ss *session) lookupNow(r *lookupReq) *opError {
	for {
		var oe *opError
		var need xpc.Requirement
		if e := ss.do(func() { oe, need = ss.m.lookupFor(r) }); e != nil {
			return e
		}
		if oe != nil || need.IsZero() {
			return oe
		}
		if oe := ss.s.checks.acquire(r.bucket, r.name); oe != nil {
			return oe
		}
		oe = r.check(need)
		ss.s.checks.release(r.bucket)
		if oe != nil {
			return oe
		}
	}
}

// lookupPipelined resolves a pipelined lookup, on the loop. A requirement
// is checked in a goroutine of its own, which then tries again.
func (ss *session) lookupPipelined(r *lookupReq) {
	oe, need := ss.m.lookupFor(r)
	if oe == nil && !need.IsZero() {
		if oe := ss.s.checks.acquire(r.bucket, r.name); oe != nil {
			ss.lookupFailed(r, oe)
			return
		}
		go func() {
			oe := r.check(need)
			ss.s.checks.release(r.bucket)
			if oe != nil {
				ss.lookupFailed(r, oe)
				return
			}
			if !ss.m.post(func() { ss.lookupPipelined(r) }) {
				ss.lookupFailed(r, &opError{reason: bootstrap.ReasonShuttingDown, desc: errStopped.Error()})
			}
		}()
		return
	}
	if oe != nil {
		ss.lookupFailed(r, oe)
	}
}

// lookupFailed tells the client of a pipelined lookup that it failed, or
// passes the lookup on to the system instance.
func (ss *session) lookupFailed(r *lookupReq, oe *opError) {
	if ss.s.forwards(r.dom, oe) {
		ss.forward(r.name, r.dom, r.fd, nil, oe)
		return
	}
	ss.refused(r.name, r.fd, oe)
}

// check checks r's client, the maker of r.fd (xpc.PeerOfSocket), against
// need, the requirement of the name it looks up: nil when it meets it
// (r.met says so from then on), else the refusal.
func (r *lookupReq) check(need xpc.Requirement) *opError {
	if r.rounds++; r.rounds > maxRequirementRounds {
		return &opError{reason: bootstrap.ReasonBusy, desc: fmt.Sprintf("lookup of %s: its requirement kept changing while it was checked", r.name)}
	}
	if r.fd == nil {
		return requirementFailed(r.name, need, nil, errNoIdentity)
	}
	client, err := xpc.PeerOfSocket(r.fd.File())
	if err != nil {
		return creatorDenied(r.name, fmt.Sprintf("the process that made the socket: %v", err))
	}
	defer client.Close()
	if err := need.CheckWith(client, r.trust); err != nil {
		return requirementFailed(r.name, need, client, err)
	}
	r.met = need.String()
	return nil
}

// refused tells the client of a pipelined lookup that it failed.
func (ss *session) refused(name string, fd *xpc.FD, oe *opError) {
	ss.log.Debug("lookup failed", "name", name, "reason", oe.reason, "err", oe.desc)
	if err := refuse(fd, oe); err != nil {
		ss.log.Debug("lookup: the client did not get its refusal", "name", name, "err", err)
	}
}

// lookup resolves name for a client (uid, pid) and queues its socket, all
// on the loop: a name's requirement is checked here against the maker of
// fd. Sessions use lookupFor, which leaves that check to them, off the
// loop; this is for the state machine's tests. On success it owns fd; on
// error the caller keeps it.
func (m *supervisor) lookup(uid, bucket uint32, pid int, name, reqDom string, fd *xpc.FD) *opError {
	r := &lookupReq{name: name, dom: reqDom, fd: fd, uid: uid, pid: pid, bucket: bucket, trust: m.trust}
	oe, need := m.lookupFor(r)
	if oe == nil && !need.IsZero() {
		oe = r.check(need)
	}
	return oe
}

// lookupFor resolves r's name for its client and queues its socket. If
// the name has a requirement the client has not been found to meet
// (r.met), nothing is done and the requirement is returned, to be checked
// off the loop (lookupReq.check) before the client asks again. On success
// it owns r.fd; otherwise the caller keeps it.
func (m *supervisor) lookupFor(r *lookupReq) (*opError, xpc.Requirement) {
	if m.closing {
		return &opError{reason: bootstrap.ReasonShuttingDown, desc: "xpcd is shutting down"}, xpc.Requirement{}
	}
	j, oe := m.resolveWithApps(r)
	if oe != nil {
		return oe, xpc.Requirement{}
	}
	name := r.name
	if need := j.def.MachServices[name].Requirement; !need.IsZero() && need.String() != r.met {
		return nil, need
	}
	switch {
	case j.unloading:
		return notFound("service %s: job %s is being unloaded", name, j.target()), xpc.Requirement{}
	case j.gone != "":
		return notFound("service %s: %s", name, plistDeletedText(j)), xpc.Requirement{}
	case j.disabled:
		return notFound("service %s: job %s is disabled", name, j.target()), xpc.Requirement{}
	case m.unapproved(j):
		return notApproved("service "+name, j, m.reg.gate[j.target()]), xpc.Requirement{}
	case j.refused != nil:
		return ruleOpError(j.refused, "service %s: job %s is refused: %s", name, j.target(), j.refused.Detail), xpc.Requirement{}
	case j.def.MachServices[name].HideUntilCheckIn && (j.inst == nil || !j.inst.names[name]):
		return notFound("service %s is hidden until job %s checks in (HideUntilCheckIn)", name, j.target()), xpc.Requirement{}
	}
	if oe := m.roomToQueue(j, r.bucket, name); oe != nil {
		return oe, xpc.Requirement{}
	}
	m.demand(j, name, r.fd, r.bucket, r.pid)
	return nil, xpc.Requirement{}
}

// resolve finds the job that provides name for a client of uid: in
// reqDom if one is named (a user domain only for its user and root), else
// in the domains it sees (visibleDomains). A name not there that another
// domain the client may read has is a wrong-domain refusal naming that
// domain (elsewhere).
func (m *supervisor) resolve(uid uint32, name, reqDom string) (*job, *opError) {
	if err := launchd.CheckServiceName(name); err != nil {
		return nil, badRequest("lookup: %v", err)
	}
	if reqDom == "" {
		visible := m.visibleDomains(uid)
		var names []string
		for _, d := range visible {
			if j := d.names[name]; j != nil {
				return j, nil
			}
			names = append(names, d.name)
		}
		if d := m.elsewhere(uid, name, visible); d != nil {
			return nil, wrongDomain(name, strings.Join(names, " or "), d)
		}
		if len(names) == 0 {
			return nil, notFound("no service named %s (no domain of uid %d is served here)", name, uid)
		}
		return nil, notFound("no service named %s in %s", name, strings.Join(names, " or "))
	}
	dn, owner, err := ParseDomain(reqDom)
	if err != nil {
		return nil, badRequest("lookup: %v", err)
	}
	if !mayRead(uid, dn, owner) {
		return nil, domainDenied(uid, "look up "+name+" in", dn)
	}
	d := m.domains[dn]
	if d != nil && d.names[name] != nil {
		return d.names[name], nil
	}
	if other := m.elsewhere(uid, name, []*domain{d}); other != nil {
		return nil, wrongDomain(name, dn, other)
	}
	if d == nil && m.userMode {
		return nil, notFound("no service named %s in %s: this xpcd (a --user instance) serves %s only", name, dn, m.onlyDomain().name)
	}
	return nil, notFound("no service named %s in %s", name, dn)
}

// elsewhere returns the domain, other than those searched, that has name
// and that uid sees or may read, preferring the ones it sees (its own,
// system); nil if none. Only root may read domains it does not see.
func (m *supervisor) elsewhere(uid uint32, name string, searched []*domain) *domain {
	candidates := m.visibleDomains(uid)
	if uid == 0 {
		candidates = append(candidates, m.sortedDomains()...)
	}
	for _, d := range candidates {
		if d.names[name] != nil && !slices.Contains(searched, d) && mayRead(uid, d.name, d.owner) {
			return d
		}
	}
	return nil
}

// wrongDomain is the refusal of a lookup of name in asked, for a name d
// has: reason wrong-domain, naming d, and how to reach it.
func wrongDomain(name, asked string, d *domain) *opError {
	what := "a system daemon"
	if d.name != DomainSystem {
		what = "an agent of " + d.name
	}
	oe := &opError{reason: bootstrap.ReasonWrongDomain,
		desc: fmt.Sprintf("%s is %s, not in %s; connect with WithDomain(%s)", name, what, asked, d.name)}
	oe.extra = xpc.Dict(bootstrap.KeyDomain, d.name)
	return oe
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
