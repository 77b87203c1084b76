package xpcd

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/codesign"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/criteria"
	"github.com/goxpc/xpc/launchd"
)

// The supervisor owns every domain, job and running instance. All of that
// state lives in one goroutine, the loop: everything else (the bootstrap
// server's sessions, check-in channels, process watchers, timers, monitors)
// hands the loop a closure (post, call) and never touches the state itself.
// The loop never blocks: spawning, waiting for processes, sending to peers
// and writing state all happen in other goroutines that report back with
// post. One loop for the whole daemon rather than one per job, because
// lookups, name uniqueness, pressure (which services go first) and watch
// all look across jobs; each step is short, so one goroutine keeps up.

// supervisorConfig is what the supervisor needs from the daemon.
type supervisorConfig struct {
	log      *slog.Logger
	launcher launcher
	store    *stateStore // nil: nothing persists (tests of the state machine)
	jobs     *jobStore   // nil: no jobs at start
	// domains served: name -> owner. A --user instance serves one.
	domains  map[string]uint32
	userMode bool
	// agentsDir is loaded into each user domain of the system instance
	// when it is first used; "" for none.
	agentsDir   string
	baseEnv     []string
	outputDir   string // output FIFOs; "" for none to clean up
	stopOnClose bool
	// newWatch watches a job's WatchPaths and QueueDirectories; nil is
	// inotify (newInotifyWatch). Tests of the state machine fake it.
	newWatch newWatchFunc
	// root: xpcd runs as root, and jobs as their users.
	root bool
	// maxWatches is the most jobs of one user domain that may watch
	// paths at once; 0: no limit.
	maxWatches int
	// instance is this xpcd's instance id, which every process it starts
	// carries in its marker (marker.go).
	instance string
	// trust verifies the signatures names' requirements ask for, with the
	// keys of this instance's trust directory (ROOT/trust.d, or
	// /etc/xpc/trust.d); nil is codesign.Default().
	trust *codesign.Verifier
	// criteria answers activities' criteria; nil is a criteria.Fake
	// with nothing set (every condition unknown).
	criteria criteria.Sources
	// recheck is how often the criteria of an activity that waits on a
	// condition that cannot signal (pressure, power) are read again;
	// 0: defaultRecheck.
	recheck time.Duration
	// logs are the jobs' logs (joblog.go): crash records, OpLog; nil
	// keeps none.
	logs *jobLogs
	// authority may approve a daemon a user registers (approval.go); nil:
	// only an administrator, with xpcctl approval approve.
	authority approvalAuthority
	// adminGroups are the groups whose members approve daemons; nil:
	// DefaultAdminGroups.
	adminGroups []string
	// appServiceUser is whom System XPC services of bundles run as
	// (apps_domain.go); "" is DefaultAppServiceUser.
	appServiceUser string
}

// Limits.
const (
	// maxQueued is the most client sockets one job may have waiting for it;
	// past that lookups fail with bootstrap.ReasonBusy rather than exhaust xpcd's
	// descriptors.
	maxQueued = 4096
	// watchLimit is how many events a watcher may have unsent before it is
	// told it overflowed and dropped.
	watchLimit = 4096
	// maxWatchersPerUser is the most watch connections one user other
	// than root may have at once (bootstrap.RuleWatcherLimit).
	maxWatchersPerUser = 8
	// maxQueuedPerUser is the most client sockets xpcd holds for one user
	// other than root, over all jobs, waiting for their services
	// (bootstrap.RuleQueueLimit).
	maxQueuedPerUser = 256
	// maxWaitsPerSession is the most requests one bootstrap connection
	// may have waiting for their answer (bootout --wait, enable while the
	// state is written, ...); past that a request fails with busy.
	maxWaitsPerSession = 16
	// maxJobsPerUserDomain is the most jobs a user may load into their
	// domain with bootstrap (bootstrap.RuleJobLimit); each holds its
	// definition, up to launchd.MaxFileSize, in xpcd's memory.
	maxJobsPerUserDomain = 256
	// maxOverridesPerUserDomain is the most enable/disable overrides a
	// user's domain may have (bootstrap.RuleOverrideLimit).
	maxOverridesPerUserDomain = 1024
)

type supervisor struct {
	supervisorConfig

	events  chan func()
	quit    chan struct{}
	stopped chan struct{}
	bg      sync.WaitGroup // goroutines that post: spawns, process watchers

	// seen holds the name of every domain in domains, for sessions to
	// read without asking the loop: a domain, once made, is never removed.
	// Written by the loop (addDomain).
	seen sync.Map

	// Owned by the loop.
	domains   map[string]*domain
	byPID     map[int]*instance
	overrides map[string]map[string]bool // committed: on disk (overrides.go)
	ovQueue   []*overrideRequest         // changes waiting for the next write
	ovWriting bool                       // a write of the overrides is under way
	// history is what processes.json said of jobs not loaded yet: those
	// of user domains made later. A job takes its own when it is added;
	// a domain's is dropped once its jobs are installed.
	history  map[string]map[string]jobHistory
	watchers map[*watcher]struct{}
	cal      calendars // StartCalendarInterval deadlines and their clock (schedule.go)
	exeWatch *exeWatch // the upgrades monitor, told when instances start and end (exewatch.go)
	// exits are why the last instances ended (exits.go).
	exits exitRing
	// queuedBy counts, by uid, the client sockets xpcd holds for services
	// (hold, release).
	queuedBy map[uint32]int
	// ovBucket is the bucket (buckets.go) of the owner of each user domain
	// with overrides, for their limit (roomForOverride).
	ovBucket map[string]uint32
	// buckets says what each uid counts under in the per-user limits.
	buckets *buckets
	// outputs are the output readers still running: an instance's
	// outlives it while processes it left behind still write.
	outputs  []*output
	live     int // instances, spawning ones included
	inflight int // spawns whose outcome the loop has not seen yet
	closing  bool
	detached bool          // detachAll has run
	allGone  chan struct{} // closed when closing and live reaches 0
	settled  chan struct{} // closed when closing and inflight reaches 0
	// acts is the activities' scheduler (activity.go).
	acts *activities
	// ev is launch events' index and uevent listener (events.go).
	ev eventState
	// mon is the message monitors attached to jobs (monitor_attach.go).
	mon monitorTable
	// reg is the registry of application services (registry.go).
	reg registry
	// plists watches the domains' directories for deleted plists
	// (plistgone.go); nil if there are none.
	plists *plistWatch
	// apps is the pid domains and app service instances (apps_domain.go).
	apps *apps
}

// domain is one namespace of jobs and names.
type domain struct {
	name   string
	owner  uint32
	bucket uint32          // the owner's, for the per-user limits (buckets.go)
	jobs   map[string]*job // by label
	names  map[string]*job // MachServices name -> job
	errors []loadError     // plists rejected at start
	// watching counts the jobs with a path watcher (bootstrap.RuleWatchLimit).
	watching int
}

func newSupervisor(cfg supervisorConfig) *supervisor {
	m := &supervisor{
		supervisorConfig: cfg,
		events:           make(chan func(), 256),
		quit:             make(chan struct{}),
		stopped:          make(chan struct{}),
		domains:          map[string]*domain{},
		byPID:            map[int]*instance{},
		overrides:        map[string]map[string]bool{},
		watchers:         map[*watcher]struct{}{},
		queuedBy:         map[uint32]int{},
		buckets:          newBuckets(),
		acts:             newActivities(),
		apps:             newApps(),
	}
	if m.criteria == nil {
		m.criteria = criteria.NewFake()
	}
	if m.recheck <= 0 {
		m.recheck = defaultRecheck
	}
	for name, owner := range cfg.domains {
		m.addDomain(newDomain(name, owner, m.buckets.of(owner)))
	}
	return m
}

// addDomain adds d to the domains (on the loop, or before it starts).
func (m *supervisor) addDomain(d *domain) {
	m.domains[d.name] = d
	m.seen.Store(d.name, true)
}

// newDomain makes a domain; bucket is what its owner counts under in the
// per-user limits (buckets.of, looked up off the loop).
func newDomain(name string, owner, bucket uint32) *domain {
	return &domain{name: name, owner: owner, bucket: bucket, jobs: map[string]*job{}, names: map[string]*job{}}
}

// bucketJobs counts the jobs loaded in the user domains of d's bucket:
// those of a user and of every uid without an account count together
// (bootstrap.RuleJobLimit).
func (m *supervisor) bucketJobs(d *domain) int {
	n := 0
	for _, o := range m.domains {
		if o.name != DomainSystem && o.owner != 0 && o.bucket == d.bucket {
			n += len(o.jobs)
		}
	}
	return n
}

func (m *supervisor) name() string { return "supervisor" }

// start loads the jobs, adopts the processes a previous xpcd left running,
// starts what starts at load, and runs the loop. Until the loop runs,
// start has the state to itself.
func (m *supervisor) start(context.Context) error {
	if m.store != nil {
		m.overrides = m.store.loadedOverrides
		m.bucketOverrides()
		m.history = map[string]map[string]jobHistory{}
		for _, h := range m.store.loadedHistory {
			if m.history[h.Domain] == nil {
				m.history[h.Domain] = map[string]jobHistory{}
			}
			m.history[h.Domain][h.Label] = h
		}
	}
	m.restoreActivities()
	m.restoreEvents()
	m.restoreRegistry() // registry.go
	if m.jobs != nil {
		for _, dn := range sortedKeys(m.jobs.initial) {
			if d := m.domains[dn]; d != nil {
				m.installJobs(d, m.jobs.initial[dn], m.jobs.initialErrors[dn], false)
			}
		}
	}
	// The scan comes first: a process started after it would be neither
	// recorded nor found, but none is started before the loop runs.
	marked, err := m.launcher.marked()
	if err != nil {
		m.log.Error("adopt: cannot look for the processes a previous xpcd started", "err", err)
	}
	m.restoreUserDomains(marked)
	m.installRegisteredAll(false)
	adopted := m.adoptAll()
	m.adoptMarked(marked, adopted)
	m.cleanOutputs(adopted)
	m.watchPlistDirs()
	go m.run()
	m.bg.Add(1)
	go m.watchCriteria()
	// Now through the loop: jobs that start at load.
	m.post(func() {
		for _, d := range m.sortedDomains() {
			for _, label := range sortedKeys(d.jobs) {
				j := d.jobs[label]
				m.syncSchedule(j)
				if j.inst == nil {
					m.atLoad(j)
				}
				m.changed(j)
			}
		}
		m.saveProcesses()
	})
	return nil
}

// installJobs loads jobs read from a directory into d; those rejected
// (label or name taken) join errs as d's load errors.
func (m *supervisor) installJobs(d *domain, jobs []*launchd.Job, errs []loadError, start bool) {
	d.errors = append(d.errors, errs...)
	for _, def := range jobs {
		if _, err := m.addJob(d, def, start); err != nil {
			le := loadError{Domain: d.name, File: def.Path, Key: err.key, Reason: err.desc}
			d.errors = append(d.errors, le)
			m.log.Error("jobs: rejected", "domain", d.name, "file", le.File, "key", le.Key, "reason", le.Reason)
		}
	}
	m.installRegistered(d, start) // registry.go
	// The history of jobs of d that are not loaded any more goes.
	delete(m.history, d.name)
	delete(m.acts.stored, d.name)
	m.installedEvents(d, start)
	if start {
		m.otherJobsChanged(d)
	}
}

// cleanOutputs removes output FIFOs no live process writes to.
func (m *supervisor) cleanOutputs(keep map[string]bool) {
	if m.outputDir == "" {
		return
	}
	ents, _ := os.ReadDir(m.outputDir)
	for _, e := range ents {
		p := filepath.Join(m.outputDir, e.Name())
		if !keep[p] {
			os.Remove(p)
		}
	}
}

func (m *supervisor) run() {
	defer close(m.stopped)
	for {
		select {
		case fn := <-m.events:
			fn()
		case <-m.quit:
			return
		}
	}
}

// post runs fn on the loop, later. It reports false if the loop has
// stopped (fn will never run).
func (m *supervisor) post(fn func()) bool {
	select {
	case m.events <- fn:
		return true
	case <-m.stopped:
		return false
	}
}

// errStopped is returned by call once the supervisor has stopped.
var errStopped = errors.New("xpcd is shutting down")

// call runs fn on the loop and waits for it. Never call it from the loop.
func (m *supervisor) call(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	if !m.post(func() { fn(); close(done) }) {
		return errStopped
	}
	select {
	case <-done:
		return nil
	case <-m.stopped:
		// It may have run just before the loop stopped.
		select {
		case <-done:
			return nil
		default:
			return errStopped
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops the supervisor. Services keep running (they re-check-in with
// the next xpcd) unless stopOnClose, in which case they are stopped, and
// killed when ctx ends first.
func (m *supervisor) close(ctx context.Context) error {
	var gone, settled chan struct{}
	if err := m.call(ctx, func() { gone, settled = m.beginClose() }); err != nil {
		return err
	}
	var err error
	if m.stopOnClose {
		select {
		case <-gone:
		case <-ctx.Done():
			err = ctx.Err()
			m.call(context.Background(), func() {
				for _, inst := range m.byPID {
					inst.proc.killGroup(syscall.SIGKILL)
				}
			})
			select {
			case <-gone:
			case <-time.After(time.Second):
			}
		}
	}
	// A spawn under way must be seen through, or its process would run
	// without a record.
	select {
	case <-settled:
	case <-ctx.Done():
		err = ctx.Err()
		m.log.Error("shutdown: a launch did not finish; its process may run unsupervised")
	}
	m.call(context.Background(), m.detachAll)
	close(m.quit)
	<-m.stopped
	m.bg.Wait()
	return err
}

func (m *supervisor) beginClose() (gone, settled chan struct{}) {
	m.closing = true
	m.allGone = make(chan struct{})
	m.settled = make(chan struct{})
	gone, settled = m.allGone, m.settled
	m.stopActivities()
	m.stopPlistWatch()
	for _, d := range m.jobDomains() { // app domains too (apps_domain.go)
		for _, j := range d.jobs {
			j.cancelThrottle()
			m.disarm(j)
			if m.stopOnClose && j.inst != nil {
				m.stop(j.inst, stopShutdown)
			}
		}
	}
	if m.live == 0 {
		close(m.allGone)
		m.allGone = nil
	}
	if m.inflight == 0 {
		close(m.settled)
		m.settled = nil
	}
	return gone, settled
}

// detachAll lets go of everything: services keep running, their records
// stay in the state so that the next xpcd adopts them; clients waiting in a
// queue see their socket close and look the name up again.
func (m *supervisor) detachAll() {
	m.detached = true
	m.closeApps()
	m.stopUEvents()
	m.dropMonitors(nil)
	for w := range m.watchers {
		w.ch.close()
		delete(m.watchers, w)
	}
	for _, d := range m.jobDomains() { // app domains too (apps_domain.go)
		for _, j := range d.jobs {
			m.dropQueue(j)
			j.cancelThrottle()
			m.disarm(j)
			if inst := j.inst; inst != nil {
				inst.stopTimers()
				if inst.ch != nil {
					inst.ch.close()
					inst.ch.conn.Cancel()
				}
				if inst.proc != nil {
					inst.proc.close()
				}
			}
		}
	}
	// Stop reading output (FIFOs stay, for the next xpcd); the readers
	// end before Close returns.
	for _, o := range m.outputs {
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			o.stop(false)
		}()
	}
	m.outputs = nil
	m.saveProcesses()
	m.stopActivities()
	m.stopEvents()
	m.flushRegistry() // registry.go
}

// trackOutput remembers a running output reader, forgetting those that
// have finished.
func (m *supervisor) trackOutput(o *output) {
	kept := m.outputs[:0]
	for _, x := range m.outputs {
		if !x.finished() {
			kept = append(kept, x)
		}
	}
	m.outputs = kept
	if o != nil {
		m.outputs = append(m.outputs, o)
	}
}

// sortedDomains returns the domains by name.
func (m *supervisor) sortedDomains() []*domain {
	out := make([]*domain, 0, len(m.domains))
	for _, n := range sortedKeys(m.domains) {
		out = append(out, m.domains[n])
	}
	return out
}

// saveProcesses records the running processes, for adoption, and the
// jobs' histories.
func (m *supervisor) saveProcesses() {
	if m.store == nil {
		return
	}
	recs := []processRecord{}
	for _, pid := range slices.Sorted(maps.Keys(m.byPID)) {
		inst := m.byPID[pid]
		rec := processRecord{
			Domain: inst.job.dom.name, Label: inst.def.Label, PID: inst.pid, StartTime: inst.startTime,
			Since: inst.started, Reason: inst.reason.why, Requester: inst.reason.requester,
			Fingerprint: inst.fp, Exe: inst.exe, Runs: inst.job.runs, Marker: inst.marker,
		}
		if inst.out != nil {
			rec.Output = inst.out.path
		}
		recs = append(recs, rec)
	}
	m.store.saveProcesses(recs, m.histories())
}

// histories returns the history of every loaded job that has one, and
// those kept for jobs of domains not made yet.
func (m *supervisor) histories() []jobHistory {
	var out []jobHistory
	for _, d := range m.sortedDomains() {
		for _, j := range sortedJobs(d) {
			if h, ok := j.history(); ok {
				out = append(out, h)
			}
		}
	}
	for _, dn := range sortedKeys(m.history) {
		for _, l := range sortedKeys(m.history[dn]) {
			out = append(out, m.history[dn][l])
		}
	}
	return out
}

// history returns what processes.json keeps of j; false if there is
// nothing to keep.
func (j *job) history() (jobHistory, bool) {
	if j.runs == 0 && j.lastExit == nil {
		return jobHistory{}, false
	}
	h := jobHistory{Domain: j.dom.name, Label: j.def.Label, Runs: j.runs}
	if e := j.lastExit; e != nil {
		h.LastExit = &exitRecord{Known: e.known, Status: e.code, Signal: int(e.signal), At: j.lastExitAt, StopReason: j.lastStop}
	}
	return h, true
}

// restoreHistory gives a job loaded at start what the previous xpcd
// recorded of it.
func (m *supervisor) restoreHistory(j *job) {
	h, ok := m.history[j.dom.name][j.def.Label]
	if !ok {
		return
	}
	delete(m.history[j.dom.name], j.def.Label)
	j.runs = h.Runs
	if e := h.LastExit; e != nil {
		j.lastExit = &exitStatus{known: e.Known, code: e.Status, signal: syscall.Signal(e.Signal)}
		j.lastExitAt = e.At
		j.lastStop = e.StopReason
	}
}

// opError is a request's failure: a reason (bootstrap.Reason* or one of
// this package's) and a one-line description; key names the plist key for
// load errors.
type opError struct {
	reason string
	desc   string
	key    string
	extra  *xpc.Dictionary // more keys for the error object
}

func (e *opError) Error() string { return e.desc }

// object returns the error as the error object replied on the wire.
func (e *opError) object() *xpc.ErrorObject {
	o := xpc.NewErrorObject(e.desc)
	o.Set(bootstrap.KeyKind, xpc.String(bootstrap.KindInvalid))
	o.Set(bootstrap.KeyReason, xpc.String(e.reason))
	if e.extra != nil {
		for k, v := range e.extra.All() {
			o.Set(k, v)
		}
	}
	return o
}
