package xpcd

import (
	"context"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/polkit"
)

// Approval of daemons registered by users other than root: approval list,
// approve, deny, and the approval authority (polkit) that may approve
// one at once when it is registered.

// DefaultAdminGroups returns the groups whose members approve daemons
// when Config.AdminGroups is nil: sudo, wheel and admin.
func DefaultAdminGroups() []string { return []string{"sudo", "wheel", "admin"} }

// approvalAction is the action the approval authority is asked about.
const approvalAction = polkit.ActionApproveDaemon

// authorityTimeout bounds one question to the approval authority (an
// authorization dialog waits for a person).
const authorityTimeout = 5 * time.Minute

// Bounds of the questions to the approval authority waiting at once: a
// question holds a goroutine of xpcd for up to authorityTimeout (and, with
// polkit, a dialog and one of the client's polkit.MaxPending slots), and
// one user registering and unregistering daemons must not pile them up
// or take every slot. A daemon registered over the bounds is not asked
// about; it waits for an administrator (xpcctl approval approve).
const (
	maxAskingPerUser = 4
	maxAsking        = polkit.MaxPending
)

// mayAsk takes a place for a question about a daemon bucket's user
// registers (on the loop); false if none is free. authorityAnswered
// gives it back.
func (m *supervisor) mayAsk(bucket uint32) bool {
	if m.reg.askingTotal >= maxAsking || m.reg.asking[bucket] >= maxAskingPerUser {
		m.log.Warn("approval authority: too many questions waiting; the daemon waits for an administrator",
			"user", bucketName(bucket), "theirs", m.reg.asking[bucket], "all", m.reg.askingTotal)
		return false
	}
	if m.reg.asking == nil {
		m.reg.asking = map[uint32]int{}
	}
	m.reg.asking[bucket]++
	m.reg.askingTotal++
	return true
}

// approvalAuthority asks an authorization service whether the process that registers a
// daemon may approve it itself; nil when none is configured.
type approvalAuthority interface {
	Authorize(ctx context.Context, pid int, startTime uint64, uid uint32, action string, details map[string]string) (bool, error)
}

// isAdmin tells whether the caller is an administrator: root, or a member
// of one of the administrator groups. Membership is the caller's
// kernel-attested gid (SO_PEERCRED) and the groups the group database
// gives its user (getgrouplist, as callerIdent reads them): the database is
// what an administrator edits, so removing someone from the group takes
// effect at once, without waiting for their processes to end; and it is
// what every file xpcd opens for this caller is opened with (asUser), so
// one request is judged by one set of groups. Off the loop: the user
// database may be slow.
func (ss *session) isAdmin() bool {
	if ss.peer.UID == 0 {
		return true
	}
	id := ss.caller()
	groups := append([]uint32{ss.peer.GID, id.gid}, id.groups...)
	names := ss.m.adminGroups
	if names == nil {
		names = DefaultAdminGroups()
	}
	for _, name := range names {
		g, err := user.LookupGroup(name)
		if err != nil {
			continue
		}
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err == nil && slices.Contains(groups, uint32(gid)) {
			return true
		}
	}
	return false
}

func (m *supervisor) adminRefusal(uid uint32, what string) *opError {
	names := m.adminGroups
	if names == nil {
		names = DefaultAdminGroups()
	}
	re := refusedBy(bootstrap.RuleApprovalAdmin, "uid %d is not an administrator (root, or a member of %v)", uid, names)
	return ruleOpError(re, "%s: %s", what, re.Detail)
}

// approval-list: -> {"approvals":[...]}: daemons registered by users
// other than root, approved or not (an administrator sees all, others
// their own).
func opApprovalList(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	admin := ss.isAdmin()
	out := xpc.Array{}
	if e := ss.do(func() {
		ss.m.reg.init()
		for _, r := range ss.m.sortedRegs() {
			if r.Kind == bootstrap.AppKindDaemon && r.UID != 0 && (admin || r.UID == ss.peer.UID) {
				out = append(out, regDict(r))
			}
		}
	}); e != nil {
		return nil, nil, e
	}
	return xpc.Dict(bootstrap.KeyApprovals, out), nil, nil
}

func approvalIDArg(body *xpc.Dictionary) (string, *opError) {
	id, err := body.String(bootstrap.KeyApprovalID)
	if err != nil || id == "" {
		return "", badRequest("want an approval id (xpcctl approval list)")
	}
	return id, nil
}

// regByApproval finds the daemon registration approval id names.
func (m *supervisor) regByApproval(id string) *registration {
	m.reg.init()
	for _, r := range m.reg.regs {
		if r.ApprovalID == id && r.Kind == bootstrap.AppKindDaemon {
			return r
		}
	}
	return nil
}

// approval-approve: {"approval_id":ID} -> {"status":"enabled"} once on
// disk; the daemon is started as loading would start it.
func opApprove(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	id, oe := approvalIDArg(body)
	if oe != nil {
		return nil, nil, oe
	}
	if !ss.isAdmin() {
		return nil, nil, ss.m.adminRefusal(ss.peer.UID, "approve "+id)
	}
	saved := make(chan error, 1)
	if e := ss.do(func() { oe = ss.m.approve(id, ss.peer.UID, func(err error) { saved <- err }) }); e != nil {
		return nil, nil, e
	}
	if oe != nil {
		return nil, nil, oe
	}
	return nil, waitRegSaved("approve", saved, xpc.Dict(bootstrap.KeyStatus, bootstrap.AppStatusEnabled)), nil
}

// approve approves the daemon id names, for by (on the loop).
func (m *supervisor) approve(id string, by uint32, saved func(error)) *opError {
	r := m.regByApproval(id)
	if r == nil {
		return notFound("no daemon waits for approval %s (xpcctl approval list)", id)
	}
	if m.regReadOnly() != "" {
		return &opError{reason: bootstrap.ReasonReadOnlyState, desc: fmt.Sprintf("approve %s: the state is read-only (%s)", id, m.regReadOnly())}
	}
	if !r.Approved {
		r.Approved, r.ApprovedBy = true, by
		m.setGate(r)
		m.log.Info("daemon approved", "target", r.target(), "identifier", r.Identifier, "team", r.Team, "by_uid", by)
		m.appChanged()
	}
	m.saveRegistry(saved)
	return nil
}

// approval-deny: {"approval_id":ID} -> {"status":"not-registered"}: the
// registration is removed and its job unloaded, once on disk.
func opDeny(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	id, oe := approvalIDArg(body)
	if oe != nil {
		return nil, nil, oe
	}
	if !ss.isAdmin() {
		return nil, nil, ss.m.adminRefusal(ss.peer.UID, "deny "+id)
	}
	saved := make(chan error, 1)
	if e := ss.do(func() {
		m := ss.m
		r := m.regByApproval(id)
		switch {
		case r == nil:
			oe = notFound("no daemon waits for approval %s (xpcctl approval list)", id)
		case m.regReadOnly() != "":
			oe = &opError{reason: bootstrap.ReasonReadOnlyState, desc: fmt.Sprintf("deny %s: the state is read-only (%s)", id, m.regReadOnly())}
		default:
			m.log.Info("daemon denied", "target", r.target(), "identifier", r.Identifier, "by_uid", ss.peer.UID)
			m.removeReg(r, func(err error) { saved <- err })
		}
	}); e != nil {
		return nil, nil, e
	}
	if oe != nil {
		return nil, nil, oe
	}
	return nil, waitRegSaved("deny", saved, xpc.Dict(bootstrap.KeyStatus, bootstrap.AppStatusNotRegistered)), nil
}

func waitRegSaved(what string, saved <-chan error, reply *xpc.Dictionary) waitFunc {
	return func(ctx context.Context) (*xpc.Dictionary, *opError) {
		select {
		case err := <-saved:
			if err != nil {
				return nil, stateOpError(what, err)
			}
			return reply, nil
		case <-ctx.Done():
			return nil, &opError{reason: bootstrap.ReasonShuttingDown, desc: ctx.Err().Error()}
		}
	}
}

// askAuthority asks the approval authority, off the loop, whether the
// process registering the daemon key (the session's peer) may approve it:
// yes approves it at once; no, or no answer, leaves it waiting for an
// administrator (xpcctl approval approve).
func (ss *session) askAuthority(key regKey, approvalID string, rd *bundleRead) {
	m, peer, bucket := ss.m, ss.peer, ss.bucket
	st, err := startTime(peer.PID)
	if err != nil || !peer.Alive() {
		m.post(func() { m.authorityAnswered(key, approvalID, bucket, false) })
		return
	}
	details := map[string]string{"identifier": rd.id.Identifier, "team": rd.id.Team, "program": rd.program}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), authorityTimeout)
		defer cancel()
		go func() { // xpcd stopping ends the question
			select {
			case <-m.quit:
				cancel()
			case <-ctx.Done():
			}
		}()
		ok, err := m.authority.Authorize(ctx, peer.PID, st, peer.UID, approvalAction, details)
		if err != nil {
			m.log.Warn("approval authority: no answer; the daemon waits for an administrator", "identifier", rd.id.Identifier, "err", err)
		}
		m.post(func() { m.authorityAnswered(key, approvalID, bucket, ok && err == nil) })
	}()
}

// authorityAnswered: the authority said yes (ok) or not, for key, a
// question of bucket's user about approval approvalID. The answer is
// about what the authority was shown: a registration of key under
// another approval id (unregistered and registered again, another program
// or job) is not what it answered about.
func (m *supervisor) authorityAnswered(key regKey, approvalID string, bucket uint32, ok bool) {
	if m.reg.asking[bucket]--; m.reg.asking[bucket] <= 0 {
		delete(m.reg.asking, bucket)
	}
	m.reg.askingTotal--
	r := m.reg.regs[key]
	if r == nil || r.ApprovalID != approvalID {
		return
	}
	r.asking = false
	if ok && r.needsApproval() {
		m.log.Info("daemon approved by the approval authority", "target", r.target(), "identifier", r.Identifier)
		if oe := m.approve(r.ApprovalID, r.UID, nil); oe != nil {
			m.log.Error("approval authority: approval not recorded", "err", oe.desc)
		}
	}
}
