package xpcd

import (
	"fmt"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// The job state machine. A job's visible state is derived, never stored:
//
//	spawning   an instance is being started (fork/exec in progress)
//	running    an instance runs
//	exiting    an instance was asked to stop (terminate, SIGTERM; SIGKILL
//	           after ExitTimeOut) and has not exited yet
//	throttled  a launch is wanted but waits for ThrottleInterval to pass
//	disabled   disabled, and not running
//	waiting    loaded, not running, waiting for demand or its schedule
//
// Launches: a lookup (demand), RunAtLoad (run-at-load), KeepAlive after an
// exit (keep-alive), kickstart, an upgrade with clients waiting (upgrade),
// and the schedule (schedule.go): StartInterval (interval),
// StartCalendarInterval (calendar), WatchPaths (watch-path),
// QueueDirectories (queue-directory); an activity due (activity, in
// activity_run.go).
// After an exit xpcd did not ask for, the next launch waits until
// ThrottleInterval after the previous launch; after a stop xpcd asked for
// (idle, pressure, upgrade, kickstart -k, bootout) it does not.

// Launch reasons (launch_reason).
const (
	reasonDemand    = "demand"
	reasonRunAtLoad = "run-at-load"
	reasonKeepAlive = "keep-alive"
	reasonKickstart = "kickstart"
	reasonUpgrade   = "upgrade"
)

// Why xpcd stopped an instance (stop_reason).
const (
	stopIdle      = "idle"
	stopPressure  = "pressure"
	stopUpgrade   = "upgrade"
	stopBootout   = "bootout"
	stopKickstart = "kickstart"
	stopShutdown  = "shutdown"
)

type launchReason struct {
	why       string
	requester int // the pid whose lookup caused a demand launch

	// event, for reasonEvent: "STREAM NAME", the launch event (events.go).
	event string
}

// job is one loaded job in one domain.
type job struct {
	dom *domain
	def *launchd.Job
	fp  string
	// next is a new definition (bootstrap of changed contents) that
	// replaces def once the running instance has stopped.
	next *launchd.Job

	disabled  bool
	unloading bool // booted out: removed once its instance is gone
	// gone is the plist, in one of the domain's directories, that was
	// deleted while the job ran: it is not launched again, and is
	// removed once its instance is gone (plistgone.go).
	gone          string
	removed       bool // unloaded: no longer in its domain
	unloadWaiters []chan struct{}
	err           string // the last launch's failure, if it failed
	// refused: the last launch was refused by a security rule (wrong
	// UserName or GroupName, a program others could change). It is not
	// tried again until the definition changes or an administrator
	// kickstarts it; lookups fail with the rule meanwhile.
	refused *RuleError
	early   *earlyEnd // how the last instance ended on its own, or did not launch (failfast.go)

	inst  *instance
	queue []*pending           // clients waiting for a name the instance has not checked in
	sched *schedule            // StartInterval, StartCalendarInterval, WatchPaths, QueueDirectories (schedule.go)
	acts  map[string]*activity // its activities, by identifier (activity.go)

	// events: launch events, their descriptors and pending events
	// (events.go); nil if none.
	events *jobEvents

	runs       int
	lastLaunch time.Time
	lastReason launchReason
	notBefore  time.Time // throttle: no launch before
	throttle   *time.Timer
	throttleR  launchReason
	throttleAt time.Time
	lastExit   *exitStatus
	lastExitAt time.Time
	lastStop   string // why xpcd stopped the last instance, "" if it ended on its own

	state    string // as last computed, for since and watch
	since    time.Time
	lastSent *xpc.Dictionary // the last event sent to watchers
}

// pending is a client socket waiting for its service.
type pending struct {
	name      string
	fd        *xpc.FD
	uid       uint32 // the bucket the client counts under (buckets.go)
	requester int
	at        time.Time
	released  bool // no longer counted in queuedBy (release)
}

// instance is one process of a job.
type instance struct {
	job    *job
	def    *launchd.Job // the definition it was started with
	fp     string
	reason launchReason

	spawning  bool
	proc      process
	pid       int
	startTime uint64
	started   time.Time
	adopted   bool
	out       *output
	exe       fileID
	marker    string        // markerEnv's value in its environment
	spawnErrW []func(error) // told when the spawn finished

	ch        *channel        // check-in channel, nil until there is one
	names     map[string]bool // names checked in on ch
	acts      map[string]bool // activities registered or checked in for on ch
	delivered int             // client sockets handed to it
	// conns is its listeners' open peer connections, as it reports
	// (connsKnown: it has; a process that does not use the library does
	// not).
	conns      int
	connsKnown bool
	// spoke: it has said something on its check-in channel (checked in,
	// reported, adopted): it speaks the protocol, and has peers to tell
	// when it is stopped (beginStop).
	spoke bool
	tx    int // its open transactions, as it reports
	// txKnown: it has checked in or reported its transactions. Idle and
	// pressured exit wait for that: start-up is not idleness, and an
	// adopted instance's count is unknown until it reports.
	txKnown   bool
	idleFrom  time.Time
	idleTimer *time.Timer

	upgrade   bool   // its executable or definition changed: stop once clean
	stopWhy   string // xpcd asked it to stop, and why
	stopAt    time.Time
	killTimer *time.Timer
	// termTimer ends the wait for the answer to terminate; termSent: the
	// SIGTERM that follows it has been sent (beginStop).
	termTimer *time.Timer
	termSent  bool
	// adminSignal is the last signal an administrator sent it (kill),
	// which may be why it ends (exitWhyOf).
	adminSignal syscall.Signal
	// exitWaiters are told why it ended, once it has (exit-reason).
	exitWaiters []chan exitWhy
	restart     launchReason // launch again right after it exits (kickstart -k)
	events      *instEvents  // its launch-event handlers (event_deliver.go)
	checkins    checkins     // the names it ever checked in, or tried to (failfast.go)
}

func (inst *instance) attach(sp *spawned) {
	inst.proc, inst.pid, inst.startTime, inst.out, inst.exe = sp.proc, sp.pid, sp.startTime, sp.output, sp.exe
	inst.marker = sp.marker
}

func (inst *instance) stopTimers() {
	if inst.idleTimer != nil {
		inst.idleTimer.Stop()
		inst.idleTimer = nil
	}
	if inst.killTimer != nil {
		inst.killTimer.Stop()
		inst.killTimer = nil
	}
	if inst.termTimer != nil {
		inst.termTimer.Stop()
		inst.termTimer = nil
	}
}

func (j *job) cancelThrottle() {
	if j.throttle != nil {
		j.throttle.Stop()
		j.throttle = nil
	}
}

func (j *job) target() string { return j.dom.name + "/" + j.def.Label }

// stateOf derives the job's visible state.
func (j *job) stateOf() string {
	switch {
	case j.inst != nil && j.inst.spawning:
		return "spawning"
	case j.inst != nil && j.inst.stopWhy != "":
		return "exiting"
	case j.inst != nil:
		return "running"
	case j.disabled:
		return "disabled"
	case j.refused != nil:
		return "refused"
	case j.throttle != nil:
		return "throttled"
	}
	return "waiting"
}

// atLoad starts a job that starts when loaded: RunAtLoad (and what implies
// it) or a KeepAlive state condition that holds.
func (m *supervisor) atLoad(j *job) {
	if j.disabled || j.unloading {
		return
	}
	switch {
	case j.def.StartsAtLoad():
		m.want(j, launchReason{why: reasonRunAtLoad})
	case m.stateWantsRunning(j):
		m.want(j, launchReason{why: reasonKeepAlive})
	}
}

// otherJobsChanged is called when a job of d was loaded, unloaded,
// enabled or disabled: a job kept alive by KeepAlive OtherJobEnabled whose
// condition now holds is started, as launchd does.
func (m *supervisor) otherJobsChanged(d *domain) {
	for _, label := range sortedKeys(d.jobs) {
		o := d.jobs[label]
		if len(o.def.KeepAlive.OtherJobEnabled) > 0 && o.inst == nil && m.stateWantsRunning(o) {
			m.want(o, launchReason{why: reasonKeepAlive})
		}
	}
}

// stateWantsRunning tells whether a KeepAlive condition holds. PathState
// paths are as the job's path watcher last saw them, with its user's
// rights (pathwatch.go); a path not looked at yet (or not watched at all)
// satisfies neither "exists" nor "does not exist".
func (m *supervisor) stateWantsRunning(j *job) bool {
	var w pathWatcher
	if j.sched != nil {
		w = j.sched.watch
	}
	pathIs := func(p string) (exists, known bool) {
		if w == nil {
			return false, false
		}
		return w.pathState(p)
	}
	for p, want := range j.def.KeepAlive.PathState {
		if exists, known := pathIs(p); known && exists == want {
			return true
		}
	}
	return j.def.KeepAlive.StateWantsRunning(nil,
		func(l string) bool { o := j.dom.jobs[l]; return o != nil && !o.disabled && !o.unloading })
}

// want asks for the job to run: now, or once the throttle allows. A job
// that runs, or is already due to, is left alone: clients queued for it go
// to the instance, or are reconsidered when it exits.
func (m *supervisor) want(j *job, r launchReason) {
	if j.inst != nil || j.disabled || j.unloading || j.gone != "" || m.closing || j.throttle != nil || j.refused != nil || m.unapproved(j) {
		return
	}
	now := time.Now()
	if now.Before(j.notBefore) {
		j.throttleR = r
		j.throttleAt = j.notBefore
		var t *time.Timer
		t = time.AfterFunc(j.notBefore.Sub(now), func() {
			m.post(func() { m.throttleEnded(j, t) })
		})
		j.throttle = t
		m.log.Info("launch throttled", "target", j.target(), "until", j.notBefore, "reason", r.why)
		return
	}
	m.spawn(j, r)
}

func (m *supervisor) throttleEnded(j *job, t *time.Timer) {
	if j.throttle != t {
		return
	}
	j.throttle = nil
	r := j.throttleR
	if r.why == reasonDemand && len(j.queue) == 0 {
		m.changed(j) // the clients went away
		return
	}
	if r.why == reasonQueue {
		m.throttledQueue(j) // starts it if a directory still has work
		m.changed(j)
		return
	}
	m.want(j, r)
	m.changed(j)
}

// afterExit decides what follows an instance's end (or failed launch):
// unload, switch definitions, relaunch for queued clients, KeepAlive.
func (m *supervisor) afterExit(j *job, inst *instance, ran bool) {
	defer m.changed(j)
	m.eventsEnded(inst, ran)
	m.activitiesAfterExit(j)
	if j.unloading {
		m.finishUnload(j)
		return
	}
	if j.gone != "" {
		m.forgetJob(j) // its plist was deleted (plistgone.go)
		return
	}
	if j.next != nil {
		m.replaceDef(j, j.next)
		j.next = nil
	}
	if m.closing || j.disabled || j.refused != nil {
		return
	}
	switch {
	case inst.restart.why != "":
		m.want(j, inst.restart)
	case len(j.queue) > 0:
		r := launchReason{why: reasonDemand, requester: j.queue[0].requester}
		if inst.stopWhy == stopUpgrade {
			r = launchReason{why: reasonUpgrade, requester: j.queue[0].requester}
		}
		m.want(j, r)
	case inst.stopWhy == stopUpgrade && (j.def.KeepAlive.ShouldRestart(true, false) || m.stateWantsRunning(j)):
		// Replaced by a new program: a job kept alive runs the new one
		// at once, as it would have after a clean exit of its own.
		m.want(j, launchReason{why: reasonUpgrade})
	case inst.stopWhy != "":
		// Stopped on purpose: KeepAlive does not bring it back.
	case !ran:
		if !j.def.KeepAlive.IsZero() || inst.reason.why == reasonRunAtLoad {
			m.want(j, inst.reason) // the launch failed; try again (throttled)
		}
	case j.def.KeepAlive.ShouldRestart(j.lastExit.clean(), j.lastExit.crashed()) || m.stateWantsRunning(j):
		m.want(j, launchReason{why: reasonKeepAlive})
	}
	m.afterExitSchedule(j)
	m.wantForEvents(j, ran)
}

// minUserThrottle is the shortest ThrottleInterval a job in another user's
// domain gets from a root xpcd: with 0, a job that exits at once would
// be relaunched as fast as xpcd can fork, a core of root's for any user
// who loads a few.
const minUserThrottle = time.Second

// throttleOf is how long after a launch the job may be launched again
// after an exit xpcd did not ask for.
func (m *supervisor) throttleOf(j *job, def *launchd.Job) time.Duration {
	if m.root && j.dom.name != DomainSystem && j.dom.owner != 0 {
		return max(def.ThrottleInterval, minUserThrottle)
	}
	return def.ThrottleInterval
}

// refuseJob marks a job whose launch a security rule refused: it is not
// launched again (want) until its definition changes or it is
// kickstarted, and the clients waiting for it are told why.
func (m *supervisor) refuseJob(j *job, re *RuleError) {
	j.refused = re
	oe := ruleOpError(re, "job %s is refused: %s", j.target(), re.Detail)
	for _, p := range j.queue {
		if err := refuse(p.fd, oe); err != nil {
			m.log.Debug("lookup: the client did not get its refusal", "name", p.name, "err", err)
		}
		m.release(p)
	}
	j.queue = nil
	m.log.Warn("launch refused; not tried again until the plist changes", "target", j.target(), "rule", re.Rule, "err", re.Detail)
}

// ruleOpError is a refusal by a rule as it goes on the wire: reason
// denied, and the rule named in the "rule" key.
func ruleOpError(re *RuleError, format string, args ...any) *opError {
	return &opError{reason: bootstrap.ReasonDenied, desc: fmt.Sprintf(format, args...) + " (rule " + re.Rule + ")",
		extra: xpc.Dict(bootstrap.KeyRule, re.Rule)}
}
