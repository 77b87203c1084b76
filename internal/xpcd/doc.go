// Package xpcd is goxpc's bootstrap server and service manager, launchd's
// job for XPC on Linux (docs/XPCD.md is the contract). cmd/xpcd runs it;
// xpctest runs one in-process for tests.
//
//	d, err := xpcd.New(xpcd.Config{Paths: bootstrap.ForRoot(dir, true), User: true})
//	if err := d.Start(ctx); err != nil { ... } // the socket accepts from here on
//	...
//	d.Close(ctx) // services keep running, and are adopted by the next xpcd
//
// # Components
//
// Like containerd's daemon, xpcd is a list of components that start in
// order and close in reverse, each close bounded by the caller's context:
//
//	socket      binds the bootstrap socket first, so that a second xpcd on
//	            the same paths fails before it touches anything
//	state       the state directory: overrides.json and processes.json
//	            (with every job's run count and last exit), written
//	            atomically (state.go); read-only when the directory cannot
//	            be written or a file is of a newer version
//	jobs        reads the LaunchAgents/LaunchDaemons plists (jobstore.go)
//	supervisor  domains, jobs, instances: the state machine (supervisor.go,
//	            job.go), processes (process.go, output.go)
//	pressure    asks the PressureSource (monitor.go)
//	upgrades    notices replaced executables (monitor.go)
//	bootstrap   accepts connections and answers requests (server.go,
//	            admin.go)
//
// # Concurrency
//
// All of the supervisor's state (domains, jobs, instances, queued client
// sockets, watchers) belongs to one goroutine, its loop. Everything else
// hands the loop a closure: the bootstrap sessions (one goroutine per
// connection, xpc's dispatcher), the check-in channels, the goroutines that
// wait for processes (through their pidfds), the timers (throttle, idle
// exit, SIGKILL after ExitTimeOut, StartInterval, StartCalendarInterval),
// the path watchers (one goroutine per job with WatchPaths,
// QueueDirectories or a KeepAlive PathState), the monitors. The loop never blocks:
// fork/exec, waiting, sending to peers (each peer has an outbox goroutine,
// channel.go), writing state (a writer goroutine per file) and reading the
// file system all happen elsewhere and report back. No lock is held while
// anything blocks. One loop rather than one goroutine per job, because
// lookups, name uniqueness, pressure and watch look across jobs; each step
// is short.
//
// # Domains
//
// A --user instance (Config.User, or Paths.UserScope) serves one domain,
// user/<its uid>, loaded from Paths.Agents; its socket is 0600 in a 0700
// directory. A system instance (root) serves system, loaded from
// Paths.Daemons, with a 0666 socket; under XPCD_ROOT it also loads
// Paths.Agents into user/<its uid> at start, and in every case it loads
// Paths.Agents into another user's domain when that domain is first used
// (a lookup or list by that user, or a request naming the domain, by
// someone who may read it: permission is checked first). Jobs in user/UID
// run as UID, with UID's groups, when xpcd is root; UserName there may only
// name that user and GroupName only one of their groups. What a root xpcd
// opens for a user it opens as the user (ident.go); the rules it enforces,
// and what a local user cannot make it do, are docs/SECURITY.md's.
//
// A lookup searches the caller's user domain, then system (a --user
// instance passes what it lacks on to the system instance: forward.go).
// Anyone may look
// up in system; a user domain is its owner's (and root's). Changing a
// domain (bootstrap, bootout, enable, disable, kickstart, kill,
// remove-disabled) takes root for system and the owner (or root) for a
// user domain. The caller's uid and pid are the kernel's (SO_PEERCRED at
// connect), never anything a request says.
//
// A plist loads whole or not at all: a file that does not parse or
// validate, a label already loaded, or a MachServices name another job of
// the domain provides is rejected, logged with file, key and reason, and
// listed in the "errors" of list and print. A plist must belong to root or
// the domain's owner and not be writable by group or others.
//
// # Jobs
//
// A job's state is derived: spawning (fork/exec under way), running,
// exiting (asked to stop), throttled, disabled, waiting. Launch reasons:
// demand (a lookup; requester_pid is the client), run-at-load, keep-alive,
// kickstart, upgrade, interval, calendar, watch-path, queue-directory (the
// schedule, below). After an exit xpcd did not ask for, the next launch
// waits until ThrottleInterval after the previous launch; after a stop xpcd
// asked for (idle, pressure, upgrade, kickstart -k, bootout) it does not,
// and KeepAlive does not undo such a stop. Clients queued when an
// instance ends stay queued and launch the next one; a client handed to an
// instance that dies sees its connection end and looks the name up again.
//
// The schedule (schedule.go, pathwatch.go) starts a job that is loaded and
// enabled by its StartInterval, StartCalendarInterval, WatchPaths and
// QueueDirectories, as launchd does. Each start goes through the same gate
// as any launch: a start due while the job runs (or is being spawned) is
// dropped, not queued, as launchd coalesces them; one due while the job
// waits for its throttle adds nothing; ThrottleInterval holds.
//
//	StartInterval N          at load+N, load+2N, ... (load: when the job
//	                         was loaded, enabled, or its definition replaced);
//	                         reason interval
//	StartCalendarInterval    at the next minute any entry matches, in local
//	                         time (launchd.CalendarInterval.Next); reason
//	                         calendar. The timer looks at the wall clock at
//	                         least every minute, so a suspend or a clock
//	                         change costs at most a minute, and starts missed
//	                         while suspended make one start on wake, as in
//	                         launchd. Starts due while xpcd did not run are not
//	                         made up when it starts.
//	WatchPaths               a path modified (contents or attributes),
//	                         created, removed, renamed or replaced (a new
//	                         inode at the path); for a directory, an entry
//	                         added or removed. The start comes 100 ms after
//	                         the first change, so a burst is one start;
//	                         reason watch-path. An exit does not start it
//	                         again.
//	QueueDirectories         a directory that has an entry starts the job,
//	                         at load, when entries change, and again after
//	                         each exit (throttled) until all are empty (or
//	                         do not exist); reason queue-directory. Emptiness
//	                         is read again when a throttled start is due.
//
// A KeepAlive PathState condition is watched the same way: the job starts
// (reason keep-alive) as soon as a path appears (true) or goes (false), as
// well as at load and after each exit.
//
// Paths are watched with inotify: one instance (and one goroutine) per
// job with WatchPaths, QueueDirectories or PathState, watching each path and its
// parent directory (or the nearest ancestor that exists, moving down as
// directories appear), and watching again when a path is replaced.
// Disabling a job, booting it out, replacing its definition and shutting
// down stop its timers and close its watch. blame describes the schedule
// ("next start by StartInterval (every 1h0m0s) at T", "next calendar start
// at T (Hour=3 Minute=0)", "watching paths ..."), and JOB has next_start.
//
// Stopping is: {"op":"terminate"} on the check-in channel, SIGTERM through
// the pidfd, and SIGKILL to the process group ExitTimeOut later (never, if
// it is 0). When the leader exits, what is left of its group is killed
// (unless AbandonProcessGroup), before the leader is reaped, so the group
// id cannot have been recycled. Signals otherwise go through pidfds only.
//
// Idle exit (XPCIdleExitTimeout): an instance is idle when it has reported
// zero open transactions (or checked in, which counts as reporting zero),
// no clients are queued for it, and no client was handed to it, for the
// timeout. Start-up is not idleness: the clock starts at the first check-in
// or report. A dirty instance is never stopped for idleness. The same
// "clean" test gates pressured exit (EnablePressuredExit, under memory
// pressure) and upgrades (the executable's device, inode, size or mtime
// changed, polled every UpgradeInterval; or bootstrap of changed contents).
// EnableTransactions changes nothing: xpcd always reads the count.
//
// Disabled jobs (an override, or Disabled in the plist without an
// override) are not launched; lookups of their names fail with
// bootstrap.ReasonNotFound (as launchd's do), the description saying the
// job is disabled; queued clients are let go. An instance running when the
// job is disabled finishes its life; KeepAlive does not restart it.
//
// A service's stdout and stderr go to StandardOutPath/StandardErrorPath
// (appended; opened, and created 0644, as the job's user: ident.go), or else into
// xpcd's log, one entry per line tagged with label and pid, through a FIFO
// in RunDir/output that the child holds open read-write: its writes never
// fail with EPIPE while xpcd restarts, and the next xpcd reopens the FIFO.
//
// # Adoption
//
// processes.json records each instance: domain, label, pid, the start time
// from /proc/PID/stat (field 22), launch reason, definition fingerprint,
// executable identity, output FIFO. A new xpcd opens a pidfd for each
// record whose pid still has that start time, and shows the job running
// ("adopted"). The service, whose check-in channel ended, connects to the
// bootstrap socket and sends {"op":"adopt","label":L}; if the kernel says
// the caller's pid is the recorded one (and both pidfds say it lives), the
// connection becomes its check-in channel and it checks its names in
// again. Exit status of an adopted process is known only if xpcd is its
// parent; otherwise it is "unknown". An adopted instance whose definition
// changed meanwhile is upgraded once it reports it is clean.
//
// A record is written after the fork, so xpcd may die before it, or fail
// to write it (a full disk). Every process xpcd starts therefore carries,
// from before the fork, XPCD_INSTANCE=ID:NONCE:FINGERPRINT:REASON:DOMAIN:LABEL
// in its environment (marker.go): ID is a hash of the state directory (one
// instance never takes another's processes), NONCE names the launch. At
// start, before the loop runs, xpcd scans /proc/*/environ for its ID
// (among processes it may read: a --user xpcd sees its own uid's, all it
// can start) and keeps those that lead their process group but not their
// session, as what it starts does. Of one launch only the oldest counts
// (the rest are descendants); a launch already adopted from its record is
// skipped. Each other process, if its real uid is the one its job runs as
// (else it is left alone: xpcd cannot have started it), is adopted like a
// record (pidfd opened, then start time and marker checked again) when its
// job is loaded and has no instance; it is stopped (SIGTERM, SIGKILL after
// the job's ExitTimeOut or 20 s) when the job is not loaded any more or
// already has an instance. A process of a domain the instance does not
// serve yet is left alone. Adoption happens before jobs start at load, so
// no second instance is launched beside an adoptable process. Records
// carry the marker too, checked again when they are adopted. The marker is
// what the kernel shows of the initial environment: a process that
// rewrites that memory, or makes itself a session leader, is not found
// this way (its record, if written, still is).
//
// # Requests
//
// Every request is a dictionary with "op" and wants a reply, except a
// pipelined lookup: sent as a one-way message, it is answered only on
// failure, by a refused frame written into its socket (refuse.go). Errors are
// error objects with XPCErrorDescription, "kind" ("invalid") and "reason":
// bootstrap's (not-found, denied, wrong-domain, not-declared, bad-request)
// or this package's (Reason* constants: bad-plist, exists, name-taken,
// draining, not-running, disabled, busy, shutting-down, launch-failed,
// io-error, read-only-state). A TARGET is DOMAIN or DOMAIN/LABEL (system, user/UID, gui/UID).
// A missing "domain" means the caller's own user domain (a --user
// instance's only domain).
//
//	lookup         {name, domain?, socket: FD}             -> {} (as a one-way message: nothing, or a refused frame on socket)
//	adopt          {label}                                 -> {} (the connection becomes the check-in channel)
//	list           {domain?}                               -> {jobs: [JOB], errors: [LOADERR]}
//	print          {target: DOMAIN/LABEL}                  -> JOB
//	print          {target: DOMAIN}                        -> {domain, jobs: [JOB], errors: [LOADERR], overrides: {LABEL: disabled}, state_read_only?, state_read_only_why?}
//	print-disabled {domain?}                               -> {domain, overrides: {LABEL: disabled}, stale: [LABEL]}
//	enable         {target: DOMAIN/LABEL}                  -> {status: "enabled", loaded}
//	disable        {target: DOMAIN/LABEL}                  -> {status: "disabled", loaded}
//	kickstart      {target: DOMAIN/LABEL, kill?}           -> {status: "started"|"already running"|"restarting", pid}
//	kill           {target: DOMAIN/LABEL, signal? (15)}    -> {status: "signaled", pid}
//	bootstrap      {domain?, path}                         -> {status: "loaded"|"already loaded"|"upgraded"|"upgrade pending", label}
//	bootout        {target: DOMAIN/LABEL, wait?}           -> {status: "not loaded"|"unloaded"|"stopping"}
//	blame          {target: DOMAIN/LABEL}                  -> {why, state}
//	procinfo       {pid}                                   -> {pid, domain, label, launch_reason, requester_pid?, since, adopted}
//	remove-disabled {domain?}                              -> {removed: [LABEL]}
//	watch          {target?}                               -> {}, then one-way {event: JOB} messages
//
// enable and disable write the override before it applies and before they
// reply; it applies to the job then and whenever it is loaded again. A
// write that fails fails the request with io-error (the description names
// the file and the cause) and changes nothing: overrides are committed
// only once on disk, one write at a time for all requests waiting
// (overrides.go). When the state is read-only (its directory cannot be
// written, or a file is of a newer version) enable, disable and
// remove-disabled are refused with read-only-state, and print (of a
// domain, of a job) has state_read_only and state_read_only_why. "stale" overrides are for
// labels not loaded, or whose plist is gone; remove-disabled deletes them.
// bootstrap compares the plist with the loaded job by Fingerprint: the same
// settings are "already loaded" from any path; other settings replace the
// job's definition at once if it does not run, or once the running
// instance has drained; bootstrap of a job being booted out fails with
// draining. bad-plist errors carry "errors": [LOADERR]. bootout removes
// the job's names at once and the job when its instance has exited; with
// wait, the reply comes then. watch sends the current JOB of every
// matching job the caller may read, then one per change; a booted-out job's
// last event has state "unloaded"; a watcher more than 4096 events behind
// gets {overflow: true} and no more.
//
// LOADERR is {domain, file, key?, reason, error}. JOB is described at
// jobDict (render.go): label, domain, state, since, pid, adopted, runs,
// last_exit, last_exit_status, last_exit_signal, last_exit_at,
// stop_reason, launch_reason, requester_pid, connections, queued,
// transactions, checked_in, program, plist_path, throttled_until,
// mach_services, keep_alive, run_at_load, idle_exit_timeout_s,
// start_interval_s, next_start, watch_paths, queue_directories, disabled,
// upgrade_pending, error, warnings, state_read_only, state_read_only_why.
// runs and last_exit* are kept across restarts of xpcd (processes.json).
//
// On the check-in channel (descriptor 3, XPCD_CHECKIN_FD=3,
// XPC_SERVICE_NAME=label), as docs/XPCD.md says: checkin {name} -> {} or
// not-declared (the description names the job and its plist); xpcd sends
// the reply before the queued clients' {"op":"connect","name","socket"}
// messages; transactions {count} one-way; {"op":"terminate"} one-way.
package xpcd
