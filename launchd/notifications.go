package launchd

import (
	"fmt"

	"github.com/goxpc/xpc"
)

// NotificationsKey is the plist key of Job.Notifications (goxpc
// extension): Notifications → NAME → {PostRequirement = "requirement"}.
const NotificationsKey = "Notifications"

// MaxNotificationGrants is the most names one job's Notifications may
// name.
const MaxNotificationGrants = 64

// NotificationGrant is one entry of Notifications: who, besides root, may
// post the notification.
type NotificationGrant struct {
	// PostRequirement: a process that meets it may post the name
	// (xpc.ParseRequirement's language, "uid 1000 or group staff").
	// xpcd honours it only in a job of the system domain, whose plist
	// is root's: a user's own plist grants nothing (docs/SECURITY.md,
	// "Notifications").
	PostRequirement xpc.Requirement
}

// notifications reads Notifications: NAME → {PostRequirement = "..."}.
func (d *decoder) notifications(key keyPath, v xpc.Object) map[string]NotificationGrant {
	m, ok := d.dict(key, v)
	if !ok {
		return nil
	}
	out := make(map[string]NotificationGrant, m.Len())
	for _, name := range sortedKeys(m) {
		k := key.dot(name)
		if r := NotificationNameProblem(name); r != "" {
			d.fail(k, ErrValueNotAllowed, r)
			continue
		}
		if len(out) >= MaxNotificationGrants {
			d.fail(k, ErrValueNotAllowed, fmt.Sprintf("more than %d notifications", MaxNotificationGrants))
			break
		}
		grant, ok := d.dict(k, m.Get(name))
		if !ok {
			continue
		}
		var g NotificationGrant
		d.fields(k, grant, map[string]field{
			"PostRequirement": func(k keyPath, v xpc.Object) { g.PostRequirement = d.requirement(k, v) },
		}, nil)
		if g.PostRequirement.IsZero() {
			if grant.Get("PostRequirement") == nil {
				d.fail(k.dot("PostRequirement"), ErrMissingKey, missingReason(grant, "PostRequirement"))
			}
			continue
		}
		out[name] = g
	}
	return nilIfEmpty(out)
}

// notificationsObject is Notifications in canonical form, or nil.
func (j *Job) notificationsObject() xpc.Object {
	if len(j.Notifications) == 0 {
		return nil
	}
	e := entries{}
	for name, g := range j.Notifications {
		o := entries{}
		o.set("PostRequirement", xpc.String(g.PostRequirement.String()))
		e.set(name, o.dict())
	}
	return e.dict()
}
