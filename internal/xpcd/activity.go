package xpcd

import (
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/criteria"
)

// Activities (docs/XPCD.md, "Activities"): xpcd owns their schedule. An
// activity belongs to a job and is keyed by its identifier in that job:
// declared in the plist (LaunchEvents → com.apple.xpc.activity, registered
// at load, without the job running) or registered by a running instance
// (OpActivityRegister). All of it is the loop's. The scheduler has one
// timer, armed for the earliest wake-up (activity_sched.go); criteria are
// read off the loop (activity_run.go); the registrations persist in
// activities.json (activity_state.go).

// Limits (bootstrap.RuleActivityLimit).
const (
	// maxActivitiesPerJob is the most activities one job may have.
	maxActivitiesPerJob = 64
	// maxActivitiesPerUserDomain is the most activities the jobs of one
	// user's domain may have together, in a root xpcd.
	maxActivitiesPerUserDomain = 1024
	// maxActivityID is the longest identifier, in bytes.
	maxActivityID = 256
)

// defaultRecheck is supervisorConfig.recheck's default.
const defaultRecheck = 30 * time.Second

// actPhase is where an activity is in its cycle.
type actPhase uint8

const (
	// phaseWait: not due yet, or due and waiting for its criteria.
	phaseWait actPhase = iota
	// phasePending: due with its criteria met (or run by activity-run):
	// waiting for its job's instance to register or check in for it.
	phasePending
	// phaseRun: delivered (OpActivity); the service runs it.
	phaseRun
)

// activity is one registration.
type activity struct {
	job *job
	id  string
	actTimes
	declared   bool // from the plist
	registered bool // by the service, with criteria
	lastRun    time.Time
	defers     int // deferrals in a row

	phase    actPhase
	manual   bool      // run by activity-run
	runStart time.Time // of the run under way
	runPID   int
	// evaluated: in phaseWait, the criteria have been read since it
	// became eligible, and unmet says what held it.
	evaluated   bool
	unmet       []criteria.Unmet
	evalAt      time.Time
	evaluating  bool // a read of its criteria is under way
	gen         uint64
	shouldDefer bool // told to the running service
	removed     bool

	wakeAt time.Time
	hidx   int
}

// activities is the supervisor's table of activities.
type activities struct {
	heap  actHeap
	timer *time.Timer
	// timerAt is what the timer is armed for; arms counts the times it
	// was (re)armed and fires the times it went off, for tests.
	timerAt time.Time
	arms    int
	fires   int
	// byUser counts the activities of the user domains with a limit, by
	// their owners' bucket: a user's and those of every uid without an
	// account together.
	byUser map[uint32]int
	// stored are the records read at start of jobs not loaded yet (user
	// domains made later), by domain and label.
	stored map[string]map[string][]activityRecord
	// evalBusy: a batch of criteria reads is under way; evalQueue waits
	// for the next.
	evalBusy  bool
	evalQueue []*activity
	saveTimer *time.Timer
	// saving: a write of activities.json is under way off the loop;
	// saveAgain: another was asked for meanwhile. saveGen numbers the
	// writes, saveTook is how long the last one took.
	saving, saveAgain bool
	saveGen           uint64
	saveTook          time.Duration
	stopped           bool
}

func newActivities() *activities {
	return &activities{byUser: map[uint32]int{}, stored: map[string]map[string][]activityRecord{}}
}

// limited tells whether d's activities count against the user domain
// limit.
func (m *supervisor) actLimited(d *domain) bool {
	return m.root && d.name != DomainSystem && d.owner != 0
}

// actRoom refuses a new activity of j over a limit.
func (m *supervisor) actRoom(j *job) *opError {
	var re *RuleError
	switch {
	case len(j.acts) >= maxActivitiesPerJob:
		re = refusedBy(bootstrap.RuleActivityLimit, "job %s has %d activities, the limit", j.target(), len(j.acts))
	case m.actLimited(j.dom) && m.acts.byUser[j.dom.bucket] >= maxActivitiesPerUserDomain:
		re = refusedBy(bootstrap.RuleActivityLimit, "%s has %d activities, the limit", bucketName(j.dom.bucket), m.acts.byUser[j.dom.bucket])
	default:
		return nil
	}
	return ruleOpError(re, "activity: %s", re.Detail)
}

// newActivity adds an activity to j, due Delay after now.
func (m *supervisor) newActivity(j *job, id string, c xpc.ActivityCriteria, now time.Time) *activity {
	a := &activity{job: j, id: id, actTimes: actTimes{crit: c.Normalized(), base: now}, hidx: -1}
	if j.acts == nil {
		j.acts = map[string]*activity{}
	}
	j.acts[id] = a
	if m.actLimited(j.dom) {
		m.acts.byUser[j.dom.bucket]++
	}
	m.schedule(a)
	return a
}

// removeActivity forgets a.
func (m *supervisor) removeActivity(a *activity) {
	if a.removed {
		return
	}
	a.removed = true
	a.gen++
	j := a.job
	if j.acts[a.id] == a {
		delete(j.acts, a.id)
	}
	if m.actLimited(j.dom) {
		if m.acts.byUser[j.dom.bucket]--; m.acts.byUser[j.dom.bucket] <= 0 {
			delete(m.acts.byUser, j.dom.bucket)
		}
	}
	m.acts.heap.setWake(a, time.Time{})
	m.armActivities()
}

// setCriteria gives a new criteria; a change starts its schedule afresh
// from now.
func (m *supervisor) setCriteria(a *activity, c xpc.ActivityCriteria, now time.Time) {
	c = c.Normalized()
	if c == a.crit {
		return
	}
	a.crit, a.base, a.deferUntil, a.defers = c, now, time.Time{}, 0
	if a.phase == phaseWait {
		m.resetWait(a)
	}
}

// resetWait makes a waiting activity's criteria unread, and schedules it.
func (m *supervisor) resetWait(a *activity) {
	a.phase, a.evaluated, a.unmet, a.manual = phaseWait, false, nil, false
	a.gen++
	m.schedule(a)
}

// addJobActivities registers, at load, the activities j declares and
// those recorded for it before xpcd restarted.
func (m *supervisor) addJobActivities(j *job) {
	now := time.Now()
	recs := m.acts.stored[j.dom.name][j.def.Label]
	delete(m.acts.stored[j.dom.name], j.def.Label)
	for _, r := range recs {
		if _, declared := j.def.Activities[r.ID]; !r.Registered && !declared {
			continue // declared by a definition since changed
		}
		if m.actRoom(j) != nil || j.acts[r.ID] != nil {
			continue
		}
		a := m.newActivity(j, r.ID, r.Criteria, now)
		a.registered, a.base, a.lastRun, a.defers, a.deferUntil = r.Registered, r.Base, r.LastRun, r.Defers, r.DeferUntil
		m.schedule(a)
	}
	m.syncDeclared(j)
}

// syncDeclared makes j's declared activities those of its definition:
// new ones are added, changed ones take the new criteria, and those no
// longer declared go unless the service registered them.
func (m *supervisor) syncDeclared(j *job) {
	now := time.Now()
	for _, id := range sortedKeys(j.acts) {
		a := j.acts[id]
		if _, ok := j.def.Activities[id]; !ok && a.declared {
			if a.declared = false; !a.registered {
				m.removeActivity(a)
			}
		}
	}
	for _, id := range sortedKeys(j.def.Activities) {
		c := j.def.Activities[id]
		a := j.acts[id]
		switch {
		case a == nil:
			if oe := m.actRoom(j); oe != nil {
				m.log.Warn("activity not registered", "target", j.target(), "activity", id, "err", oe.desc)
				continue
			}
			a = m.newActivity(j, id, c, now)
		case !a.registered:
			m.setCriteria(a, c, now)
		}
		a.declared = true
	}
	m.saveActivities()
}

// removeJobActivities forgets the activities of a job being unloaded.
func (m *supervisor) removeJobActivities(j *job) {
	for _, id := range sortedKeys(j.acts) {
		m.removeActivity(j.acts[id])
	}
	m.saveActivities()
}

// activityRegister: inst registers (crit set) or checks in for (crit nil)
// its job's activity id. The reply has the criteria in force.
func (m *supervisor) activityRegister(inst *instance, id string, crit *xpc.ActivityCriteria) (*xpc.Dictionary, *opError) {
	j := inst.job
	a := j.acts[id]
	now := time.Now()
	switch {
	case a == nil && crit == nil:
		return nil, notFound("job %s has no activity %q: declare it in the plist (LaunchEvents %s) or register it with criteria",
			j.target(), id, "com.apple.xpc.activity")
	case a == nil:
		if oe := m.actRoom(j); oe != nil {
			return nil, oe
		}
		a = m.newActivity(j, id, *crit, now)
		a.registered = true
		m.log.Debug("activity registered", "target", j.target(), "activity", id)
	case crit != nil:
		m.setCriteria(a, *crit, now)
		a.registered = true
	}
	m.saveActivities()
	return xpc.Dict(bootstrap.KeyActivityID, id, bootstrap.KeyCriteria, xpc.Object(a.crit.Dictionary()),
		bootstrap.KeyActivityState, a.stateWord()), nil
}

// activityUnregister: inst removes its job's activity id.
func (m *supervisor) activityUnregister(inst *instance, id string) *opError {
	a := inst.job.acts[id]
	delete(inst.acts, id)
	if a == nil {
		return nil
	}
	m.log.Debug("activity unregistered", "target", inst.job.target(), "activity", id)
	m.removeActivity(a)
	m.saveActivities()
	return nil
}

// activityState: the service's handler moved the running activity id to
// state.
func (m *supervisor) activityState(inst *instance, id, state string) *opError {
	a := inst.job.acts[id]
	if a == nil || a.phase != phaseRun || a.runPID != inst.pid {
		return &opError{reason: bootstrap.ReasonActivityNotRunning, desc: fmt.Sprintf("activity %q of %s is not running", id, inst.job.target())}
	}
	switch state {
	case bootstrap.ActivityContinue:
	case bootstrap.ActivityDone:
		m.activityDone(a)
	case bootstrap.ActivityDefer:
		m.deferActivity(a, "the service deferred it")
	default:
		return badRequest("activity %q: state %q: want %s, %s or %s", id, state,
			bootstrap.ActivityContinue, bootstrap.ActivityDone, bootstrap.ActivityDefer)
	}
	return nil
}

// activityOf finds the activity id of the job t names.
func (m *supervisor) activityOf(t Target, id string, uid uint32, modify bool) (*activity, *opError) {
	j, oe := m.findJob(t, uid, modify)
	if oe != nil {
		return nil, oe
	}
	a := j.acts[id]
	if a == nil {
		return nil, notFound("job %s has no activity %q", t, id)
	}
	return a, nil
}

// checkActivityID refuses an identifier that is empty, too long, or not
// UTF-8: activities.json could not keep it (JSON would replace its bad
// bytes, so after a restart it would name another activity, or the same
// as another identifier).
func checkActivityID(id string) *opError {
	if id == "" || len(id) > maxActivityID {
		return badRequest("activity identifier: want 1 to %d bytes, have %d", maxActivityID, len(id))
	}
	if !utf8.ValidString(id) {
		return badRequest("activity identifier %q: not UTF-8", id)
	}
	return nil
}

// sortedActivities returns j's activities by identifier.
func sortedActivities(j *job) []*activity {
	out := make([]*activity, 0, len(j.acts))
	for _, a := range j.acts {
		out = append(out, a)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].id < out[k].id })
	return out
}

// stateWord is the activity's state as xpcctl shows it.
func (a *activity) stateWord() string {
	if a.phase == phaseRun {
		return bootstrap.ActivityRun
	}
	return bootstrap.ActivityWait
}

func (a *activity) String() string { return fmt.Sprintf("%s/%s", a.job.target(), a.id) }
