package xpcd

import (
	"fmt"
	"strings"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// jobDict describes a job as list, print and watch return it. Keys with no
// meaning in the present state are left out (pid when nothing runs,
// throttled_until when not throttled, ...).
//
//	label, domain, state      strings; state as in job.go
//	since                     date: when it entered this state
//	pid                       int64, while an instance exists
//	adopted                   bool, for an instance found after a restart of xpcd
//	runs                      int64: instances started since loaded (kept
//	                          across restarts of xpcd, as is last_exit*)
//	last_exit                 string: how the last instance ended
//	last_exit_status          int64, if it exited
//	last_exit_signal          int64, if it was killed by a signal
//	last_exit_at              date
//	stop_reason               string: why xpcd stopped (stops) it
//	launch_reason             string: demand, run-at-load, keep-alive, kickstart, upgrade,
//	                          interval, calendar, watch-path, queue-directory, activity
//	requester_pid             int64, for demand
//	connections               int64: the running instance's open peer connections, as
//	                          it reports them; the string "unknown" if it does not
//	                          (a process that does not use the library's Service)
//	connections_total         int64: clients handed to the running instance since it started
//	queued                    int64: clients waiting for the service
//	transactions              int64: the instance's open transactions
//	checked_in                array of strings: names the instance listens for
//	program, plist_path       strings
//	throttled_until           date, while throttled
//	mach_services             array of strings
//	keep_alive                bool: it has a KeepAlive condition
//	run_at_load               bool
//	idle_exit_timeout_s       int64
//	start_interval_s          int64, if it has a StartInterval
//	next_start                date: the next start by StartInterval or StartCalendarInterval,
//	                          while those are scheduled (loaded, enabled)
//	watch_paths               array of strings: its WatchPaths, if any
//	queue_directories         array of strings: its QueueDirectories, if any
//	disabled                  bool
//	upgrade_pending           bool
//	plist_deleted             bool: its plist was deleted (plistgone.go)
//	error                     string: the last launch's failure
//	warnings                  array of strings: keys of the plist that have no effect
//	state_read_only           bool, if xpcd's state is read-only (enable and
//	                          disable are refused), and state_read_only_why
func (m *supervisor) jobDict(j *job) *xpc.Dictionary {
	d := xpc.NewDictionary(32)
	d.Set(bootstrap.KeyLabel, xpc.String(j.def.Label))
	d.Set(bootstrap.KeyDomain, xpc.String(j.dom.name))
	d.Set(bootstrap.KeyState, xpc.String(j.stateOf()))
	if j.inst == nil && m.unapproved(j) {
		d.Set(bootstrap.KeyState, xpc.String(bootstrap.StateUnapproved)) // registry.go
	}
	d.Set("since", xpc.DateOf(j.since))
	setRunKeys(d, j)
	setClientKeys(d, j)
	setDefinitionKeys(d, j)
	setProblemKeys(d, j)
	setEventKeys(d, j)
	m.setStateReadOnly(d)
	return d
}

// setRunKeys sets jobDict's keys of the instance, the last exit and the
// launch: pid, adopted, stop_reason, runs, last_exit*, launch_reason,
// requester_pid.
func setRunKeys(d *xpc.Dictionary, j *job) {
	inst := j.inst
	r := j.lastReason
	if inst != nil {
		r = inst.reason
		if inst.pid > 0 {
			d.Set(bootstrap.KeyPID, xpc.Int64(inst.pid))
		}
		if inst.adopted {
			d.Set("adopted", xpc.Bool(true))
		}
		if inst.stopWhy != "" {
			d.Set("stop_reason", xpc.String(inst.stopWhy))
		}
	} else if j.lastStop != "" {
		d.Set("stop_reason", xpc.String(j.lastStop))
	}
	d.Set(bootstrap.KeyRuns, xpc.Int64(j.runs))
	if e := j.lastExit; e != nil {
		d.Set(bootstrap.KeyLastExit, xpc.String(e.String()))
		if e.known && e.signal != 0 {
			d.Set("last_exit_signal", xpc.Int64(e.signal))
		} else if e.known {
			d.Set("last_exit_status", xpc.Int64(e.code))
		}
		d.Set("last_exit_at", xpc.DateOf(j.lastExitAt))
	}
	if r.why != "" {
		d.Set(bootstrap.KeyLaunchReason, xpc.String(r.why))
		if r.requester != 0 {
			d.Set("requester_pid", xpc.Int64(r.requester))
		}
	}
}

// setClientKeys sets jobDict's keys of the clients: connections,
// connections_total, queued, transactions, checked_in.
func setClientKeys(d *xpc.Dictionary, j *job) {
	inst := j.inst
	var open xpc.Object = xpc.Int64(0)
	total, tx := 0, 0
	var names []string
	if inst != nil {
		open = xpc.String("unknown")
		if inst.connsKnown {
			open = xpc.Int64(inst.conns)
		}
		total = inst.delivered
		tx = inst.tx
		names = sortedKeys(inst.names)
	}
	d.Set(bootstrap.KeyConnections, open)
	d.Set("connections_total", xpc.Int64(total))
	d.Set("queued", xpc.Int64(len(j.queue)))
	d.Set("transactions", xpc.Int64(tx))
	if inst != nil && !inst.spawning {
		d.Set("checked_in", strArray(names))
	}
}

// setDefinitionKeys sets jobDict's keys of the definition and its
// schedule: program, plist_path, throttled_until, mach_services,
// keep_alive, run_at_load, idle_exit_timeout_s, start_interval_s,
// next_start, watch_paths, queue_directories.
func setDefinitionKeys(d *xpc.Dictionary, j *job) {
	def := j.def
	d.Set("program", xpc.String(def.Executable()))
	d.Set("plist_path", xpc.String(def.Path))
	if j.throttle != nil {
		d.Set("throttled_until", xpc.DateOf(j.throttleAt))
	}
	d.Set(bootstrap.KeyMachServices, strArray(sortedKeys(def.MachServices)))
	d.Set("keep_alive", xpc.Bool(!def.KeepAlive.IsZero()))
	d.Set("run_at_load", xpc.Bool(def.StartsAtLoad()))
	d.Set("idle_exit_timeout_s", xpc.Int64(def.IdleExitTimeout/time.Second))
	if def.StartInterval > 0 {
		d.Set("start_interval_s", xpc.Int64(def.StartInterval/time.Second))
	}
	if j.sched != nil {
		if t := j.sched.nextStart(); !t.IsZero() {
			d.Set("next_start", xpc.DateOf(t))
		}
	}
	if len(def.WatchPaths) > 0 {
		d.Set("watch_paths", strArray(def.WatchPaths))
	}
	if len(def.QueueDirectories) > 0 {
		d.Set("queue_directories", strArray(def.QueueDirectories))
	}
}

// setProblemKeys sets jobDict's keys of what keeps the job from running
// as defined: disabled, upgrade_pending, plist_deleted, rule, error,
// warnings.
func setProblemKeys(d *xpc.Dictionary, j *job) {
	d.Set("disabled", xpc.Bool(j.disabled))
	if (j.inst != nil && j.inst.upgrade) || j.next != nil {
		d.Set("upgrade_pending", xpc.Bool(true))
	}
	if j.gone != "" {
		d.Set(bootstrap.KeyPlistDeleted, xpc.Bool(true))
	}
	if j.refused != nil {
		d.Set(bootstrap.KeyRule, xpc.String(j.refused.Rule))
	}
	if j.err != "" {
		d.Set("error", xpc.String(j.err))
	}
	if len(j.def.Warnings) > 0 {
		var ws []string
		for _, w := range j.def.Warnings {
			ws = append(ws, w.String())
		}
		d.Set(bootstrap.KeyWarnings, strArray(ws))
	}
}

// setStateReadOnly adds bootstrap.KeyStateReadOnly and its why to d when
// the state is read-only.
func (m *supervisor) setStateReadOnly(d *xpc.Dictionary) {
	if why := m.stateReadOnly(); why != "" {
		d.Set(bootstrap.KeyStateReadOnly, xpc.Bool(true))
		d.Set(bootstrap.KeyStateReadOnlyWhy, xpc.String(why))
	}
}

func strArray(s []string) xpc.Array {
	a := make(xpc.Array, 0, len(s))
	for _, v := range s {
		a = append(a, xpc.String(v))
	}
	return a
}

func loadErrorDict(e loadError) *xpc.Dictionary {
	d := xpc.Dict(bootstrap.KeyDomain, e.Domain, bootstrap.KeyFile, e.File, bootstrap.KeyReason, e.Reason, bootstrap.KeyError, e.String())
	if e.Key != "" {
		d.Set(bootstrap.KeyKey, xpc.String(e.Key))
	}
	return d
}

// blame answers "why does it (not) run?" in one paragraph.
func (m *supervisor) blame(j *job) string {
	def := j.def
	ts := func(t time.Time) string { return t.Format(time.RFC3339) }
	var b strings.Builder
	inst := j.inst
	switch st := j.stateOf(); st {
	case "spawning", "running", "exiting":
		m.blameRunning(&b, j, st == "spawning")
	case "refused":
		fmt.Fprintf(&b, "refused at %s by rule %s: %s; not launched again until its plist changes or it is kickstarted",
			ts(j.lastLaunch), j.refused.Rule, j.refused.Detail)
	case "throttled":
		fmt.Fprintf(&b, "throttled until %s: it last started at %s and ThrottleInterval is %v; will start for: %s",
			ts(j.throttleAt), ts(j.lastLaunch), m.throttleOf(j, def), reasonText(j.throttleR))
	case "disabled":
		if _, ok := m.overrides[j.dom.name][def.Label]; ok {
			b.WriteString("disabled by an override (xpcctl enable " + j.target() + " to enable)")
		} else {
			b.WriteString("disabled by the Disabled key of " + def.Path)
		}
	default:
		if m.unapproved(j) { // registry.go
			fmt.Fprintf(&b, "waits for an administrator's approval (xpcctl approval approve %s); not launched until then", m.reg.gate[j.target()])
			break
		}
		m.blameWaiting(&b, j)
	}
	if inst == nil || inst.spawning {
		switch {
		case j.refused != nil:
			// The refusal above is the last launch's failure: said once.
		case j.err != "":
			fmt.Fprintf(&b, "; the last launch failed at %s: %s", ts(j.lastLaunch), strings.TrimPrefix(j.err, "launch failed: "))
		case j.lastExit != nil:
			fmt.Fprintf(&b, "; the last instance %s at %s", j.lastExit, ts(j.lastExitAt))
			if j.lastStop != "" {
				fmt.Fprintf(&b, " after xpcd stopped it (%s)", stopText(j.lastStop))
			}
		}
	}
	if n := len(j.queue); n > 0 {
		fmt.Fprintf(&b, "; %d clients waiting", n)
	}
	b.WriteString(eventsBlame(j))
	if s := activityBlame(j); s != "" {
		b.WriteString("; " + s)
	}
	return b.String()
}

// blameRunning says why j's instance runs (or spawns), and what will stop
// it.
func (m *supervisor) blameRunning(b *strings.Builder, j *job, spawning bool) {
	def, inst := j.def, j.inst
	ts := func(t time.Time) string { return t.Format(time.RFC3339) }
	if spawning {
		fmt.Fprintf(b, "spawning: %s", reasonText(inst.reason))
	} else {
		fmt.Fprintf(b, "running as pid %d since %s: %s", inst.pid, ts(inst.started), reasonText(inst.reason))
	}
	if inst.adopted {
		b.WriteString("; adopted after xpcd restarted")
	}
	if j.gone != "" {
		fmt.Fprintf(b, "; its plist %s was deleted: it is not launched again, and is unloaded when it exits", j.gone)
	}
	if inst.stopWhy != "" {
		fmt.Fprintf(b, "; stopping (%s) since %s", stopText(inst.stopWhy), ts(inst.stopAt))
		if def.ExitTimeOut > 0 {
			fmt.Fprintf(b, ", SIGKILL at %s", ts(inst.stopAt.Add(def.ExitTimeOut)))
		}
	} else if inst.upgrade {
		b.WriteString("; upgrade pending: it restarts on the new version once it has no open transactions")
	}
	if inst.tx > 0 {
		fmt.Fprintf(b, "; %d open transactions", inst.tx)
	} else if def.IdleExitTimeout > 0 && inst.stopWhy == "" {
		fmt.Fprintf(b, "; idle since %s, exits after %v idle", ts(inst.idleFrom), def.IdleExitTimeout)
	}
	if sched := m.scheduleText(j); len(sched) > 0 {
		b.WriteString("; schedule: " + strings.Join(sched, "; ") + " (a start due while it runs is skipped)")
	}
}

// blameWaiting says what will start j, which does not run.
func (m *supervisor) blameWaiting(b *strings.Builder, j *job) {
	if j.unloading {
		b.WriteString("being unloaded")
		return
	}
	def := j.def
	names := sortedKeys(def.MachServices)
	sched := m.scheduleText(j)
	switch {
	case len(sched) > 0:
		b.WriteString("waiting: " + strings.Join(sched, "; "))
		if len(names) > 0 {
			fmt.Fprintf(b, "; a lookup of %s also launches it", strings.Join(names, ", "))
		}
	case len(names) > 0:
		fmt.Fprintf(b, "waiting for demand: a lookup of %s launches it", strings.Join(names, ", "))
	case len(def.LaunchEvents) > 0:
		b.WriteString(eventsWaitText(j))
	case len(def.Activities) > 0:
		b.WriteString("waiting for its activities: one that is due, with its criteria met, launches it")
	default:
		b.WriteString("not running, and nothing starts it (no MachServices, RunAtLoad, KeepAlive, " +
			"StartInterval, StartCalendarInterval, WatchPaths, QueueDirectories, LaunchEvents or activities)")
	}
}

func reasonText(r launchReason) string {
	switch r.why {
	case reasonDemand:
		if r.requester != 0 {
			return fmt.Sprintf("launched on demand by a lookup from pid %d", r.requester)
		}
		return "launched on demand"
	case reasonRunAtLoad:
		return "launched at load (RunAtLoad)"
	case reasonKeepAlive:
		return "launched by KeepAlive"
	case reasonKickstart:
		return "launched by kickstart"
	case reasonUpgrade:
		return "relaunched on its new version for waiting clients (upgrade)"
	case reasonInterval:
		return "launched by StartInterval"
	case reasonCalendar:
		return "launched by StartCalendarInterval"
	case reasonWatchPath:
		return "launched because a WatchPaths path changed"
	case reasonQueue:
		return "launched because a QueueDirectories directory is not empty"
	case reasonEvent:
		return eventReasonText(r)
	case reasonActivity:
		return "launched to run an activity that is due"
	case "":
		return "launched"
	}
	return "launched (" + r.why + ")"
}

func stopText(why string) string {
	switch why {
	case stopIdle:
		return "idle exit"
	case stopPressure:
		return "memory pressure"
	case stopUpgrade:
		return "upgrade"
	case stopBootout:
		return "bootout"
	case stopKickstart:
		return "kickstart -k"
	case stopShutdown:
		return "xpcd shutting down"
	case stopAppExited:
		return "its application exited"
	}
	return why
}

// procInfo describes the process xpcd launched with pid.
func (m *supervisor) procInfo(inst *instance) *xpc.Dictionary {
	d := xpc.Dict(bootstrap.KeyPID, inst.pid, bootstrap.KeyDomain, inst.job.dom.name, bootstrap.KeyLabel, inst.def.Label,
		bootstrap.KeyLaunchReason, inst.reason.why, "since", inst.started, "adopted", inst.adopted)
	if inst.reason.requester != 0 {
		d.Set("requester_pid", xpc.Int64(inst.reason.requester))
	}
	return d
}

// domainErrors lists the load errors of d.
func domainErrors(d *domain) xpc.Array {
	a := xpc.Array{}
	for _, e := range d.errors {
		a = append(a, loadErrorDict(e))
	}
	return a
}

func sortedJobs(d *domain) []*job {
	labels := sortedKeys(d.jobs)
	out := make([]*job, 0, len(labels))
	for _, l := range labels {
		out = append(out, d.jobs[l])
	}
	return out
}
