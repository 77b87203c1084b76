package xpcd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// An admin op parses its request in the session's goroutine, does its work
// on the supervisor's loop, and returns the reply, or a function that
// waits (outside the loop) and then gives the reply.
type waitFunc func(ctx context.Context) (*xpc.Dictionary, *opError)

type adminOp func(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError)

var adminOps map[string]adminOp

func init() {
	adminOps = map[string]adminOp{
		bootstrap.OpList:           opList,
		bootstrap.OpPrint:          opPrint,
		bootstrap.OpPrintDisabled:  opPrintDisabled,
		bootstrap.OpEnable:         opEnable,
		bootstrap.OpDisable:        opDisable,
		bootstrap.OpKickstart:      opKickstart,
		bootstrap.OpKill:           opKill,
		bootstrap.OpBootstrap:      opBootstrap,
		bootstrap.OpBootout:        opBootout,
		bootstrap.OpBlame:          opBlame,
		bootstrap.OpProcinfo:       opProcinfo,
		bootstrap.OpRemoveDisabled: opRemoveDisabled,
	}
}

func badRequest(format string, args ...any) *opError {
	return &opError{reason: bootstrap.ReasonBadRequest, desc: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *opError {
	return &opError{reason: bootstrap.ReasonNotFound, desc: fmt.Sprintf(format, args...)}
}

// targetArg reads the "target" key. needLabel: it must name a job. A
// domain the caller may not read is refused here, before anything is
// made for it: a denied request creates no domain and starts nothing.
func (ss *session) targetArg(body *xpc.Dictionary, needLabel bool) (Target, *opError) {
	t, oe := parseTargetArg(body, needLabel)
	if oe != nil {
		return t, oe
	}
	if !mayRead(ss.peer.UID, t.Domain, t.UID) {
		return t, domainDenied(ss.peer.UID, "read", t.Domain)
	}
	ss.ensure(t.Domain, t.UID)
	return t, nil
}

// domainDenied is the refusal of a request on a domain the caller may not
// read or change.
func domainDenied(uid uint32, what, dom string) *opError {
	return &opError{reason: bootstrap.ReasonDenied, desc: fmt.Sprintf("uid %d may not %s %s (rule %s)", uid, what, dom, bootstrap.RuleDomainAccess),
		extra: xpc.Dict(bootstrap.KeyRule, bootstrap.RuleDomainAccess)}
}

func parseTargetArg(body *xpc.Dictionary, needLabel bool) (Target, *opError) {
	s, err := body.String(bootstrap.KeyTarget)
	if err != nil {
		return Target{}, badRequest("no target (DOMAIN or DOMAIN/LABEL)")
	}
	t, perr := ParseTarget(s)
	if perr != nil {
		return Target{}, badRequest("%v", perr)
	}
	if needLabel && t.Label == "" {
		return Target{}, badRequest("target %s: want DOMAIN/LABEL", s)
	}
	return t, nil
}

// domainArg reads the "domain" key; without it, the caller's own user
// domain (in a --user instance, the instance's domain).
func (ss *session) domainArg(body *xpc.Dictionary) (string, uint32, *opError) {
	s, err := body.String(bootstrap.KeyDomain)
	if err != nil || s == "" {
		if d := ss.m.onlyDomain(); d != nil {
			return d.name, d.owner, nil
		}
		ss.ensureOwn()
		return UserDomain(ss.peer.UID), ss.peer.UID, nil
	}
	name, owner, perr := ParseDomain(s)
	if perr != nil {
		return "", 0, badRequest("%v", perr)
	}
	if !mayRead(ss.peer.UID, name, owner) {
		return "", 0, domainDenied(ss.peer.UID, "read", name)
	}
	ss.ensure(name, owner)
	return name, owner, nil
}

// ensureOwn makes sure the caller's own user domain exists (not root's:
// LaunchAgents run as root only when root names user/0 itself).
func (ss *session) ensureOwn() {
	if ss.peer.UID != 0 {
		ss.ensure(UserDomain(ss.peer.UID), ss.peer.UID)
	}
}

// ensure makes sure a user domain exists in the system instance, loading
// the LaunchAgents into it when it is first used (by its user, or by root
// naming it). The directory is read outside the loop.
func (ss *session) ensure(dom string, owner uint32) {
	m := ss.m
	if m.userMode || m.agentsDir == "" || dom == DomainSystem || m.jobs == nil || ss.ensured[dom] {
		return
	}
	if _, ok := m.seen.Load(dom); ok {
		// Made already, by this session or another: no trip to the loop.
		ss.remember(dom)
		return
	}
	exists, closing := true, false
	if ss.do(func() { exists, closing = m.domains[dom] != nil, m.closing }) != nil || closing {
		return
	}
	if exists {
		// Domains are never removed: this session need not ask again
		// (a lookup would otherwise cost two more trips to the loop).
		ss.remember(dom)
		return
	}
	jobs, errs := m.jobs.scan(source{domain: dom, owner: owner, dir: m.agentsDir})
	ss.do(func() {
		if m.domains[dom] != nil || m.closing {
			return
		}
		d := newDomain(dom, owner)
		m.addDomain(d)
		m.installJobs(d, jobs, errs, true)
		m.log.Info("user domain created", "domain", dom, "jobs", len(d.jobs))
	})
	ss.remember(dom)
}

// remember notes that domain dom exists; owned by the session's handler.
func (ss *session) remember(dom string) {
	if ss.ensured == nil {
		ss.ensured = map[string]bool{}
	}
	ss.ensured[dom] = true
}

// onlyDomain returns the one domain of a --user instance, nil otherwise.
// The set of domains of a --user instance never changes, so this may be
// read outside the loop.
func (m *supervisor) onlyDomain() *domain {
	if !m.userMode {
		return nil
	}
	for _, d := range m.domains {
		return d
	}
	return nil
}

// served returns the domain, or an error saying this xpcd does not serve
// it. In the system instance, a user domain is made on first use.
func (m *supervisor) served(name string, owner uint32, create bool) (*domain, *opError) {
	if d := m.domains[name]; d != nil {
		return d, nil
	}
	if create && !m.userMode && name != DomainSystem {
		d := newDomain(name, owner)
		m.addDomain(d)
		return d, nil
	}
	if m.userMode {
		return nil, notFound("domain %s is not served by this xpcd (a --user instance serves %s)", name, m.onlyDomain().name)
	}
	return nil, notFound("domain %s has no jobs", name)
}

// findJob returns the loaded job t names, checking that uid may read (or,
// with modify, change) its domain.
func (m *supervisor) findJob(t Target, uid uint32, modify bool) (*job, *opError) {
	if modify && !mayModify(uid, t.Domain, t.UID) {
		return nil, domainDenied(uid, "change", t.Domain)
	}
	if !mayRead(uid, t.Domain, t.UID) {
		return nil, domainDenied(uid, "read", t.Domain)
	}
	d, oe := m.served(t.Domain, t.UID, false)
	if oe != nil {
		return nil, oe
	}
	j := d.jobs[t.Label]
	if j == nil {
		return nil, notFound("job %s is not loaded", t)
	}
	return j, nil
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

// list: {"op":"list","domain":D?} -> {"jobs":[JOB...],"errors":[ERR...]}.
// Without a domain: every domain the caller may read.
func opList(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	ss.ensureOwn()
	var only string
	if s, err := body.String(bootstrap.KeyDomain); err == nil && s != "" {
		name, owner, perr := ParseDomain(s)
		if perr != nil {
			return nil, nil, badRequest("%v", perr)
		}
		if !mayRead(ss.peer.UID, name, owner) {
			return nil, nil, domainDenied(ss.peer.UID, "read", name)
		}
		only = name
	}
	var reply *xpc.Dictionary
	var oe *opError
	if e := ss.do(func() {
		if only != "" {
			if _, oe = ss.m.served(only, 0, false); oe != nil {
				return
			}
		}
		jobs, errs := xpc.Array{}, xpc.Array{}
		for _, d := range ss.m.sortedDomains() {
			if (only != "" && d.name != only) || !mayRead(ss.peer.UID, d.name, d.owner) {
				continue
			}
			for _, j := range sortedJobs(d) {
				jobs = append(jobs, ss.m.jobDict(j))
			}
			errs = append(errs, domainErrors(d)...)
		}
		reply = xpc.NewDictionary(2)
		reply.Set(bootstrap.KeyJobs, jobs)
		reply.Set(bootstrap.KeyErrors, errs)
	}); e != nil {
		return nil, nil, e
	}
	return reply, nil, oe
}

// print: {"op":"print","target":T}. A job: its dictionary. A domain:
// {"domain":D,"jobs":[...],"errors":[...],"overrides":{LABEL:disabled}},
// and state_read_only, state_read_only_why if the state is read-only.
func opPrint(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	t, oe := ss.targetArg(body, false)
	if oe != nil {
		return nil, nil, oe
	}
	var reply *xpc.Dictionary
	if e := ss.do(func() {
		if t.Label != "" {
			var j *job
			if j, oe = ss.m.findJob(t, ss.peer.UID, false); oe == nil {
				reply = ss.m.jobDict(j)
			}
			return
		}
		if !mayRead(ss.peer.UID, t.Domain, t.UID) {
			oe = domainDenied(ss.peer.UID, "read", t.Domain)
			return
		}
		var d *domain
		if d, oe = ss.m.served(t.Domain, t.UID, false); oe != nil {
			return
		}
		jobs := xpc.Array{}
		for _, j := range sortedJobs(d) {
			jobs = append(jobs, ss.m.jobDict(j))
		}
		reply = xpc.Dict(bootstrap.KeyDomain, d.name)
		reply.Set(bootstrap.KeyJobs, jobs)
		reply.Set(bootstrap.KeyErrors, domainErrors(d))
		reply.Set(bootstrap.KeyOverrides, boolDict(ss.m.overrides[d.name]))
		ss.m.setStateReadOnly(reply)
	}); e != nil {
		return nil, nil, e
	}
	return reply, nil, oe
}

func boolDict(m map[string]bool) *xpc.Dictionary {
	d := xpc.NewDictionary(len(m))
	for _, k := range sortedKeys(m) {
		d.Set(k, xpc.Bool(m[k]))
	}
	return d
}

// overrideState is one override and whether the job it is for still
// exists: loaded, with its plist on disk.
type overrideState struct {
	label    string
	disabled bool
	plist    string // of the loaded job; "" if none is loaded
}

// overridesOf returns a domain's overrides with their jobs' plists (on the
// loop), and staleOverrides says which are stale (outside the loop: it
// looks at the file system).
func (m *supervisor) overridesOf(dom string) []overrideState {
	var out []overrideState
	d := m.domains[dom]
	for _, l := range sortedKeys(m.overrides[dom]) {
		o := overrideState{label: l, disabled: m.overrides[dom][l]}
		if d != nil && d.jobs[l] != nil {
			o.plist = d.jobs[l].def.Path
		}
		out = append(out, o)
	}
	return out
}

// The plists are looked at as the domain's user (owner), who named them: a
// root xpcd tells nobody whether a path they cannot see exists.
func staleOverrides(ovs []overrideState, owner uint32) map[string]string {
	stale := map[string]string{}
	var id *ident
	if owner != 0 {
		id = callerIdent(owner, owner, false)
	}
	asUser(id, func() error {
		for _, o := range ovs {
			if o.plist == "" {
				stale[o.label] = ""
				continue
			}
			if _, err := os.Stat(o.plist); errors.Is(err, fs.ErrNotExist) {
				stale[o.label] = o.plist
			}
		}
		return nil
	})
	return stale
}

// print-disabled: {"op":"print-disabled","domain":D?} ->
// {"domain":D,"overrides":{LABEL:disabled},"stale":[LABEL...]}: stale
// overrides are for jobs that are not loaded or whose plist is gone.
func opPrintDisabled(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	dom, owner, oe := ss.domainArg(body)
	if oe != nil {
		return nil, nil, oe
	}
	if !mayRead(ss.peer.UID, dom, owner) {
		return nil, nil, domainDenied(ss.peer.UID, "read", dom)
	}
	var ovs []overrideState
	if e := ss.do(func() { ovs = ss.m.overridesOf(dom) }); e != nil {
		return nil, nil, e
	}
	stale := staleOverrides(ovs, owner)
	o := xpc.NewDictionary(len(ovs))
	for _, ov := range ovs {
		o.Set(ov.label, xpc.Bool(ov.disabled))
	}
	reply := xpc.Dict(bootstrap.KeyDomain, dom)
	reply.Set(bootstrap.KeyOverrides, o)
	reply.Set(bootstrap.KeyStale, strArray(sortedKeys(stale)))
	return reply, nil, nil
}

// remove-disabled: {"op":"remove-disabled","domain":D?} ->
// {"removed":[LABEL...]}: the stale overrides (see print-disabled) are
// deleted, once that is on disk.
func opRemoveDisabled(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	dom, owner, oe := ss.domainArg(body)
	if oe != nil {
		return nil, nil, oe
	}
	if !mayModify(ss.peer.UID, dom, owner) {
		return nil, nil, domainDenied(ss.peer.UID, "change", dom)
	}
	if oe := ss.m.refuseReadOnly(bootstrap.OpRemoveDisabled + " " + dom); oe != nil {
		return nil, nil, oe
	}
	var ovs []overrideState
	if e := ss.do(func() { ovs = ss.m.overridesOf(dom) }); e != nil {
		return nil, nil, e
	}
	stale := staleOverrides(ovs, owner)
	var removed []string
	res := make(chan error, 1)
	if e := ss.do(func() {
		m := ss.m
		d := m.domains[dom]
		r := &overrideRequest{done: func(err error) { res <- err }}
		for _, label := range sortedKeys(stale) {
			if _, ok := m.overrides[dom][label]; !ok {
				continue
			}
			// Still stale? A job may have been loaded meanwhile.
			if d != nil && d.jobs[label] != nil && d.jobs[label].def.Path != stale[label] {
				continue
			}
			r.changes = append(r.changes, overrideChange{dom: dom, label: label, remove: true})
			removed = append(removed, label)
		}
		if len(removed) > 0 {
			m.changeOverrides(r)
		}
	}); e != nil {
		return nil, nil, e
	}
	reply := xpc.NewDictionary(1)
	reply.Set(bootstrap.KeyRemoved, strArray(removed))
	if len(removed) == 0 {
		return reply, nil, nil
	}
	return nil, waitSaved(bootstrap.OpRemoveDisabled+" "+dom, res, func() *xpc.Dictionary { return reply }), nil
}

// waitSaved waits for a change of the overrides to be written and
// committed (res), and replies with reply(), or with bootstrap.ReasonIO naming the
// file and the cause: then nothing changed.
func waitSaved(what string, res <-chan error, reply func() *xpc.Dictionary) waitFunc {
	return func(ctx context.Context) (*xpc.Dictionary, *opError) {
		select {
		case err := <-res:
			if err != nil {
				return nil, &opError{reason: bootstrap.ReasonIO, desc: fmt.Sprintf("%s: %v; nothing changed", what, err)}
			}
			return reply(), nil
		case <-ctx.Done():
			return nil, &opError{reason: bootstrap.ReasonIO, desc: fmt.Sprintf("%s: gave up waiting for the state to be written: %v", what, ctx.Err())}
		}
	}
}

// refuseReadOnly refuses a change of the overrides (what) when the state
// is read-only.
func (m *supervisor) refuseReadOnly(what string) *opError {
	why := m.stateReadOnly()
	if why == "" {
		return nil
	}
	return &opError{reason: bootstrap.ReasonReadOnlyState,
		desc: fmt.Sprintf("%s: refused, the state is read-only (%s): the change could not be kept", what, why)}
}

// enable, disable: {"op":"enable"|"disable","target":DOMAIN/LABEL} ->
// {"status":"enabled"|"disabled","loaded":bool}. The override is written
// before it applies and before the reply: if it cannot be written, the
// request fails with bootstrap.ReasonIO and nothing changes. It holds across
// restarts and reloads, for a job loaded now or later. A disabled job is
// not launched (lookups of its names fail with not-found, saying it is
// disabled; KeepAlive does not restart it) but an instance already running
// is left to finish. Enabling a job that starts at load starts it.
func opEnable(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	return setEnabled(ss, body, false)
}

func opDisable(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	return setEnabled(ss, body, true)
}

func setEnabled(ss *session, body *xpc.Dictionary, disable bool) (*xpc.Dictionary, waitFunc, *opError) {
	t, oe := ss.targetArg(body, true)
	if oe != nil {
		return nil, nil, oe
	}
	if !mayModify(ss.peer.UID, t.Domain, t.UID) {
		return nil, nil, domainDenied(ss.peer.UID, "change", t.Domain)
	}
	op, status := bootstrap.OpEnable, "enabled"
	if disable {
		op, status = bootstrap.OpDisable, "disabled"
	}
	if oe := ss.m.refuseReadOnly(op + " " + t.String()); oe != nil {
		return nil, nil, oe
	}
	res := make(chan error, 1)
	loaded := false // written on the loop before res
	if e := ss.do(func() {
		m := ss.m
		if m.userMode && m.domains[t.Domain] == nil {
			_, oe = m.served(t.Domain, t.UID, false)
			return
		}
		if oe = m.roomForOverride(t); oe != nil {
			return
		}
		m.changeOverrides(&overrideRequest{
			changes: []overrideChange{{dom: t.Domain, label: t.Label, disabled: disable}},
			done: func(err error) {
				if err == nil {
					loaded = m.applyDisabled(t.Domain, t.Label)
				}
				res <- err
			},
		})
	}); e != nil {
		return nil, nil, e
	}
	if oe != nil {
		return nil, nil, oe
	}
	return nil, waitSaved(op+" "+t.String(), res, func() *xpc.Dictionary {
		return xpc.Dict(bootstrap.KeyStatus, status, bootstrap.KeyLoaded, loaded)
	}), nil
}

// kickstart: {"op":"kickstart","target":DOMAIN/LABEL,"kill":bool} ->
// {"status":"started"|"already running"|"restarting","pid":N}. It starts
// the job now, throttle or not; with kill, a running instance is stopped
// first and the job started again as soon as it has exited.
func opKickstart(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	t, oe := ss.targetArg(body, true)
	if oe != nil {
		return nil, nil, oe
	}
	kill, _ := body.Bool(bootstrap.KeyKill)
	var reply *xpc.Dictionary
	res := make(chan error, 1)
	var inst *instance
	if e := ss.do(func() {
		m := ss.m
		var j *job
		if j, oe = m.findJob(t, ss.peer.UID, true); oe != nil {
			return
		}
		switch {
		case j.unloading:
			oe = &opError{reason: bootstrap.ReasonDraining, desc: fmt.Sprintf("job %s is being unloaded", t)}
		case j.disabled:
			oe = &opError{reason: bootstrap.ReasonDisabled, desc: fmt.Sprintf("job %s is disabled (xpcctl enable %s)", t, t)}
		case j.inst != nil && !kill:
			reply = xpc.Dict(bootstrap.KeyStatus, "already running", bootstrap.KeyPID, j.inst.pid)
		case j.inst != nil:
			j.inst.restart = launchReason{why: reasonKickstart}
			reply = xpc.Dict(bootstrap.KeyStatus, "restarting", bootstrap.KeyPID, j.inst.pid)
			m.stop(j.inst, stopKickstart)
		default:
			j.notBefore = time.Time{}
			j.refused = nil // an administrator's explicit start is tried
			inst = m.spawn(j, launchReason{why: reasonKickstart})
			inst.spawnErrW = append(inst.spawnErrW, func(err error) { res <- err })
			m.changed(j)
		}
	}); e != nil {
		return nil, nil, e
	}
	if oe != nil || reply != nil {
		return reply, nil, oe
	}
	return nil, func(ctx context.Context) (*xpc.Dictionary, *opError) {
		select {
		case err := <-res:
			if err != nil {
				return nil, &opError{reason: bootstrap.ReasonLaunchFailed, desc: fmt.Sprintf("kickstart %s: %v", t, err)}
			}
			// pid was set on the loop before res was written.
			return xpc.Dict(bootstrap.KeyStatus, "started", bootstrap.KeyPID, inst.pid), nil
		case <-ctx.Done():
			return nil, &opError{reason: bootstrap.ReasonShuttingDown, desc: ctx.Err().Error()}
		}
	}, nil
}

// kill: {"op":"kill","target":DOMAIN/LABEL,"signal":N (default 15)} ->
// {"status":"signaled","pid":N}. The signal goes to the process through its
// pidfd.
func opKill(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	t, oe := ss.targetArg(body, true)
	if oe != nil {
		return nil, nil, oe
	}
	sig := int64(syscall.SIGTERM)
	if v, err := body.Int64(bootstrap.KeySignal); err == nil {
		sig = v
	}
	if sig < 1 || sig > 64 {
		return nil, nil, badRequest("signal %d out of range", sig)
	}
	var reply *xpc.Dictionary
	if e := ss.do(func() {
		var j *job
		if j, oe = ss.m.findJob(t, ss.peer.UID, true); oe != nil {
			return
		}
		if j.inst == nil || j.inst.spawning {
			oe = &opError{reason: bootstrap.ReasonNotRunning, desc: fmt.Sprintf("job %s is not running", t)}
			return
		}
		if err := j.inst.proc.signal(syscall.Signal(sig)); err != nil {
			oe = &opError{reason: bootstrap.ReasonNotRunning, desc: fmt.Sprintf("signal %s: %v", t, err)}
			return
		}
		reply = xpc.Dict(bootstrap.KeyStatus, "signaled", bootstrap.KeyPID, j.inst.pid)
	}); e != nil {
		return nil, nil, e
	}
	return reply, nil, oe
}

// bootstrap: {"op":"bootstrap","domain":D,"path":PLIST} ->
// {"status":S,"label":L}. S is "loaded"; "already loaded" for the same
// label with the same settings (Fingerprint), from any path; "upgraded"
// for changed settings of a job not running (the new definition is
// used at once); "upgrade pending" for changed settings of a running job
// (it is stopped once clean and its next launch uses the new definition).
// A plist that does not load fails with reason bad-plist and "errors":
// [{file,key,reason,error}].
func opBootstrap(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	dom, owner, oe := ss.domainArg(body)
	if oe != nil {
		return nil, nil, oe
	}
	path, err := body.String(bootstrap.KeyPath)
	if err != nil || !filepath.IsAbs(path) {
		return nil, nil, badRequest("bootstrap: want an absolute path")
	}
	if !mayModify(ss.peer.UID, dom, owner) {
		return nil, nil, domainDenied(ss.peer.UID, "change", dom)
	}
	def, lerrs := ss.readPlist(body, dom, owner, filepath.Clean(path))
	if lerrs != nil {
		var descs []string
		errs := xpc.Array{}
		for _, le := range lerrs {
			descs = append(descs, le.String())
			errs = append(errs, loadErrorDict(le))
		}
		return nil, nil, &opError{reason: bootstrap.ReasonBadPlist, desc: strings.Join(descs, "; "), extra: xpc.Dict(bootstrap.KeyErrors, errs)}
	}
	var reply *xpc.Dictionary
	if e := ss.do(func() { reply, oe = ss.m.bootstrap(dom, owner, def) }); e != nil {
		return nil, nil, e
	}
	return reply, nil, oe
}

// readPlist reads the plist a bootstrap request names, with the
// requester's rights, never xpcd's: from the descriptor the requester
// opened and sent ("plist", as xpcctl does, like launchctl handing launchd
// its plist), or else by opening path as the requester (its uid and gid
// from the kernel, its groups from the user database). Either way an error
// says only what the requester could have learnt by opening the file
// itself.
func (ss *session) readPlist(body *xpc.Dictionary, dom string, owner uint32, path string) (*launchd.Job, []loadError) {
	if fd, ok := body.Get(bootstrap.KeyPlist).(*xpc.FD); ok {
		return loadPlistFile(dom, owner, fd.File(), path)
	}
	var f *os.File
	err := asUser(callerIdent(ss.peer.UID, ss.peer.GID, true), func() error {
		var oerr error
		// O_NONBLOCK: opening a FIFO must not wait for a writer.
		f, oerr = os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		return oerr
	})
	if err != nil {
		return nil, []loadError{{Domain: dom, File: path, Reason: openReason(err)}}
	}
	defer f.Close()
	return loadPlistFile(dom, owner, f, path)
}

func (m *supervisor) bootstrap(dom string, owner uint32, def *launchd.Job) (*xpc.Dictionary, *opError) {
	d, oe := m.served(dom, owner, true)
	if oe != nil {
		return nil, oe
	}
	status := func(s string) *xpc.Dictionary { return xpc.Dict(bootstrap.KeyStatus, s, bootstrap.KeyLabel, def.Label) }
	j := d.jobs[def.Label]
	if j == nil {
		if m.root && d.name != DomainSystem && d.owner != 0 && len(d.jobs) >= maxJobsPerUserDomain {
			re := refusedBy(bootstrap.RuleJobLimit, "%s has %d jobs loaded, the limit", d.name, len(d.jobs))
			return nil, ruleOpError(re, "bootstrap %s: %s", def.Label, re.Detail)
		}
		if _, oe := m.addJob(d, def, true); oe != nil {
			return nil, oe
		}
		m.otherJobsChanged(d)
		m.log.Info("loaded", "target", dom+"/"+def.Label, "plist", def.Path)
		return status("loaded"), nil
	}
	if j.unloading {
		return nil, &opError{reason: bootstrap.ReasonDraining, desc: fmt.Sprintf("job %s is still draining after bootout; try again when it has exited", j.target())}
	}
	fp := def.Fingerprint()
	if fp == j.fp && j.next == nil {
		return status("already loaded"), nil
	}
	if j.next != nil && fp == j.next.Fingerprint() {
		return status("upgrade pending"), nil
	}
	if oe := m.checkNames(d, def, j); oe != nil {
		return nil, oe
	}
	if j.inst == nil {
		m.replaceDef(j, def)
		if !j.disabled {
			m.atLoad(j)
		}
		m.changed(j)
		return status("upgraded"), nil
	}
	// Reserve the new names now; the old ones go when the instance does.
	j.next = def
	for name := range def.MachServices {
		d.names[name] = j
	}
	j.inst.upgrade = true
	m.upgradeIfClean(j.inst)
	m.changed(j)
	return status("upgrade pending"), nil
}

// bootout: {"op":"bootout","target":DOMAIN/LABEL,"wait":bool} ->
// {"status":"not loaded"|"unloaded"|"stopping"}. The job's names go at
// once; a running instance is stopped (terminate, SIGTERM, SIGKILL after
// ExitTimeOut) and the job removed when it has exited. With wait, the
// reply comes then, with status "unloaded".
func opBootout(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	t, oe := ss.targetArg(body, true)
	if oe != nil {
		return nil, nil, oe
	}
	wait, _ := body.Bool(bootstrap.KeyWait)
	if !mayModify(ss.peer.UID, t.Domain, t.UID) {
		return nil, nil, domainDenied(ss.peer.UID, "change", t.Domain)
	}
	var status string
	var gone chan struct{}
	if e := ss.do(func() {
		m := ss.m
		d := m.domains[t.Domain]
		if d == nil || d.jobs[t.Label] == nil {
			status = "not loaded"
			return
		}
		j := d.jobs[t.Label]
		if !j.unloading {
			j.unloading = true
			for name, o := range d.names {
				if o == j {
					delete(d.names, name)
				}
			}
			j.next = nil
			m.dropQueue(j)
			j.cancelThrottle()
			m.syncSchedule(j)
			if j.inst == nil {
				m.finishUnload(j)
				status = "unloaded"
				return
			}
			m.stop(j.inst, stopBootout)
		}
		status = "stopping"
		gone = make(chan struct{})
		j.unloadWaiters = append(j.unloadWaiters, gone)
		m.changed(j)
	}); e != nil {
		return nil, nil, e
	}
	if !wait || gone == nil {
		return xpc.Dict(bootstrap.KeyStatus, status), nil, nil
	}
	return nil, func(ctx context.Context) (*xpc.Dictionary, *opError) {
		select {
		case <-gone:
			return xpc.Dict(bootstrap.KeyStatus, "unloaded"), nil
		case <-ctx.Done():
			return nil, &opError{reason: bootstrap.ReasonShuttingDown, desc: ctx.Err().Error()}
		}
	}, nil
}

// blame: {"op":"blame","target":DOMAIN/LABEL} -> {"why":TEXT}.
func opBlame(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	t, oe := ss.targetArg(body, true)
	if oe != nil {
		return nil, nil, oe
	}
	var reply *xpc.Dictionary
	if e := ss.do(func() {
		var j *job
		if j, oe = ss.m.findJob(t, ss.peer.UID, false); oe == nil {
			reply = xpc.Dict(bootstrap.KeyWhy, ss.m.blame(j), bootstrap.KeyState, j.stateOf())
		}
	}); e != nil {
		return nil, nil, e
	}
	return reply, nil, oe
}

// procinfo: {"op":"procinfo","pid":N} -> {"pid","domain","label",
// "launch_reason","requester_pid"?,"since","adopted"} for a process xpcd
// launched.
func opProcinfo(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	pid, err := body.Int64(bootstrap.KeyPID)
	if err != nil || pid <= 0 {
		return nil, nil, badRequest("procinfo: want a pid")
	}
	var reply *xpc.Dictionary
	var oe *opError
	if e := ss.do(func() {
		inst := ss.m.byPID[int(pid)]
		if inst == nil {
			oe = notFound("pid %d is not a process xpcd launched that uid %d may see", pid, ss.peer.UID)
			return
		}
		if d := inst.job.dom; !mayRead(ss.peer.UID, d.name, d.owner) {
			// As for a pid xpcd did not launch: whose job a pid
			// is, is the domain's business.
			oe = notFound("pid %d is not a process xpcd launched that uid %d may see", pid, ss.peer.UID)
			return
		}
		reply = ss.m.procInfo(inst)
	}); e != nil {
		return nil, nil, e
	}
	return reply, nil, oe
}
