package xpcd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/criteria"
)

// The administrative requests on activities: activity-list, activity-print
// (with, while it waits, each criterion not met, read now), activity-run.
// Reading needs the rights print needs (mayRead); running, those kickstart
// needs (mayModify).

// activityDict describes a for list and print:
//
//	domain, label, activity     strings
//	activity_state              wait or run
//	waiting_for                 while it waits: "due" (not due yet),
//	                            "criteria" (due, criteria not met),
//	                            "evaluation" (being read), or "check-in"
//	                            (its job is launched, or runs, and has not
//	                            registered for it yet)
//	criteria                    dictionary of xpc.ActivityCriteria's keys
//	declared, registered        bools: from the plist; by the service
//	base, last_run              dates: what it is due from; when it last
//	                            started
//	next_eligible               date, while it waits
//	defers, defer_until         deferrals in a row, and their backoff
//	pid, run_since              while it runs
//	should_defer                bool, while it runs: its criteria no longer
//	                            hold
func activityDict(a *activity) *xpc.Dictionary {
	d := xpc.Dict(bootstrap.KeyDomain, a.job.dom.name, bootstrap.KeyLabel, a.job.def.Label,
		bootstrap.KeyActivityID, a.id, bootstrap.KeyActivityState, a.stateWord())
	d.Set(bootstrap.KeyCriteria, a.crit.Dictionary())
	d.Set("declared", xpc.Bool(a.declared))
	d.Set("registered", xpc.Bool(a.registered))
	d.Set("base", xpc.DateOf(a.base))
	if !a.lastRun.IsZero() {
		d.Set("last_run", xpc.DateOf(a.lastRun))
	}
	if a.defers > 0 {
		d.Set("defers", xpc.Int64(a.defers))
		d.Set("defer_until", xpc.DateOf(a.deferUntil))
	}
	switch a.phase {
	case phaseRun:
		d.Set(bootstrap.KeyPID, xpc.Int64(a.runPID))
		d.Set("run_since", xpc.DateOf(a.runStart))
		d.Set("should_defer", xpc.Bool(a.shouldDefer))
	case phasePending:
		d.Set("waiting_for", xpc.String("check-in"))
	default:
		d.Set("next_eligible", xpc.DateOf(a.eligible()))
		w := "due"
		switch {
		case a.evaluating:
			w = "evaluation"
		case a.evaluated:
			w = "criteria"
		}
		d.Set("waiting_for", xpc.String(w))
	}
	return d
}

// activity-list: {"domain":D?, "skip":N?} -> {"activities":[ACTIVITY...],
// "more":true?}. Without a domain: every domain the caller may read. At
// most bootstrap.MaxListedActivities in one reply, from the skip-th on.
func opActivityList(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	ss.ensureOwn()
	skip := 0
	if v, err := body.Int64(bootstrap.KeySkip); err == nil && v > 0 && v < 1<<31 {
		skip = int(v)
	}
	var only string
	if s, err := body.String(bootstrap.KeyDomain); err == nil && s != "" {
		name, _, oe := ss.domainArg(body)
		if oe != nil {
			return nil, nil, oe
		}
		only = name
	}
	var reply *xpc.Dictionary
	var oe *opError
	if e := ss.do(func() {
		ds := ss.m.sortedDomains()
		if only != "" {
			var d *domain
			if d, oe = ss.m.served(only, 0); oe != nil {
				return
			}
			ds = []*domain{d}
		}
		out, more := xpc.Array{}, false
		n := 0
		for _, d := range ds {
			if !mayRead(ss.peer.UID, d.name, d.owner) {
				continue
			}
			for _, j := range sortedJobs(d) {
				for _, a := range sortedActivities(j) {
					switch {
					case n < skip:
					case len(out) < bootstrap.MaxListedActivities:
						out = append(out, activityDict(a))
					default:
						more = true
					}
					n++
				}
			}
		}
		reply = xpc.Dict(bootstrap.KeyActivities, out)
		if more {
			reply.Set(bootstrap.KeyMore, xpc.Bool(true))
		}
	}); e != nil {
		return nil, nil, e
	}
	return reply, nil, oe
}

// activityTarget reads the job and activity a request names: "target"
// DOMAIN/LABEL, or "label" LABEL in "domain" (the caller's own by
// default), and "activity" ID.
func (ss *session) activityTarget(body *xpc.Dictionary) (Target, string, *opError) {
	id, err := body.String(bootstrap.KeyActivityID)
	if err != nil {
		return Target{}, "", badRequest("no %s (an activity identifier)", bootstrap.KeyActivityID)
	}
	if oe := checkActivityID(id); oe != nil {
		return Target{}, "", oe
	}
	if _, err := body.String(bootstrap.KeyTarget); err == nil {
		t, oe := ss.targetArg(body, true)
		return t, id, oe
	}
	label, err := body.String(bootstrap.KeyLabel)
	if err != nil || label == "" || strings.Contains(label, "/") {
		return Target{}, "", badRequest("no target (DOMAIN/LABEL) or label")
	}
	dom, owner, oe := ss.domainArg(body)
	return Target{Domain: dom, UID: owner, Label: label}, id, oe
}

// activity-print: {"target":DOMAIN/LABEL,"activity":ID} -> ACTIVITY, and
// while it waits "unmet": [TEXT...], each criterion not met now, and
// "why": a sentence saying why it has not run yet.
func opActivityPrint(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	t, id, oe := ss.activityTarget(body)
	if oe != nil {
		return nil, nil, oe
	}
	var reply *xpc.Dictionary
	var ej *evalJob
	var why string
	if e := ss.do(func() {
		var a *activity
		if a, oe = ss.m.activityOf(t, id, ss.peer.UID, false); oe != nil {
			return
		}
		reply = activityDict(a)
		why = a.whyText(time.Now())
		if a.phase == phaseWait {
			uid := criteria.AnyUser
			if a.job.dom.name != DomainSystem {
				uid = a.job.dom.owner
			}
			ej = &evalJob{crit: a.crit, uid: uid, held: a.held(time.Now())}
		}
	}); e != nil {
		return nil, nil, e
	}
	if oe != nil || ej == nil {
		if reply != nil {
			reply.Set("why", xpc.String(why))
		}
		return reply, nil, oe
	}
	src := ss.m.criteria
	return nil, func(ctx context.Context) (*xpc.Dictionary, *opError) {
		ctx, cancel := context.WithTimeout(ctx, evalTimeout)
		defer cancel()
		unmet := criteria.Evaluate(ctx, src, ej.crit, ej.uid, ej.held)
		texts := make([]string, len(unmet))
		for i, u := range unmet {
			texts[i] = u.String()
		}
		reply.Set("unmet", strArray(texts))
		if len(texts) > 0 {
			why += "; criteria not met: " + strings.Join(texts, "; ")
		}
		reply.Set("why", xpc.String(why))
		return reply, nil
	}, nil
}

// whyText says why a has not run yet, or that it runs.
func (a *activity) whyText(now time.Time) string {
	ts := func(t time.Time) string { return t.Format(time.RFC3339) }
	switch {
	case a.phase == phaseRun:
		return fmt.Sprintf("running in pid %d since %s", a.runPID, ts(a.runStart))
	case a.phase == phasePending && a.job.inst == nil:
		return "due: its job is being launched, or waits to be (" + a.job.stateOf() + ")"
	case a.phase == phasePending:
		return fmt.Sprintf("due: waiting for pid %d to register or check in for it", a.job.inst.pid)
	case now.Before(a.deferUntil):
		return fmt.Sprintf("deferred %d times in a row; eligible again at %s", a.defers, ts(a.deferUntil))
	case now.Before(a.due()):
		return "not due until " + ts(a.due())
	}
	return "due since " + ts(a.due())
}

// activity-run: {"target":DOMAIN/LABEL,"activity":ID}: run it now, whatever
// its schedule and criteria, launching its job if needed.
func opActivityRun(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	t, id, oe := ss.activityTarget(body)
	if oe != nil {
		return nil, nil, oe
	}
	status := "started"
	if e := ss.do(func() {
		var a *activity
		if a, oe = ss.m.activityOf(t, id, ss.peer.UID, true); oe != nil {
			return
		}
		switch a.phase {
		case phaseRun:
			status = "already running"
		case phasePending:
			status = "already due"
			a.manual = true
		default:
			ss.m.startActivity(a, true)
		}
	}); e != nil {
		return nil, nil, e
	}
	if oe != nil {
		return nil, nil, oe
	}
	return xpc.Dict(bootstrap.KeyStatus, status), nil, nil
}

// jobActivities lists j's activities for print; nil if it has none.
func jobActivities(j *job) xpc.Array {
	if len(j.acts) == 0 {
		return nil
	}
	out := xpc.Array{}
	for _, a := range sortedActivities(j) {
		out = append(out, activityDict(a))
	}
	return out
}

// activityBlame says, for blame, what j's activities wait for; "" if it
// has none.
func activityBlame(j *job) string {
	if len(j.acts) == 0 {
		return ""
	}
	now := time.Now()
	parts := make([]string, 0, len(j.acts))
	for _, a := range sortedActivities(j) {
		w := a.whyText(now)
		if a.phase == phaseWait && a.evaluated && !a.evaluating {
			// blame does not read the sources; activity print does.
			w += fmt.Sprintf(", its criteria not met (xpcctl activity print %s/%s/%s says which)", j.dom.name, j.def.Label, a.id)
		}
		parts = append(parts, a.id+": "+w)
	}
	return "activities (they launch it when due): " + strings.Join(parts, "; ")
}
