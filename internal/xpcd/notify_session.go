package xpcd

import (
	"context"
	"errors"
	"fmt"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// A session's notification requests: OpNotifyPost, OpNotifyRegister,
// OpNotifyCancel, OpNotifyGet. Who may do what (docs/SECURITY.md,
// "Notifications") is checked here, before the registry is touched.

// notifyOp answers one notification request.
func (ss *session) notifyOp(ctx context.Context, op string, msg *xpc.Message) {
	name, _ := msg.Body.String(bootstrap.KeyName)
	if p := launchd.NotificationNameProblem(name); p != "" {
		ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBadRequest, desc: p})
		return
	}
	reg := ss.s.notes
	var reply *xpc.Dictionary
	var re *RuleError
	switch op {
	case bootstrap.OpNotifyPost:
		state, err := msg.Body.Uint64(bootstrap.KeyNotifyState)
		set := err == nil
		if err != nil && !errors.Is(err, xpc.ErrKeyNotFound) {
			ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBadRequest, key: bootstrap.KeyNotifyState,
				desc: fmt.Sprintf("%s %s: %s: %v", op, name, bootstrap.KeyNotifyState, err)})
			return
		}
		if re = ss.mayPostNotification(name); re == nil {
			re = reg.post(name, state, set, ss.bucket, ss.peer.UID == 0)
		}
	case bootstrap.OpNotifyRegister:
		if re = ss.maySeeNotification(name); re == nil {
			if ss.notes == nil {
				ss.notes = newNotifyClient(ss.conn, ss.bucket, ss.peer.UID == 0)
			}
			re = reg.register(ss.notes, name)
		}
	case bootstrap.OpNotifyCancel:
		if ss.notes != nil {
			reg.cancel(ss.notes, name)
		}
	case bootstrap.OpNotifyGet:
		if re = ss.maySeeNotification(name); re == nil {
			reply = xpc.Dict(bootstrap.KeyNotifyState, reg.get(name))
		}
	}
	if re != nil {
		ss.log.Debug("notification refused", "op", op, "name", name, "err", re)
		oe := ruleOpError(re, "%s %s: %s", op, name, re.Detail)
		if re.Rule == bootstrap.RuleCheckLimit {
			oe.reason = bootstrap.ReasonBusy // as a lookup's: try again later
		}
		ss.fail(ctx, msg, oe)
		return
	}
	ss.reply(ctx, msg, reply)
}

// endNotify ends the session's registrations, its connection having ended.
func (ss *session) endNotify() {
	if ss.notes != nil {
		ss.s.notes.drop(ss.notes)
	}
}

// maySeeNotification: a user may register for and get their own names
// and the system's (RuleNotifyName). In a --user instance every name is
// its user's.
func (ss *session) maySeeNotification(name string) *RuleError {
	uid := ss.peer.UID
	if ss.s.user || uid == 0 {
		return nil
	}
	if owner, user := bootstrap.NotificationOwner(name); user && owner != uid {
		return refusedBy(bootstrap.RuleNotifyName, "%s is user %d's notification, not uid %d's", name, owner, uid)
	}
	return nil
}

// mayPostNotification: a user may post their own names; a system name
// needs root or a grant (RuleNotifyPost): a system job's Notifications →
// NAME → PostRequirement that the poster meets. The grants are read on
// the loop; the requirements, which may read the poster's /proc, are
// checked here, on the session.
func (ss *session) mayPostNotification(name string) *RuleError {
	uid := ss.peer.UID
	if ss.s.user || uid == 0 {
		return nil
	}
	owner, user := bootstrap.NotificationOwner(name)
	if user {
		if owner != uid {
			return refusedBy(bootstrap.RuleNotifyName, "%s is user %d's notification, not uid %d's", name, owner, uid)
		}
		return nil
	}
	var grants []notifyGrant
	if oe := ss.do(func() { grants = ss.m.notifyGrants(name) }); oe != nil {
		return refusedBy(bootstrap.RuleNotifyPost, "%s: %s", name, oe.desc)
	}
	if len(grants) == 0 {
		return refusedBy(bootstrap.RuleNotifyPost, "%s is a system notification: only root may post it, "+
			"or a process a system job grants it to (%s → %s → PostRequirement)", name, launchd.NotificationsKey, name)
	}
	// The checks hold the poster's descriptors and may hash its
	// executable: as many at once as lookups' (checks.go).
	if re := ss.s.checks.take(ss.bucket); re != nil {
		return re
	}
	defer ss.s.checks.release(ss.bucket)
	var first string
	for _, g := range grants {
		err := g.req.CheckWith(ss.peer, ss.m.trust)
		if err == nil {
			return nil
		}
		if first == "" {
			clause, who, _ := failure(g.req, ss.peer, err)
			first = fmt.Sprintf("%s fails %q of job %s's %q", who, clause, g.job, g.req.String())
		}
	}
	return refusedBy(bootstrap.RuleNotifyPost, "%s is a system notification: only root may post it, or a process "+
		"that meets a grant for it: %s", name, first)
}

// notifyGrant is one system job's grant to post a notification.
type notifyGrant struct {
	job string
	req xpc.Requirement
}

// notifyGrants returns the grants to post name: those of the system
// domain's jobs that are loaded and not disabled. A user domain's jobs
// grant nothing. On the loop.
func (m *supervisor) notifyGrants(name string) []notifyGrant {
	d := m.domains[DomainSystem]
	if d == nil {
		return nil
	}
	var out []notifyGrant
	for _, j := range sortedJobs(d) {
		if j.removed || j.unloading || j.disabled {
			continue
		}
		if g, ok := j.def.Notifications[name]; ok && !g.PostRequirement.IsZero() {
			out = append(out, notifyGrant{job: j.target(), req: g.PostRequirement})
		}
	}
	return out
}
