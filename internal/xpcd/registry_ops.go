package xpcd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// The registry's requests (docs/XPCD.md, "Application services"):
// app-register, app-unregister, app-status, app-list, app-repair. Each
// reads the bundle it names in the session's goroutine, with the caller's
// rights, and changes the registry on the loop.

func init() {
	adminOps[bootstrap.OpAppRegister] = opAppRegister
	adminOps[bootstrap.OpAppUnregister] = opAppUnregister
	adminOps[bootstrap.OpAppStatus] = opAppStatus
	adminOps[bootstrap.OpAppList] = opAppList
	adminOps[bootstrap.OpAppRepair] = opAppRepair
	adminOps[bootstrap.OpApprovalList] = opApprovalList
	adminOps[bootstrap.OpApprove] = opApprove
	adminOps[bootstrap.OpDeny] = opDeny
}

// appArgs is a request's service: bundle, kind, plist.
type appArgs struct {
	root, kind, plist string
	gid               uint32 // the registering process's kernel-attested gid
}

func parseAppArgs(body *xpc.Dictionary) (appArgs, *opError) {
	var a appArgs
	p, err := body.String(bootstrap.KeyPath)
	if err != nil || !filepath.IsAbs(p) {
		return a, badRequest("want the bundle's absolute path (%s)", bootstrap.KeyPath)
	}
	a.root = filepath.Clean(p)
	if len(a.root) > maxBundlePath {
		return a, badRequest("a bundle path of %d bytes: the longest taken is %d", len(a.root), maxBundlePath)
	}
	a.kind, _ = body.String(bootstrap.KeyAppKind)
	if a.kind == "" {
		a.kind = bootstrap.AppKindMain
	}
	switch a.kind {
	case bootstrap.AppKindMain:
	case bootstrap.AppKindAgent, bootstrap.AppKindDaemon:
		a.plist, _ = body.String(bootstrap.KeyAppPlist)
		if oe := checkPlistName(a.plist); oe != nil {
			return a, oe
		}
	default:
		return a, badRequest("unknown service kind %q (want %s, %s or %s)", a.kind, bootstrap.AppKindMain, bootstrap.AppKindAgent, bootstrap.AppKindDaemon)
	}
	return a, nil
}

// appDomain is the domain a's job goes to, for the caller: a daemon's is
// system; a main app's or an agent's, the caller's user domain (in a
// --user instance, the instance's).
func (ss *session) appDomain(a appArgs) (string, uint32, *opError) {
	if a.kind == bootstrap.AppKindDaemon {
		if ss.m.userMode {
			oe := &opError{reason: bootstrap.ReasonWrongDomain, desc: fmt.Sprintf("daemons are registered with the system instance of xpcd (xpcd --system, run as root); this one, an xpcd --user, serves %s only", ss.m.onlyDomain().name)}
			oe.extra = xpc.Dict(bootstrap.KeyDomain, DomainSystem)
			return "", 0, oe
		}
		return DomainSystem, 0, nil
	}
	if d := ss.m.onlyDomain(); d != nil {
		return d.name, d.owner, nil
	}
	dom := UserDomain(ss.peer.UID)
	ss.ensure(dom, ss.peer.UID)
	return dom, ss.peer.UID, nil
}

func (ss *session) caller() *ident { return callerIdent(ss.peer.UID, ss.peer.GID, true) }

// app-register: {"op":"app-register","path":BUNDLE,"app_kind":K,
// "app_plist":P} -> {"status","label","domain","approval_id"?}, once the
// registration is on disk.
func opAppRegister(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	a, oe := parseAppArgs(body)
	if oe != nil {
		return nil, nil, oe
	}
	dom, owner, oe := ss.appDomain(a)
	if oe != nil {
		return nil, nil, oe
	}
	a.gid = ss.peer.GID
	rd, oe := readRegistration(ss.caller(), ss.m.trust, a.root, a.kind, a.plist)
	if oe != nil {
		return nil, nil, oe
	}
	saved := make(chan error, 1)
	var r *registration
	var reply *xpc.Dictionary
	var ask bool
	var approvalID string
	if e := ss.do(func() {
		r, oe = ss.m.register(ss.peer.UID, ss.bucket, dom, owner, a, rd, func(err error) { saved <- err })
		if oe == nil {
			reply = xpc.Dict(bootstrap.KeyStatus, r.status(), bootstrap.KeyLabel, r.Label, bootstrap.KeyDomain, r.Domain)
			if r.ApprovalID != "" {
				reply.Set(bootstrap.KeyApprovalID, xpc.String(r.ApprovalID))
			}
			if ss.m.authority != nil && r.needsApproval() && !r.asking && ss.m.mayAsk(ss.bucket) {
				r.asking, ask, approvalID = true, true, r.ApprovalID
			}
		}
	}); e != nil {
		return nil, nil, e
	}
	if oe != nil {
		return nil, nil, oe
	}
	if ask {
		ss.askAuthority(r.key(), approvalID, rd)
	}
	return nil, waitRegSaved("app-register", saved, reply), nil
}

// stateOpError is the answer to a change whose write failed. The change
// itself holds (it was made on the loop before the write): the answer
// says so, and that the registry is written again with the next change
// and as xpcd stops (flushRegistry), so it is lost only if every one of
// those writes fails too.
func stateOpError(what string, err error) *opError {
	if errors.Is(err, ErrStateReadOnly) {
		return &opError{reason: bootstrap.ReasonReadOnlyState, desc: fmt.Sprintf("%s: the state is read-only: %v", what, err)}
	}
	return &opError{reason: bootstrap.ReasonIO, desc: fmt.Sprintf("%s: done, but not saved: %v (in effect now; xpcd writes the registry again with its next change and as it stops)", what, err)}
}

// register records rd as the registration of a (for uid, into dom) and
// loads its job, on the loop; saved is told when the registry is on disk.
// The same identity registered again (from any path) updates the
// registration and redefines its job (bootstrap's upgrade).
func (m *supervisor) register(uid, bucket uint32, dom string, owner uint32, a appArgs, rd *bundleRead, saved func(error)) (*registration, *opError) {
	m.reg.init()
	if m.regReadOnly() != "" {
		return nil, &opError{reason: bootstrap.ReasonReadOnlyState, desc: fmt.Sprintf("register %s: the state is read-only (%s)", rd.id, m.regReadOnly())}
	}
	nr := &registration{Kind: a.kind, UID: uid, GID: a.gid, Identifier: rd.id.Identifier, Team: rd.id.Team, Signed: rd.id.Signed,
		Plist: a.plist, Root: rd.root, Domain: dom, Label: rd.def.Label, Program: rd.program, Digest: rd.digest, JobDigest: rd.jobDigest,
		Since: time.Now(), def: rd.def, bucket: bucket}
	key := nr.key()
	old := m.reg.regs[key]
	if old != nil {
		if old.Signed && (!nr.Signed || nr.Team != old.Team) {
			this := "unsigned"
			if nr.Signed {
				this = "signed by team " + nr.Team
			}
			re := refusedBy(bootstrap.RuleAppIdentity, "%s is registered by a bundle signed by team %s (%s); %s, this one cannot take it over: sign its main executable as team %s, or unregister the other first", old.Identifier, old.Team, old.Root, this, old.Team)
			return nil, ruleOpError(re, "register %s: %s", rd.root, re.Detail)
		}
		if a.kind == bootstrap.AppKindDaemon && uid != 0 && old.UID != uid {
			re := refusedBy(bootstrap.RuleAppOwner, "daemon %s of %s was registered by uid %d (from %s); only that user or root may change or unregister it", a.plist, old.Identifier, old.UID, old.Root)
			return nil, ruleOpError(re, "register %s: %s", rd.root, re.Detail)
		}
		if old.UID != uid {
			nr.GID = old.GID
		}
		nr.UID, nr.Since = old.UID, old.Since
		// An approval holds for the same team, or the same program run
		// the same way (an unsigned bundle's plist is not signed); so
		// does its id: an administrator approving the id they listed
		// never approves another program than the one they were shown.
		if nr.Signed && old.Signed || !nr.Signed && !old.Signed && nr.Digest == old.Digest && nr.JobDigest == old.JobDigest {
			nr.ApprovalID = old.ApprovalID
			if old.Approved {
				nr.Approved, nr.ApprovedBy = true, old.ApprovedBy
			}
		}
	} else {
		if uid != 0 {
			if n := m.countRegs(bucket); n >= maxRegistrationsPerUser {
				re := refusedBy(bootstrap.RuleAppLimit, "%s has %d registrations, the limit (xpcctl app repair removes the stale ones)", bucketName(bucket), n)
				return nil, ruleOpError(re, "register %s: %s", rd.root, re.Detail)
			}
		}
		if len(m.reg.regs) >= maxRegistrations {
			re := refusedBy(bootstrap.RuleAppLimit, "xpcd has %d registrations, the limit", len(m.reg.regs))
			return nil, ruleOpError(re, "register %s: %s", rd.root, re.Detail)
		}
	}
	if nr.Kind == bootstrap.AppKindDaemon && nr.UID != 0 && nr.ApprovalID == "" {
		nr.ApprovalID = m.newApprovalID()
	}
	// The label must be free, or the registration's own.
	if o := m.regOwns(dom, nr.Label); o != nil && o != old {
		return nil, &opError{reason: bootstrap.ReasonExists, desc: fmt.Sprintf("register %s: label %s in %s is registered already, by %s (%s)", rd.root, nr.Label, dom, o.Identifier, o.Root)}
	}
	if d := m.domains[dom]; d != nil {
		if j := d.jobs[nr.Label]; j != nil && (old == nil || old.Domain != dom || old.Label != nr.Label || m.regJob(old) != j) {
			return nil, &opError{reason: bootstrap.ReasonExists, desc: fmt.Sprintf("register %s: label %s is already loaded in %s from %s", rd.root, nr.Label, dom, j.def.Path)}
		}
	}
	// Gate first: loading starts what starts at load.
	t := nr.target()
	_, wasGated := m.reg.gate[t]
	if nr.needsApproval() {
		m.reg.gate[t] = nr.ApprovalID
	} else {
		delete(m.reg.gate, t)
	}
	if _, oe := m.bootstrap(dom, owner, bucket, nr.def); oe != nil {
		if wasGated {
			m.reg.gate[t] = old.ApprovalID
		} else {
			delete(m.reg.gate, t)
		}
		return nil, oe
	}
	if old != nil && old.target() != t {
		m.unloadReg(old)
	}
	m.reg.regs[key] = nr
	if j := m.regJob(nr); j != nil {
		switch {
		case wasGated && !nr.needsApproval():
			m.syncSchedule(j)
			m.atLoad(j)
		case !wasGated && nr.needsApproval():
			m.syncSchedule(j)
			if j.inst != nil && j.inst.stopWhy == "" {
				m.stop(j.inst, stopBootout)
			}
		}
		m.changed(j)
	}
	m.log.Info("registered", "target", t, "bundle", nr.Root, "identity", rd.id.String(), "uid", uid, "status", nr.status())
	m.saveRegistry(saved)
	m.appChanged()
	return nr, nil
}

// unloadReg unloads r's job, as bootout does; the channel is closed once
// it is gone.
func (m *supervisor) unloadReg(r *registration) chan struct{} {
	gone := make(chan struct{})
	delete(m.reg.gate, r.target())
	j := m.regJob(r)
	if j == nil {
		close(gone)
		return gone
	}
	j.unloadWaiters = append(j.unloadWaiters, gone)
	if !j.unloading && !m.bootout(j, stopBootout) {
		m.changed(j)
	}
	return gone
}

// findReg finds the registration of a for uid: by rd's identity if the
// bundle was read, else by its path.
func (m *supervisor) findReg(uid uint32, a appArgs, rd *bundleRead) *registration {
	m.reg.init()
	scope := uid
	if a.kind == bootstrap.AppKindDaemon {
		scope = 0
	}
	if rd != nil {
		return m.reg.regs[regKey{kind: a.kind, scope: scope, identifier: rd.id.Identifier, plist: a.plist}]
	}
	for _, r := range m.sortedRegs() {
		if r.key().scope == scope && r.Kind == a.kind && r.Plist == a.plist && r.Root == a.root {
			return r
		}
	}
	return nil
}

// readForLookup reads a's bundle for unregister and status: a bundle that
// is not there is no error (nil), the registration is then found by path.
func (ss *session) readForLookup(a appArgs) (*bundleRead, *opError) {
	rd, oe := readRegistration(ss.caller(), ss.m.trust, a.root, a.kind, a.plist)
	if oe != nil && oe.reason == bootstrap.ReasonNotFound {
		return nil, nil
	}
	return rd, oe
}

// unreadable: oe is readRegistration's refusal of a bundle that is there
// but does not read: malformed, or its signature refused.
func unreadable(oe *opError) bool {
	if oe.reason == bootstrap.ReasonBadRequest {
		return true
	}
	if oe.extra == nil {
		return false
	}
	rule, _ := oe.extra.String(bootstrap.KeyRule)
	return oe.reason == bootstrap.ReasonDenied && rule == bootstrap.RuleAppIdentity
}

// app-unregister: -> {"status":"not-registered"} once the job has
// stopped and is unloaded, and the registry is on disk.
func opAppUnregister(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	a, oe := parseAppArgs(body)
	if oe != nil {
		return nil, nil, oe
	}
	rd, readErr := ss.readForLookup(a)
	if readErr != nil && !unreadable(readErr) {
		return nil, nil, readErr
	}
	// A bundle that no longer reads (a plist broken, a program changed
	// since it was signed) can still be unregistered: its registration
	// is found by path, as a deleted bundle's is.
	saved := make(chan error, 1)
	var gone chan struct{}
	if e := ss.do(func() {
		m := ss.m
		r := m.findReg(ss.peer.UID, a, rd)
		switch {
		case r == nil && readErr != nil:
			oe = readErr
		case r == nil:
			oe = &opError{reason: bootstrap.ReasonNotRegistered, desc: fmt.Sprintf("%s of %s is not registered", a.what(), a.root)}
		case r.Kind == bootstrap.AppKindDaemon && ss.peer.UID != 0 && r.UID != ss.peer.UID:
			re := refusedBy(bootstrap.RuleAppOwner, "daemon %s of %s was registered by uid %d (from %s); only that user or root may change or unregister it", r.Plist, r.Identifier, r.UID, r.Root)
			oe = ruleOpError(re, "unregister %s: %s", a.root, re.Detail)
		case m.regReadOnly() != "":
			oe = &opError{reason: bootstrap.ReasonReadOnlyState, desc: fmt.Sprintf("unregister %s: the state is read-only (%s)", a.root, m.regReadOnly())}
		default:
			gone = m.removeReg(r, func(err error) { saved <- err })
		}
	}); e != nil {
		return nil, nil, e
	}
	if oe != nil {
		return nil, nil, oe
	}
	return nil, func(ctx context.Context) (*xpc.Dictionary, *opError) {
		for _, c := range []<-chan struct{}{gone} {
			select {
			case <-c:
			case <-ctx.Done():
				return nil, &opError{reason: bootstrap.ReasonShuttingDown, desc: ctx.Err().Error()}
			}
		}
		select {
		case err := <-saved:
			if err != nil {
				return nil, stateOpError("app-unregister", err)
			}
		case <-ctx.Done():
			return nil, &opError{reason: bootstrap.ReasonShuttingDown, desc: ctx.Err().Error()}
		}
		return xpc.Dict(bootstrap.KeyStatus, bootstrap.AppStatusNotRegistered), nil
	}, nil
}

// removeReg removes r and unloads its job (on the loop).
func (m *supervisor) removeReg(r *registration, saved func(error)) chan struct{} {
	delete(m.reg.regs, r.key())
	gone := m.unloadReg(r)
	m.log.Info("unregistered", "target", r.target(), "bundle", r.Root, "identifier", r.Identifier)
	m.saveRegistry(saved)
	m.appChanged()
	return gone
}

func (a appArgs) what() string {
	if a.kind == bootstrap.AppKindMain {
		return "the main app"
	}
	return a.kind + " " + a.plist
}

// app-status: -> {"status": S}. A bundle (or plist) that does not exist is
// not-found, registered or not.
func opAppStatus(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	a, oe := parseAppArgs(body)
	if oe != nil {
		return nil, nil, oe
	}
	rd, oe := ss.readForLookup(a)
	if oe != nil {
		return nil, nil, oe
	}
	// The bundle's registration made from another path (the bundle was
	// moved, or this is a copy): whether that one is stale is looked at
	// now, so that the answer does not depend on whether something else
	// looked before.
	var elsewhere *registration
	if e := ss.do(func() {
		if r := ss.m.findReg(ss.peer.UID, a, rd); r != nil && rd != nil && r.Root != rd.root {
			elsewhere = r
		}
	}); e != nil {
		return nil, nil, e
	}
	if elsewhere != nil {
		if oe := ss.checkStale([]*registration{elsewhere}); oe != nil {
			return nil, nil, oe
		}
	}
	var st string
	if e := ss.do(func() {
		r := ss.m.findReg(ss.peer.UID, a, rd)
		if r != nil && rd != nil && r.stale && r.Root == rd.root {
			r.stale = false // put back
			ss.m.appChanged()
		}
		st = r.status()
		if rd == nil {
			st = bootstrap.AppStatusNotFound
			if r != nil && !r.stale {
				r.stale = true
				ss.m.appChanged()
			}
		}
	}); e != nil {
		return nil, nil, e
	}
	return xpc.Dict(bootstrap.KeyStatus, st), nil, nil
}

// visibleRegs are the registrations uid may see: root all, others their
// own.
func (m *supervisor) visibleRegs(uid uint32) []*registration {
	var out []*registration
	for _, r := range m.sortedRegs() {
		if uid == 0 || r.UID == uid {
			out = append(out, r)
		}
	}
	return out
}

// checkStale looks, off the loop, whether each registration's bundle is
// still there (reading it with its user's rights), and records the answer
// on the loop.
func (ss *session) checkStale(regs []*registration) *opError {
	type look struct {
		r     *registration
		root  string
		kind  string
		plist string
		uid   uint32
		gid   uint32
	}
	var looks []look
	if e := ss.do(func() {
		for _, r := range regs {
			looks = append(looks, look{r, r.Root, r.Kind, r.Plist, r.UID, r.GID})
		}
	}); e != nil {
		return e
	}
	stale := make([]bool, len(looks))
	for i, l := range looks {
		stale[i] = bundleGone(readIdentOf(l.uid, l.gid), l.root, l.kind, l.plist)
	}
	return ss.do(func() {
		changed := false
		for i, l := range looks {
			if l.r.Root == l.root && l.r.stale != stale[i] {
				l.r.stale, changed = stale[i], true
			}
		}
		if changed {
			ss.m.appChanged()
		}
	})
}

// app-list: {"op":"app-list","stale":bool?} -> {"registrations":[...]}.
func opAppList(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	onlyStale, _ := body.Bool(bootstrap.KeyStale)
	var regs []*registration
	if e := ss.do(func() { ss.m.reg.init(); regs = ss.m.visibleRegs(ss.peer.UID) }); e != nil {
		return nil, nil, e
	}
	if oe := ss.checkStale(regs); oe != nil {
		return nil, nil, oe
	}
	out := xpc.Array{}
	if e := ss.do(func() {
		for _, r := range ss.m.visibleRegs(ss.peer.UID) {
			if !onlyStale || r.stale {
				out = append(out, regDict(r))
			}
		}
	}); e != nil {
		return nil, nil, e
	}
	return xpc.Dict(bootstrap.KeyRegistrations, out), nil, nil
}

// app-repair: -> {"removed":[...]}: the caller's stale registrations
// (root: everyone's) removed, their jobs unloaded, once on disk.
func opAppRepair(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	var regs []*registration
	if e := ss.do(func() { ss.m.reg.init(); regs = ss.m.visibleRegs(ss.peer.UID) }); e != nil {
		return nil, nil, e
	}
	if oe := ss.checkStale(regs); oe != nil {
		return nil, nil, oe
	}
	removed := xpc.Array{}
	saved := make(chan error, 1)
	var oe *opError
	if e := ss.do(func() {
		m := ss.m
		if m.regReadOnly() != "" {
			oe = &opError{reason: bootstrap.ReasonReadOnlyState, desc: fmt.Sprintf("app repair: the state is read-only (%s)", m.regReadOnly())}
			return
		}
		for _, r := range m.visibleRegs(ss.peer.UID) {
			if r.stale {
				removed = append(removed, regDict(r))
				delete(m.reg.regs, r.key())
				m.unloadReg(r)
				m.log.Info("stale registration removed", "target", r.target(), "bundle", r.Root)
			}
		}
		m.saveRegistry(func(err error) { saved <- err })
		m.appChanged()
	}); e != nil {
		return nil, nil, e
	}
	if oe != nil {
		return nil, nil, oe
	}
	return nil, func(ctx context.Context) (*xpc.Dictionary, *opError) {
		select {
		case err := <-saved:
			if err != nil {
				return nil, stateOpError("app-repair", err)
			}
			return xpc.Dict(bootstrap.KeyRemoved, removed), nil
		case <-ctx.Done():
			return nil, &opError{reason: bootstrap.ReasonShuttingDown, desc: ctx.Err().Error()}
		}
	}, nil
}

// bundleSeen is told (on the loop) that a process of uid runs from the
// bundle root whose identity is id: registrations of that identity made
// by uid whose bundle was elsewhere follow it (the bundle is read again
// off the loop, with uid's rights, and registered from root).
func (m *supervisor) bundleSeen(id bundle.Identity, root string, uid uint32) {
	m.reg.init()
	for _, r := range m.sortedRegs() {
		if r.Identifier != id.Identifier || r.Team != id.Team || r.Signed != id.Signed || r.UID != uid || r.Root == root || r.following == root {
			continue
		}
		r.following = root
		key := r.key()
		a := appArgs{root: root, kind: r.Kind, plist: r.Plist, gid: r.GID}
		dom, owner, bucket := r.Domain, uint32(0), r.bucket
		if r.Kind != bootstrap.AppKindDaemon {
			owner = r.UID
		}
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			rd, oe := readRegistration(readIdentOf(uid, a.gid), m.trust, root, a.kind, a.plist)
			m.post(func() {
				if r := m.reg.regs[key]; r != nil && r.following == root {
					r.following = ""
				}
				if oe != nil || rd.id != id || len(root) > maxBundlePath {
					return
				}
				if _, oe := m.register(uid, bucket, dom, owner, a, rd, nil); oe != nil {
					m.log.Warn("registry: the moved bundle could not be registered from its new place", "bundle", root, "err", oe.desc)
				}
			})
		}()
	}
}
