package xpcd

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
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
// QueueDirectories (queue-directory).
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
}

// job is one loaded job in one domain.
type job struct {
	dom *domain
	def *launchd.Job
	fp  string
	// next is a new definition (bootstrap of changed contents) that
	// replaces def once the running instance has stopped.
	next *launchd.Job

	disabled      bool
	unloading     bool // booted out: removed once its instance is gone
	removed       bool // unloaded: no longer in its domain
	unloadWaiters []chan struct{}
	err           string // the last launch's failure, if it failed
	// refused: the last launch was refused by a security rule (wrong
	// UserName or GroupName, a program others could change). It is not
	// tried again until the definition changes or an administrator
	// kickstarts it; lookups fail with the rule meanwhile.
	refused *RuleError

	inst  *instance
	queue []*pending // clients waiting for a name the instance has not checked in
	sched *schedule  // StartInterval, StartCalendarInterval, WatchPaths, QueueDirectories (schedule.go)

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
	delivered int             // client sockets handed to it
	tx        int             // its open transactions, as it reports
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
	restart   launchReason // launch again right after it exits (kickstart -k)
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
}

func (j *job) cancelThrottle() {
	if j.throttle != nil {
		j.throttle.Stop()
		j.throttle = nil
	}
}

// dropQueue closes the waiting clients' sockets: they see the end and look
// the name up again.
func (m *supervisor) dropQueue(j *job) {
	for _, p := range j.queue {
		p.fd.Close()
		m.release(p)
	}
	j.queue = nil
}

// release notes that a client socket is no longer xpcd's to hold: handed
// to its service, or closed. Each uid but root may have maxQueuedPerUser
// held at once (lookup); release is idempotent.
func (m *supervisor) release(p *pending) {
	if p.released {
		return
	}
	p.released = true
	if m.queuedBy[p.uid]--; m.queuedBy[p.uid] <= 0 {
		delete(m.queuedBy, p.uid)
	}
}

// hold counts a client socket xpcd holds for uid (see release).
func (m *supervisor) hold(p *pending) {
	p.released = false
	m.queuedBy[p.uid]++
}

// pruneQueues closes the queued client sockets whose client has gone (its
// end hung up): of job j, or with j nil of every job, for uid, or with
// uid -1 anyone's. A client that gave up must not keep its place.
func (m *supervisor) pruneQueues(j *job, uid int64) {
	jobs := []*job{j}
	if j == nil {
		jobs = nil
		for _, d := range m.domains {
			for _, o := range d.jobs {
				jobs = append(jobs, o)
			}
		}
	}
	for _, o := range jobs {
		kept := o.queue[:0]
		for _, p := range o.queue {
			if (uid < 0 || int64(p.uid) == uid) && hungUp(p.fd) {
				p.fd.Close()
				m.release(p)
				continue
			}
			kept = append(kept, p)
		}
		clear(o.queue[len(kept):])
		o.queue = kept
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

// addJob loads def into d. With replace, a job with the same label is an
// upgrade rather than a conflict (bootstrap does that itself). Names must
// be unique in the domain: a job whose label or one of whose names is
// taken is rejected whole.
func (m *supervisor) addJob(d *domain, def *launchd.Job, start bool) (*job, *opError) {
	if old := d.jobs[def.Label]; old != nil {
		return nil, &opError{reason: bootstrap.ReasonExists, key: "Label",
			desc: fmt.Sprintf("label %s is already loaded in %s from %s", def.Label, d.name, old.def.Path)}
	}
	if err := m.checkNames(d, def, nil); err != nil {
		return nil, err
	}
	j := &job{dom: d, def: def, fp: def.Fingerprint(), since: time.Now()}
	j.disabled = m.effectiveDisabled(d.name, def)
	m.restoreHistory(j)
	d.jobs[def.Label] = j
	for name := range def.MachServices {
		d.names[name] = j
	}
	j.state = j.stateOf()
	if start {
		m.syncSchedule(j)
		m.atLoad(j)
		m.changed(j)
	}
	return j, nil
}

// checkNames reports a name of def that another job of d (not self)
// provides.
func (m *supervisor) checkNames(d *domain, def *launchd.Job, self *job) *opError {
	for _, name := range sortedKeys(def.MachServices) {
		if other := d.names[name]; other != nil && other != self {
			return &opError{reason: bootstrap.ReasonNameTaken, key: "MachServices." + name,
				desc: fmt.Sprintf("service name %s is already provided by job %s (%s) in %s", name, other.def.Label, other.def.Path, d.name)}
		}
	}
	return nil
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
	if j.inst != nil || j.disabled || j.unloading || m.closing || j.throttle != nil || j.refused != nil {
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

// spawn starts an instance. The fork and exec happen in another goroutine;
// the loop learns the outcome in spawned.
func (m *supervisor) spawn(j *job, r launchReason) *instance {
	j.cancelThrottle()
	inst := &instance{job: j, def: j.def, fp: j.fp, reason: r, spawning: true, names: map[string]bool{}}
	j.inst = inst
	j.lastLaunch = time.Now()
	j.lastReason = r
	m.live++
	m.inflight++
	mk := marker{instance: m.instance, nonce: newNonce(), fingerprint: j.fp, reason: r.why, domain: j.dom.name, label: j.def.Label}
	spec := &spawnSpec{domain: j.dom.name, owner: j.dom.owner, def: j.def, env: m.baseEnv, marker: mk.String()}
	m.log.Info("launching", "target", j.target(), "reason", r.why, "requester_pid", r.requester)
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		sp, conn, probe, err := m.startProcess(spec)
		if !m.post(func() { m.spawned(inst, sp, conn, probe, err) }) {
			// The loop has stopped (a shutdown that did not wait for
			// us): let the process be.
			if conn != nil {
				conn.Cancel()
				probe.Close()
			}
			if sp != nil {
				sp.proc.close()
			}
		}
	}()
	return inst
}

// startProcess launches a process and opens xpcd's end of its check-in
// channel, outside the loop. probe is a duplicate of that end (see
// channel.probe).
func (m *supervisor) startProcess(spec *spawnSpec) (_ *spawned, _ *xpc.Connection, probe *os.File, _ error) {
	sp, err := m.launcher.launch(spec)
	if err != nil {
		return nil, nil, nil, err
	}
	if sp.checkin == nil {
		return sp, nil, nil, nil // a fake launcher's process, in tests
	}
	probe, sp.checkin = sp.checkin, nil
	conn, err := xpc.NewConnectionFromFile(probe, connOptions()...)
	if err != nil {
		// Without its channel the service could never check in.
		probe.Close()
		sp.proc.killGroup(syscall.SIGKILL)
		sp.proc.wait(false)
		sp.proc.close()
		if sp.output != nil {
			sp.output.stop(true)
		}
		return nil, nil, nil, fmt.Errorf("check-in channel: %w", err)
	}
	return sp, conn, probe, nil
}

// spawned is the outcome of spawn.
func (m *supervisor) spawned(inst *instance, sp *spawned, conn *xpc.Connection, probe *os.File, err error) {
	j := inst.job
	inst.spawning = false
	m.inflight--
	if m.closing && m.inflight == 0 && m.settled != nil {
		close(m.settled)
		m.settled = nil
	}
	waiters := inst.spawnErrW
	inst.spawnErrW = nil
	defer func() {
		for _, w := range waiters {
			w(err)
		}
	}()
	if err != nil {
		m.log.Error("launch failed", "target", j.target(), "err", err)
		j.err = "launch failed: " + err.Error()
		j.inst = nil
		m.instanceGone()
		j.notBefore = j.lastLaunch.Add(m.throttleOf(j, inst.def))
		var re *RuleError
		if errors.As(err, &re) && inst.def == j.def {
			m.refuseJob(j, re)
		}
		m.afterExit(j, inst, false)
		return
	}
	j.err = ""
	inst.attach(sp)
	m.trackOutput(sp.output)
	inst.started = time.Now()
	inst.idleFrom = inst.started
	j.runs++
	m.byPID[inst.pid] = inst
	m.log.Info("launched", "target", j.target(), "pid", inst.pid)
	if m.detached {
		// Shutdown gave up waiting for this launch and has let go of
		// everything: let go of this one too, leaving its record.
		m.saveProcesses()
		if conn != nil {
			conn.Cancel()
			probe.Close()
		}
		sp.proc.close()
		m.trackOutput(nil)
		if sp.output != nil {
			go sp.output.stop(false)
		}
		return
	}
	if conn != nil {
		ch := newChannel(conn, 0)
		ch.probe = probe
		conn.SetHandler(&checkinHandler{m: m, inst: inst, ch: ch})
		inst.ch = ch
		conn.Activate()
	}
	m.watchExit(inst)
	m.saveProcesses()
	if inst.stopWhy != "" {
		m.beginStop(inst)
	} else {
		m.armIdle(inst)
	}
	m.changed(j)
}

// watchExit waits for the instance's process to end, in a goroutine.
func (m *supervisor) watchExit(inst *instance) {
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		st, err := inst.proc.wait(inst.def.AbandonProcessGroup)
		if err != nil {
			return // released: xpcd is shutting down
		}
		m.post(func() { m.exited(inst, st) })
	}()
}

func (m *supervisor) instanceGone() {
	m.live--
	if m.closing && m.live == 0 && m.allGone != nil {
		close(m.allGone)
		m.allGone = nil
	}
}

// exited: the instance's process has ended.
func (m *supervisor) exited(inst *instance, st exitStatus) {
	j := inst.job
	if j.inst != inst {
		return
	}
	inst.stopTimers()
	if inst.ch != nil {
		inst.ch.close()
		inst.ch.conn.Cancel()
		inst.ch = nil
	}
	inst.proc.close()
	delete(m.byPID, inst.pid)
	j.inst = nil
	m.instanceGone()
	j.lastExit = &st
	j.lastExitAt = time.Now()
	j.lastStop = inst.stopWhy
	m.log.Info("exited", "target", j.target(), "pid", inst.pid, "status", st.String(), "stop_reason", inst.stopWhy)
	m.saveProcesses()
	if inst.stopWhy == "" {
		j.notBefore = inst.started.Add(m.throttleOf(j, inst.def))
	} else {
		j.notBefore = time.Time{}
	}
	m.afterExit(j, inst, true)
}

// afterExit decides what follows an instance's end (or failed launch):
// unload, switch definitions, relaunch for queued clients, KeepAlive.
func (m *supervisor) afterExit(j *job, inst *instance, ran bool) {
	defer m.changed(j)
	if j.unloading {
		m.finishUnload(j)
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

// replaceDef switches a job that does not run to a new definition.
func (m *supervisor) replaceDef(j *job, def *launchd.Job) {
	d := j.dom
	for name := range j.def.MachServices {
		if d.names[name] == j {
			delete(d.names, name)
		}
	}
	m.disarm(j) // the new definition's schedule starts afresh
	j.def, j.fp = def, def.Fingerprint()
	j.refused = nil // a new definition is tried afresh
	for name := range def.MachServices {
		d.names[name] = j
	}
	// Clients waiting for a name the job no longer has: let them go.
	kept := j.queue[:0]
	for _, p := range j.queue {
		if _, ok := def.MachServices[p.name]; ok {
			kept = append(kept, p)
		} else {
			p.fd.Close()
			m.release(p)
		}
	}
	j.queue = kept
	j.disabled = m.effectiveDisabled(d.name, def)
	m.syncSchedule(j)
	m.log.Info("definition replaced", "target", j.target(), "plist", def.Path)
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

// stop asks an instance to exit: terminate on its channel, SIGTERM, then
// SIGKILL to its group after ExitTimeOut (never, if ExitTimeOut is 0).
func (m *supervisor) stop(inst *instance, why string) {
	if inst.stopWhy != "" {
		return
	}
	inst.stopWhy = why
	if inst.idleTimer != nil {
		inst.idleTimer.Stop()
		inst.idleTimer = nil
	}
	if !inst.spawning {
		m.beginStop(inst)
	}
	m.changed(inst.job)
}

func (m *supervisor) beginStop(inst *instance) {
	j := inst.job
	inst.stopAt = time.Now()
	m.log.Info("stopping", "target", j.target(), "pid", inst.pid, "stop_reason", inst.stopWhy)
	if inst.ch != nil {
		inst.ch.send(outItem{msg: xpc.Dict(bootstrap.KeyOp, bootstrap.OpTerminate)})
	}
	if err := inst.proc.signal(syscall.SIGTERM); err != nil {
		m.log.Debug("SIGTERM", "target", j.target(), "err", err)
	}
	if t := inst.def.ExitTimeOut; t > 0 {
		var timer *time.Timer
		timer = time.AfterFunc(t, func() {
			m.post(func() {
				if j.inst != inst || inst.killTimer != timer {
					return
				}
				m.log.Warn("did not exit in time: SIGKILL", "target", j.target(), "pid", inst.pid, "exit_timeout", t)
				inst.proc.killGroup(syscall.SIGKILL)
			})
		})
		inst.killTimer = timer
	}
}

// --- clients and check-in ---

// demand queues a client socket for name, or hands it over at once if the
// instance has checked the name in, and launches the job if need be. It
// takes ownership of fd.
func (m *supervisor) demand(j *job, name string, fd *xpc.FD, uid uint32, requester int) {
	p := &pending{name: name, fd: fd, uid: uid, requester: requester, at: time.Now()}
	m.hold(p)
	if inst := j.inst; inst != nil && inst.ready(name) {
		m.deliver(inst, p)
	} else {
		j.queue = append(j.queue, p)
		m.want(j, launchReason{why: reasonDemand, requester: requester})
	}
	m.changed(j)
}

// ready reports whether a client for name can be handed to the instance
// now. An instance whose process has ended, or whose channel the far end
// has closed, is not, even if the loop has not heard yet: a client looking
// the name up again right after the service crashed must not be handed to
// the dead instance, but queued for the next.
func (inst *instance) ready(name string) bool {
	return !inst.spawning && inst.stopWhy == "" && inst.ch != nil && inst.names[name] &&
		!inst.proc.exited() && !inst.ch.hup()
}

// deliver sends a client socket to the instance. A send that fails puts the
// socket back in the job's queue, for the next instance.
func (m *supervisor) deliver(inst *instance, p *pending) {
	msg := xpc.Dict(bootstrap.KeyOp, bootstrap.OpConnect, bootstrap.KeyName, p.name)
	msg.Set(bootstrap.KeySocket, p.fd)
	ch := inst.ch
	ok := ch.send(outItem{msg: msg, fd: p.fd, failed: func(it outItem) {
		if !m.post(func() { m.requeue(inst, ch, p) }) {
			p.fd.Close()
		}
	}})
	if !ok {
		inst.job.queue = append(inst.job.queue, p)
		return
	}
	m.release(p)
	inst.delivered++
	inst.idleFrom = time.Now()
	m.armIdle(inst)
}

// requeue takes back a socket that could not be delivered on ch: the
// channel is broken, so it is done with.
func (m *supervisor) requeue(inst *instance, ch *channel, p *pending) {
	j := inst.job
	if j.inst == inst && inst.delivered > 0 {
		inst.delivered--
	}
	if inst.ch == ch {
		m.channelLost(inst, ch)
	}
	if j.unloading || j.disabled || m.closing || j.dom.names[p.name] != j {
		p.fd.Close()
		return
	}
	m.hold(p)
	j.queue = append([]*pending{p}, j.queue...)
	if j.inst != nil && j.inst.ready(p.name) {
		m.flush(j.inst, p.name)
	} else {
		m.want(j, launchReason{why: reasonDemand, requester: p.requester})
	}
	m.changed(j)
}

// flush hands the instance every queued client for name.
func (m *supervisor) flush(inst *instance, name string) {
	j := inst.job
	kept := j.queue[:0]
	var send []*pending
	for _, p := range j.queue {
		if p.name == name {
			send = append(send, p)
		} else {
			kept = append(kept, p)
		}
	}
	j.queue = kept
	for _, p := range send {
		m.deliver(inst, p)
	}
}

// checkin: the instance listens for name. The reply goes through the
// channel ahead of the queued clients, so the service learns its check-in
// succeeded before its first client arrives.
func (m *supervisor) checkin(inst *instance, ch *channel, name string, msg *xpc.Message) {
	j := inst.job
	reply := func(err *opError) {
		it := outItem{reply: msg, msg: &xpc.Dictionary{}}
		if err != nil {
			it.replyErr = err.object()
		}
		// If the channel has closed, nobody would read the reply.
		ch.send(it)
	}
	if j.inst != inst || inst.ch != ch {
		reply(&opError{reason: bootstrap.ReasonDenied, desc: "this channel no longer belongs to a running instance"})
		return
	}
	if _, ok := inst.def.MachServices[name]; !ok {
		reply(&opError{reason: bootstrap.ReasonNotDeclared,
			desc: fmt.Sprintf("service %q is not declared in the MachServices of job %s (%s)", name, inst.def.Label, inst.def.Path)})
		return
	}
	inst.names[name] = true
	if !inst.txKnown {
		inst.txKnown = true
		inst.idleFrom = time.Now()
	}
	reply(nil)
	m.log.Debug("checked in", "target", j.target(), "pid", inst.pid, "name", name)
	if inst.stopWhy == "" {
		m.flush(inst, name)
		if !m.upgradeIfClean(inst) {
			m.armIdle(inst)
		}
	}
	m.changed(j)
}

// upgradeIfClean stops an instance whose upgrade is pending once it is
// known to be clean.
func (m *supervisor) upgradeIfClean(inst *instance) bool {
	if inst.upgrade && inst.stopWhy == "" && !inst.spawning && inst.txKnown && inst.tx == 0 {
		m.stop(inst, stopUpgrade)
		return true
	}
	return false
}

// transactions: the instance reports its open transaction count.
func (m *supervisor) transactions(inst *instance, ch *channel, n int) {
	j := inst.job
	if j.inst != inst || inst.ch != ch {
		return
	}
	if n < 0 {
		n = 0
	}
	was := inst.tx
	inst.tx = n
	if n == 0 && (was != 0 || !inst.txKnown) {
		inst.idleFrom = time.Now()
	}
	inst.txKnown = true
	if !m.upgradeIfClean(inst) {
		m.armIdle(inst)
	}
	m.changed(j)
}

// channelLost: the instance's check-in channel ended. The process may live
// on; it can adopt a new channel.
func (m *supervisor) channelLost(inst *instance, ch *channel) {
	ch.close()
	ch.conn.Cancel()
	if inst.job.inst != inst || inst.ch != ch {
		return
	}
	inst.ch = nil
	clear(inst.names)
	m.log.Info("check-in channel closed", "target", inst.job.target(), "pid", inst.pid)
	m.changed(inst.job)
}

// adopt makes ch the check-in channel of the instance whose pid is pid, if
// that instance belongs to label.
func (m *supervisor) adopt(label string, pid int, ch *channel, msg *xpc.Message) (*instance, *opError) {
	inst := m.byPID[pid]
	// Our pidfd must still reach the process: if it has ended (and the
	// loop has not heard yet), the pid may already be another process's.
	if inst == nil || inst.def.Label != label || inst.spawning || inst.proc.signal(0) != nil {
		return nil, &opError{reason: bootstrap.ReasonDenied,
			desc: fmt.Sprintf("adopt: pid %d is not a process xpcd launched for %s", pid, label)}
	}
	if old := inst.ch; old != nil {
		old.close()
		old.conn.Cancel()
	}
	inst.ch = ch
	clear(inst.names)
	ch.send(outItem{reply: msg, msg: &xpc.Dictionary{}})
	m.log.Info("adopted", "target", inst.job.target(), "pid", pid)
	m.changed(inst.job)
	return inst, nil
}

// --- idle exit, pressure, upgrade ---

// armIdle (re)starts the idle timer of an instance that may be idle:
// XPCIdleExitTimeout set, no open transactions, no clients waiting.
func (m *supervisor) armIdle(inst *instance) {
	if inst.idleTimer != nil {
		inst.idleTimer.Stop()
		inst.idleTimer = nil
	}
	if !inst.idleCandidate() {
		return
	}
	deadline := inst.idleFrom.Add(inst.def.IdleExitTimeout)
	var t *time.Timer
	t = time.AfterFunc(time.Until(deadline), func() {
		m.post(func() {
			if inst.idleTimer != t {
				return
			}
			inst.idleTimer = nil
			m.idleCheck(inst)
		})
	})
	inst.idleTimer = t
}

func (inst *instance) idleCandidate() bool {
	return inst.def.IdleExitTimeout > 0 && inst.job.inst == inst && !inst.spawning &&
		inst.stopWhy == "" && inst.txKnown && inst.tx == 0 && len(inst.job.queue) == 0
}

func (m *supervisor) idleCheck(inst *instance) {
	if !inst.idleCandidate() {
		return
	}
	if time.Since(inst.idleFrom) < inst.def.IdleExitTimeout {
		m.armIdle(inst)
		return
	}
	m.stop(inst, stopIdle)
}

// pressure: memory is short. Clean services that enable pressured exit are
// stopped.
func (m *supervisor) pressure() {
	for _, pid := range slices.Sorted(maps.Keys(m.byPID)) {
		inst := m.byPID[pid]
		if inst.def.EnablePressuredExit && inst.stopWhy == "" && inst.txKnown && inst.tx == 0 {
			m.stop(inst, stopPressure)
		}
	}
}

// upgradeDetected: the instance's executable changed on disk.
func (m *supervisor) upgradeDetected(inst *instance) {
	if inst.job.inst != inst || inst.upgrade {
		return
	}
	inst.upgrade = true
	m.log.Info("executable changed; restarting when clean", "target", inst.job.target(), "pid", inst.pid)
	m.upgradeIfClean(inst)
	m.changed(inst.job)
}

// --- watch ---

// watcher is a connection that asked for state changes.
type watcher struct {
	ch     *channel
	uid    uint32
	bucket uint32 // what it counts under (buckets)
	dom    string // "" for every domain the caller may read
	label  string // "" for every job
}

func (w *watcher) matches(j *job) bool {
	if w.dom != "" && w.dom != j.dom.name {
		return false
	}
	if w.label != "" && w.label != j.def.Label {
		return false
	}
	return mayRead(w.uid, j.dom.name, j.dom.owner)
}

// changed notes a possible change of the job: its since, and the watchers.
func (m *supervisor) changed(j *job) {
	if j.removed {
		return
	}
	if st := j.stateOf(); st != j.state {
		j.state = st
		j.since = time.Now()
	}
	if len(m.watchers) == 0 {
		j.lastSent = nil
		return
	}
	d := m.jobDict(j)
	if j.lastSent != nil && xpc.Equal(d, j.lastSent) {
		return
	}
	j.lastSent = d
	m.notify(j, d)
}

func (m *supervisor) notify(j *job, d *xpc.Dictionary) {
	for w := range m.watchers {
		if w.matches(j) && !w.ch.send(outItem{msg: xpc.Dict(bootstrap.KeyEvent, d)}) {
			delete(m.watchers, w)
		}
	}
}

// finishUnload removes a booted-out job whose instance is gone.
func (m *supervisor) finishUnload(j *job) {
	d := j.dom
	if d.jobs[j.def.Label] == j {
		delete(d.jobs, j.def.Label)
	}
	for name, o := range d.names {
		if o == j {
			delete(d.names, name)
		}
	}
	m.dropQueue(j)
	j.cancelThrottle()
	m.disarm(j)
	m.otherJobsChanged(d)
	for _, w := range j.unloadWaiters {
		close(w)
	}
	j.unloadWaiters = nil
	j.removed = true
	m.log.Info("unloaded", "target", j.target())
	if len(m.watchers) > 0 {
		dict := m.jobDict(j)
		dict.Set(bootstrap.KeyState, xpc.String("unloaded"))
		m.notify(j, dict)
	}
}
