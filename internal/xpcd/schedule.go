package xpcd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// What starts a job besides demand, RunAtLoad and KeepAlive: its
// StartInterval and StartCalendarInterval timers, and its WatchPaths and
// QueueDirectories (pathwatch.go). A job has them (a schedule) while it is
// loaded and enabled and xpcd is not shutting down; disabling the job,
// booting it out, replacing its definition and shutting down stop its
// timers and close its watch. All of it is owned by the loop; the timers
// and the watcher's goroutine post.
//
// Every start goes through want, as any other launch does: a job that
// runs (or is being spawned, or waits for its throttle) is left alone, so
// a timer or a change that comes while it runs does nothing (launchd
// coalesces the same way), and ThrottleInterval holds between launches.
//
//	StartInterval          every interval after the job was loaded (or
//	                       enabled, or its definition replaced): at load+N,
//	                       load+2N, ...; fires missed while the loop was
//	                       busy are skipped, not made up.
//	StartCalendarInterval  at the next minute any entry matches, in local
//	                       time (CalendarInterval.Next). One wall-clock
//	                       timer (walltimer.go) sleeps until the earliest
//	                       such minute of all jobs, and wakes early only
//	                       when the clock is set or the machine resumes:
//	                       then every job's next minute is computed again
//	                       from the new time. launchd fires once on wake
//	                       for the events a sleep missed, and so does this,
//	                       once. Events missed while xpcd did not run are
//	                       not made up at start.
//	WatchPaths             a path was modified, created, removed or
//	                       replaced: start after watchDebounce, so that a
//	                       burst of changes (a save, an install) is one
//	                       start.
//	QueueDirectories       start while a directory is not empty: when the
//	                       watch sees its entries change, and again each
//	                       time the job exits (throttled), until all are
//	                       empty. Emptiness is read off the loop, one check
//	                       per job at a time.

// Launch reasons of the schedule.
const (
	reasonInterval  = "interval"
	reasonCalendar  = "calendar"
	reasonWatchPath = "watch-path"
	reasonQueue     = "queue-directory"
)

const (
	// watchDebounce is how long a WatchPaths change waits for more
	// before the job is started: the changes in it make one start.
	watchDebounce = 100 * time.Millisecond
)

// schedule is a scheduled job's timers and watch.
type schedule struct {
	interval     *time.Timer
	intervalNext time.Time

	calendarNext time.Time // zero: no entry can fire (or none is due)
	calendarAt   int       // the entry of StartCalendarInterval due at calendarNext

	watch    pathWatcher // nil if the job watches nothing, or it failed
	watchErr string
	counted  bool        // the watch counts in its domain's watching
	posted   atomic.Bool // the watcher has posted changes not yet taken
	hitWatch atomic.Bool
	hitQueue atomic.Bool
	hitState atomic.Bool
	debounce *time.Timer
	checking bool // a queue check runs
	recheck  bool // and another is wanted after it
}

// hasSchedule tells whether def has anything for a schedule to do.
func hasSchedule(def *launchd.Job) bool {
	return def.StartInterval > 0 || len(def.StartCalendarInterval) > 0 ||
		len(def.WatchPaths) > 0 || len(def.QueueDirectories) > 0 || len(def.KeepAlive.PathState) > 0
}

// statePaths returns the KeepAlive PathState paths of def, sorted.
func statePaths(def *launchd.Job) []string {
	paths := make([]string, 0, len(def.KeepAlive.PathState))
	for p := range def.KeepAlive.PathState {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// syncSchedule gives the job a schedule if it should have one, and takes
// it away if not.
func (m *supervisor) syncSchedule(j *job) {
	want := !j.disabled && !j.unloading && j.gone == "" && !j.removed && !m.closing && hasSchedule(j.def) &&
		!m.unapproved(j) // registry.go: nothing is watched for a daemon not approved
	switch {
	case want && j.sched == nil:
		m.arm(j)
	case !want && j.sched != nil:
		m.disarm(j)
	}
}

// arm starts the job's timers and watch.
func (m *supervisor) arm(j *job) {
	s := &schedule{}
	j.sched = s
	def := j.def
	now := time.Now()
	if def.StartInterval > 0 {
		s.intervalNext = now.Add(def.StartInterval)
		m.armInterval(j, s, now)
	}
	if len(def.StartCalendarInterval) > 0 {
		m.nextCalendar(j, s)
		m.cal.reschedule(m)
	}
	if len(def.WatchPaths) > 0 || len(def.QueueDirectories) > 0 || len(def.KeepAlive.PathState) > 0 {
		m.armWatch(j, s)
	}
}

// armWatch starts watching the job's paths, as its user, unless its user
// domain has maxWatches watching jobs already (bootstrap.RuleWatchLimit): each
// costs an inotify instance and a thread, which a user must not be able
// to use up for everyone.
func (m *supervisor) armWatch(j *job, s *schedule) {
	d := j.dom
	if d.name != DomainSystem && d.owner != 0 && m.maxWatches > 0 && d.watching >= m.maxWatches {
		re := refusedBy(bootstrap.RuleWatchLimit, "%s has %d jobs watching paths already, the limit", d.name, d.watching)
		m.watchFailed(j, s, re)
		return
	}
	newWatch := m.newWatch
	if newWatch == nil {
		newWatch = newInotifyWatch
	}
	w, err := newWatch(watchSpec{watch: j.def.WatchPaths, queue: j.def.QueueDirectories, state: statePaths(j.def),
		ident: m.identOf(j), log: m.log.With("target", j.target())})
	if err != nil {
		m.watchFailed(j, s, err)
		return
	}
	s.watch = w
	s.counted = true
	d.watching++
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		err := w.run(func(watch, queue, state bool) { m.pathsChanged(j, s, watch, queue, state) })
		if err != nil {
			m.post(func() {
				if j.sched == s {
					m.watchFailed(j, s, err)
				}
			})
		}
	}()
}

// watchFailed notes that the job's paths are not watched, and why.
func (m *supervisor) watchFailed(j *job, s *schedule, err error) {
	s.watchErr = err.Error()
	m.log.Error("cannot watch paths", "target", j.target(), "err", err)
	// Without a watch, the queue directories are still looked at now
	// and after each exit.
	m.checkQueues(j)
	m.changed(j)
}

// identOf returns a function that resolves whom the job runs as (off the
// loop: it reads the user database); nil when xpcd is not root.
func (m *supervisor) identOf(j *job) func() (*ident, error) {
	if !m.root {
		return nil
	}
	dom, owner, def := j.dom.name, j.dom.owner, j.def
	return func() (*ident, error) { return jobIdent(true, dom, owner, def, nil) }
}

// disarm stops the job's timers and closes its watch.
func (m *supervisor) disarm(j *job) {
	s := j.sched
	if s == nil {
		return
	}
	j.sched = nil
	for _, t := range []*time.Timer{s.interval, s.debounce} {
		if t != nil {
			t.Stop()
		}
	}
	if _, ok := m.cal.jobs[j]; ok {
		delete(m.cal.jobs, j)
		m.cal.reschedule(m)
	}
	if s.watch != nil {
		s.watch.close()
	}
	if s.counted {
		s.counted = false
		j.dom.watching--
	}
}

// nextStart is when the schedule next starts the job by a timer; zero if
// it has no timer.
func (s *schedule) nextStart() time.Time {
	var t time.Time
	if s.interval != nil {
		t = s.intervalNext
	}
	if !s.calendarNext.IsZero() && (t.IsZero() || s.calendarNext.Before(t)) {
		t = s.calendarNext
	}
	return t
}

// --- StartInterval ---

func (m *supervisor) armInterval(j *job, s *schedule, now time.Time) {
	var t *time.Timer
	t = time.AfterFunc(s.intervalNext.Sub(now), func() {
		m.post(func() { m.intervalFired(j, s, t) })
	})
	s.interval = t
}

func (m *supervisor) intervalFired(j *job, s *schedule, t *time.Timer) {
	if j.sched != s || s.interval != t {
		return
	}
	now := time.Now()
	n := j.def.StartInterval
	s.intervalNext = s.intervalNext.Add(n)
	if !s.intervalNext.After(now) {
		s.intervalNext = now.Add(n) // the loop was late: skip, do not make up
	}
	m.armInterval(j, s, now)
	m.scheduledStart(j, reasonInterval)
}

// --- StartCalendarInterval: calendar.go ---

// --- WatchPaths and QueueDirectories ---

// pathsChanged is called by the watcher's goroutine. Changes are gathered
// in s until the loop takes them, with one post for any number of them.
func (m *supervisor) pathsChanged(j *job, s *schedule, watch, queue, state bool) {
	if watch {
		s.hitWatch.Store(true)
	}
	if queue {
		s.hitQueue.Store(true)
	}
	if state {
		s.hitState.Store(true)
	}
	if s.posted.CompareAndSwap(false, true) {
		m.post(func() { m.takeChanges(j, s) })
	}
}

func (m *supervisor) takeChanges(j *job, s *schedule) {
	s.posted.Store(false)
	watch, queue, state := s.hitWatch.Swap(false), s.hitQueue.Swap(false), s.hitState.Swap(false)
	if j.sched != s {
		return
	}
	if watch {
		m.watchChanged(j, s)
	}
	if queue {
		m.checkQueues(j)
	}
	if state && m.stateWantsRunning(j) {
		// A PathState path appeared or went: launchd starts a job whose
		// KeepAlive condition now holds (want leaves a running one).
		m.want(j, launchReason{why: reasonKeepAlive})
	}
}

// watchChanged: a WatchPaths path changed. The job starts watchDebounce
// later, once for every change until then.
func (m *supervisor) watchChanged(j *job, s *schedule) {
	if s.debounce != nil {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(watchDebounce, func() {
		m.post(func() {
			if j.sched != s || s.debounce != t {
				return
			}
			s.debounce = nil
			m.scheduledStart(j, reasonWatchPath)
		})
	})
	s.debounce = t
}

// checkQueues looks, in another goroutine, whether a queue directory of
// the job has an entry, and starts the job if so (queuesChecked). One
// check at a time: a check asked for meanwhile runs after it.
func (m *supervisor) checkQueues(j *job) {
	s := j.sched
	if s == nil || len(j.def.QueueDirectories) == 0 {
		return
	}
	if s.checking {
		s.recheck = true
		return
	}
	s.checking = true
	dirs := j.def.QueueDirectories
	identOf := m.identOf(j)
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		// Listed as the job's user: a job learns nothing of a directory
		// its user could not list.
		var full string
		var id *ident
		var err error
		if identOf != nil {
			id, err = identOf()
		}
		if err == nil {
			err = asUser(id, func() error {
				var lerr error
				full, lerr = anyNonEmpty(dirs)
				return lerr
			})
		}
		m.post(func() { m.queuesChecked(j, s, full, err) })
	}()
}

func (m *supervisor) queuesChecked(j *job, s *schedule, full string, err error) {
	s.checking = false
	if j.sched != s {
		return
	}
	if s.recheck {
		s.recheck = false
		m.checkQueues(j)
		return
	}
	if err != nil {
		m.log.Warn("queue directory", "target", j.target(), "err", err)
	}
	if full != "" {
		m.log.Debug("queue directory not empty", "target", j.target(), "dir", full)
		m.scheduledStart(j, reasonQueue)
	}
}

// anyNonEmpty returns the first directory that has an entry. One that does
// not exist is empty; one that cannot be read is reported.
func anyNonEmpty(dirs []string) (string, error) {
	var errs []error
	for _, d := range dirs {
		// O_NONBLOCK and O_DIRECTORY: a FIFO (or anything else a user
		// may put there) must not hold the check up. openNamed: no
		// /proc link to a directory xpcd has open is followed.
		f, err := openNamed(d, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_DIRECTORY, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		names, err := f.Readdirnames(1)
		f.Close()
		if len(names) > 0 {
			return d, nil
		}
		if err != nil && err != io.EOF {
			errs = append(errs, err)
		}
	}
	return "", errors.Join(errs...)
}

// scheduledStart starts the job for its schedule, unless it runs, is due
// to, or may not.
func (m *supervisor) scheduledStart(j *job, why string) {
	if j.inst == nil {
		m.want(j, launchReason{why: why})
	}
	m.changed(j)
}

// afterExitSchedule: an instance ended and nothing else starts the job
// again; its queue directories may still hold work.
func (m *supervisor) afterExitSchedule(j *job) {
	if j.inst == nil && j.throttle == nil {
		m.checkQueues(j)
	}
}

// throttledQueue: a queue-directory start waited for its throttle; look
// again before starting, the directories may have emptied meanwhile.
func (m *supervisor) throttledQueue(j *job) {
	m.checkQueues(j)
}

// --- describing it ---

// scheduleText describes what starts the job besides demand, for blame:
// "next start by StartInterval (1h0m0s) at T", "next calendar start at T
// (Hour=3 Minute=0)", "watching paths /a, /b", ...
func (m *supervisor) scheduleText(j *job) []string {
	def := j.def
	s := j.sched
	if s == nil || !hasSchedule(def) {
		return nil
	}
	ts := func(t time.Time) string { return t.Format(time.RFC3339) }
	var parts []string
	if s.interval != nil {
		parts = append(parts, fmt.Sprintf("next start by StartInterval (every %v) at %s", def.StartInterval, ts(s.intervalNext)))
	}
	if len(def.StartCalendarInterval) > 0 {
		if s.calendarNext.IsZero() {
			parts = append(parts, "StartCalendarInterval never matches")
		} else {
			parts = append(parts, fmt.Sprintf("next calendar start at %s (%s)", ts(s.calendarNext),
				calendarText(def.StartCalendarInterval[s.calendarAt])))
		}
	}
	if len(def.WatchPaths) > 0 {
		parts = append(parts, "watching paths "+strings.Join(def.WatchPaths, ", ")+" (a change starts it)")
	}
	if len(def.QueueDirectories) > 0 {
		parts = append(parts, "watching queue directories "+strings.Join(def.QueueDirectories, ", ")+" (it starts while one is not empty)")
	}
	if len(def.KeepAlive.PathState) > 0 {
		var conds []string
		for _, p := range statePaths(def) {
			if def.KeepAlive.PathState[p] {
				conds = append(conds, p+" exists")
			} else {
				conds = append(conds, p+" is missing")
			}
		}
		parts = append(parts, "watching KeepAlive PathState: it starts while "+strings.Join(conds, " or "))
	}
	if s.watchErr != "" {
		parts = append(parts, "but watching them failed: "+s.watchErr)
	}
	return parts
}

// calendarText writes an entry as its plist keys: "Hour=3 Minute=0";
// "every minute" for the empty entry.
func calendarText(c launchd.CalendarInterval) string {
	var f []string
	for _, kv := range []struct {
		k string
		v *int
	}{{"Month", c.Month}, {"Day", c.Day}, {"Weekday", c.Weekday}, {"Hour", c.Hour}, {"Minute", c.Minute}} {
		if kv.v != nil {
			f = append(f, kv.k+"="+strconv.Itoa(*kv.v))
		}
	}
	if len(f) == 0 {
		return "every minute"
	}
	return strings.Join(f, " ")
}
