package xpcd

import (
	"context"
	"fmt"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
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
		bootstrap.OpExitReason:     opExitReason,
		bootstrap.OpActivityList:   opActivityList,
		bootstrap.OpActivityPrint:  opActivityPrint,
		bootstrap.OpActivityRun:    opActivityRun,
		bootstrap.OpMonitor:        opMonitor,
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
	if ss.ensured[dom] {
		return
	}
	if m.ensureDomain(dom, owner) {
		// Domains are never removed: this session need not ask again
		// (a lookup would otherwise cost two more trips to the loop).
		ss.remember(dom)
	}
}

// ensureDomain makes user domain dom of owner in the system instance, if
// it does not exist yet: its LaunchAgents (read here, off the loop) are
// installed, those with RunAtLoad started, and the applications its user
// registered loaded. It reports whether the domain exists now (false in a
// --user instance, or when xpcd is stopping). Not on the loop.
func (m *supervisor) ensureDomain(dom string, owner uint32) bool {
	if m.userMode || m.agentsDir == "" || dom == DomainSystem || m.jobs == nil {
		return false
	}
	if _, ok := m.seen.Load(dom); ok {
		return true // made already: no trip to the loop
	}
	exists, closing := true, false
	if m.call(context.Background(), func() { exists, closing = m.domains[dom] != nil, m.closing }) != nil || closing {
		return false
	}
	if exists {
		return true
	}
	jobs, errs := m.jobs.scan(source{domain: dom, owner: owner, dir: m.agentsDir})
	bucket := m.buckets.of(owner)
	made := false
	m.call(context.Background(), func() {
		if m.closing {
			return
		}
		made = true
		if m.domains[dom] != nil {
			return
		}
		d := newDomain(dom, owner, bucket)
		m.addDomain(d)
		m.installJobs(d, jobs, errs, true)
		m.log.Info("user domain created", "domain", dom, "jobs", len(d.jobs))
	})
	return made
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
// it. In the system instance, a user domain is made on first use
// (bootstrap, ensure).
func (m *supervisor) served(name string, owner uint32) (*domain, *opError) {
	if d := m.domains[name]; d != nil {
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
	d, oe := m.served(t.Domain, t.UID)
	if oe != nil {
		return nil, oe
	}
	j := d.jobs[t.Label]
	if j == nil {
		return nil, notFound("job %s is not loaded", t)
	}
	return j, nil
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
			if _, oe = ss.m.served(only, 0); oe != nil {
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
		jobs = append(jobs, ss.m.appJobDicts(ss.peer.UID, only)...) // apps_print.go
		reply = xpc.NewDictionary(2)
		reply.Set(bootstrap.KeyJobs, jobs)
		reply.Set(bootstrap.KeyErrors, errs)
	}); e != nil {
		return nil, nil, e
	}
	return reply, nil, oe
}

// print: {"op":"print","target":T}. A job: its dictionary, with print's
// status keys (render_status.go). A domain:
// {"domain":D,"jobs":[...],"errors":[...],"overrides":{LABEL:disabled}},
// and state_read_only, state_read_only_why if the state is read-only.
func opPrint(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	if s, _ := body.String(bootstrap.KeyTarget); isAppTarget(s) {
		return opPrintApps(ss, s) // apps_print.go
	}
	t, oe := ss.targetArg(body, false)
	if oe != nil {
		return nil, nil, oe
	}
	var reply *xpc.Dictionary
	var proc *procQuery // print's status keys (render_status.go)
	var pj *programJob  // failfast_program.go
	if e := ss.do(func() {
		if t.Label != "" {
			var j *job
			if j, oe = ss.m.findJob(t, ss.peer.UID, false); oe == nil {
				reply, pj = ss.m.jobDict(j), programJobOf(j)
				proc = setStatusKeys(reply, j, ss.peer.UID)
				if reqs := requirementsOf(j); len(reqs) > 0 {
					reply.Set(keyRequirements, requirementsDict(reqs))
				}
				if acts := jobActivities(j); acts != nil {
					reply.Set(bootstrap.KeyActivities, acts)
				}
				ss.setLogKeys(reply, j.dom.name, j.dom.owner, j.def.Label) // admin_log.go
			}
			return
		}
		if !mayRead(ss.peer.UID, t.Domain, t.UID) {
			oe = domainDenied(ss.peer.UID, "read", t.Domain)
			return
		}
		var d *domain
		if d, oe = ss.m.served(t.Domain, t.UID); oe != nil {
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
	if proc != nil {
		addProcKeys(reply, proc, callerIdent(ss.peer.UID, ss.peer.GID, true))
	}
	ss.warnProgram(reply, pj)
	return reply, nil, oe
}

func boolDict(m map[string]bool) *xpc.Dictionary {
	d := xpc.NewDictionary(len(m))
	for _, k := range sortedKeys(m) {
		d.Set(k, xpc.Bool(m[k]))
	}
	return d
}

// blame: {"op":"blame","target":DOMAIN/LABEL} -> {"why":TEXT}. The
// text ends with who may look the job's names up, if a requirement
// restricts it, and whether the caller would be refused.
func opBlame(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	t, oe := ss.targetArg(body, true)
	if oe != nil {
		return nil, nil, oe
	}
	var why, state string
	var reqs []nameRequirement
	if e := ss.do(func() {
		var j *job
		if j, oe = ss.m.findJob(t, ss.peer.UID, false); oe == nil {
			why, state, reqs = ss.m.blame(j), j.stateOf(), requirementsOf(j)
		}
	}); e != nil {
		return nil, nil, e
	}
	if oe != nil {
		return nil, nil, oe
	}
	// (Checked here, off the loop: a requirement may read the caller's
	// executable.)
	return xpc.Dict(bootstrap.KeyWhy, why+lookupBlame(reqs, ss.peer, ss.m.trust), bootstrap.KeyState, state), nil, nil
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
