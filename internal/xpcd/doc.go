// Package xpcd is goxpc's bootstrap server and service manager, launchd's
// job for XPC on Linux. cmd/xpcd runs it; xpctest runs one in-process for
// tests.
//
// This comment describes the code. What xpcd promises (instances and paths,
// domains, the bootstrap protocol and its limits, the check-in channel, jobs
// and their lifecycle, adoption, state, the administrative requests) is
// written once, in docs/XPCD.md, and the rules a root xpcd enforces for
// local users in docs/SECURITY.md; a change of behaviour changes them too.
//
//	d, err := xpcd.New(xpcd.Config{Paths: bootstrap.ForRoot(dir, true), User: true})
//	if err := d.Start(ctx); err != nil { ... } // the socket accepts from here on
//	...
//	d.Close(ctx) // services keep running, and are adopted by the next xpcd
//
// # Components
//
// Like containerd's daemon, xpcd is a list of components that start in
// order and close in reverse, each close bounded by the caller's context
// (daemon.go):
//
//	socket      binds the bootstrap socket first, so that a second xpcd on
//	            the same paths fails before it touches anything, or checks
//	            the one passed in (Config.Listener, listen.go), which it
//	            never removes
//	state       the state directory: overrides.json, processes.json and
//	            activities.json,
//	            written atomically (state.go, persist.go); read-only when the directory
//	            cannot be written or a file is of a newer version
//	jobs        reads the LaunchAgents/LaunchDaemons plists (jobstore.go)
//	logs        the jobs' logs (joblog.go): opens the journal's socket
//	            (journal.go); keeps no files when the state is read-only
//	criteria    the machine's sources for activities' criteria, unless
//	            Config.Criteria gives others (criteria.go)
//	supervisor  domains, jobs, instances: the state machine (supervisor.go,
//	            job.go, instance.go), processes (process.go, output.go); at start, before
//	            its loop runs, it adopts what a previous xpcd left running
//	            (adopt.go, marker.go); Config.InProcess, which only xpctest
//	            sets, runs chosen jobs on goroutines of this process instead
//	            (inprocess.go); the pid domain, an application bundle's XPC
//	            services seen by its processes, instances made on demand
//	            (apps_domain.go, apps_resolve.go, apps_print.go)
//	pressure    asks the PressureSource (monitor.go)
//	upgrades    notices replaced executables (monitor.go, exewatch.go)
//	notify      the notification registry (notify.go): names' states
//	            and registrations; each post is also offered to the
//	            jobs' launch events on the loop
//	bootstrap   accepts connections and answers requests (server.go,
//	            admin.go), starting last
//
// # The loop
//
// All of the supervisor's state (domains, jobs, instances, the client
// sockets queued for services, committed overrides, watchers, the per-user
// counts) belongs to one goroutine, its loop. Everything else hands the loop
// a closure: post runs it later, call runs it and waits (never from the
// loop). One loop rather than one goroutine per job, because lookups, name
// uniqueness, memory pressure and watch look across jobs; each step is
// short. Daemon.Alive hands it a no-op and waits, bounded by a context:
// cmd/xpcd pings systemd's watchdog only when that returns in time
// (alive.go).
//
// The loop never waits. What can block runs on a goroutine of its own and
// reports back with post:
//
//	a launch            one goroutine per launch: fork and exec, the job's
//	                    files opened as its user (job.go, process.go,
//	                    ident.go)
//	a running process   one goroutine per instance waits on its pidfd,
//	                    and one per application with instances
//	                    (apps_domain.go)
//	state writes        one writer goroutine per file (state.go);
//	                    overrides apply when their write reports back
//	                    (overrides.go)
//	timers              throttle, idle exit, SIGKILL after ExitTimeOut,
//	                    StartInterval, the WatchPaths debounce,
//	                    activities (one timer for all):
//	                    time.AfterFunc, which posts
//	the calendar        one goroutine waits on a timerfd for the earliest
//	                    StartCalendarInterval minute of all jobs
//	                    (walltimer.go)
//	criteria            an activity's criteria are read by a goroutine
//	                    per batch, which posts the answers; a goroutine
//	                    posts each change the criteria sources signal
//	                    (activity_run.go)
//	uevents             one internal/uevent listener goroutine while a
//	                    loaded job declares uevent descriptors; it matches
//	                    off the loop and posts the matches (events.go)
//	paths               one goroutine per job with WatchPaths,
//	                    QueueDirectories or a KeepAlive PathState reads its
//	                    inotify instance (pathwatch.go); queue directories
//	                    are listed on a goroutine per look (schedule.go)
//	monitors            a goroutine each, which waits for the kernel: a
//	                    PSI trigger, inotify (monitor.go, exewatch.go);
//	                    a ticker only for what cannot notify
//	output              a reader goroutine per output FIFO (output.go), which
//	                    writes the job's log and the journal (joblog.go,
//	                    journal.go); a crash record waits for the readers
//	                    on a goroutine of its own (crash.go)
//	a new user domain   the session that first uses it reads its plists,
//	                    then posts (admin.go, ensure)
//	plist directories   one inotify goroutine watches the domains'
//	                    directories; after a quiet spell a goroutine
//	                    looks at the plists of the jobs loaded from them
//	                    and posts what was deleted or put back
//	                    (plistgone.go); enable and disable of a label
//	                    not loaded read the directories on the session
//	                    (plistdir.go)
//	forwarded lookups   a goroutine per lookup passed from a --user instance
//	                    to the system instance (forward.go)
//	requirements        a pipelined lookup of a name with a requirement
//	                    checks it on a goroutine of its own, which posts
//	                    the lookup again (lookup.go); a lookup request
//	                    checks it on its session
//
// Sending. Each peer xpcd sends to on its own initiative (a service's
// check-in channel, an xpcctl watching) has a channel (channel.go): the loop
// calls its send, which sends at once, from the loop, only when nothing is
// queued and the socket takes the message without waiting (a lookup's
// connect message, a check-in's reply); otherwise the message is queued and
// the channel's outbox goroutine, started at its first queued message,
// sends it in order. Only that goroutine ever waits for a slow peer. A
// pipelined lookup that fails is answered from the loop too: refuse
// (refuse.go) writes one refused frame, without waiting, into the client's
// new socket, which nobody has read yet. No lock is held while anything
// blocks.
//
// # Sessions
//
// The bootstrap server (server.go) accepts on the socket made by
// xpc.ListenUnix and turns a connection away at accept when its user has
// too many (admit, buckets.go). Each connection is a session whose handler
// runs on the goroutine the connection delivers its messages on, one at a
// time. It reads "op": lookup (lookup.go), adopt (checkin.go) and watch
// (watch.go), checkin and
// transactions once the connection is an adopted service's channel, and the
// administrative requests (admin.go: each parses its request on the
// session, does its work on the loop through call, and answers; one that
// waits for an outcome, such as bootout with wait or enable waiting for its
// write, returns a function run on a goroutine of its own so that the
// session's other requests go on). A session answers its own requests;
// replies on a check-in channel and to a watch go through the channel. The
// check-in channel of a service xpcd launched is a connection it made at
// the launch, handled by checkinHandler (checkin.go) in the same way. The
// caller is the connection's Peer, the kernel's word, never anything a
// request says; a lookup's is the maker of the socket it carries, which
// must be the caller (lookup_client.go).
//
// # Where things are
//
//	daemon.go       Config, Daemon, the components and their order
//	supervisor.go   the loop, domains, shutdown
//	job.go          a job's state machine: want, throttle, after an exit,
//	                refusal
//	instance.go     an instance: spawn, exit, stop (terminate, then SIGTERM),
//	                idle exit, pressure, upgrade
//	exits.go        why instances ended: the ring of recent exits,
//	                exit-reason
//	load.go         loading and unloading a job's definition, its names
//	clients.go      clients queued for a service and handed over
//	checkin.go      the check-in channel, both sides; adopt
//	lookup.go       lookups: a session's request, the loop's answer, the
//	                domains searched, a name's requirement
//	lookup_client.go  whom a lookup is for (its socket's maker, rule
//	                socket-creator); requirement refusals
//	watch.go        watchers and what they are told
//	schedule.go     StartInterval, StartCalendarInterval, QueueDirectories
//	pathwatch.go    inotify for WatchPaths, QueueDirectories, PathState
//	process.go      the launcher and process interfaces (faked in tests),
//	                fork/exec
//	pidfd.go        pidfds, exit status, /proc stat
//	output.go       output FIFOs and their readers: priorities, panics,
//	                the last lines of stderr
//	joblog.go       a job's log file, rotation, print's last lines
//	journal.go      the journal's native protocol
//	crash.go        crash records
//	admin_log.go    OpLog: reading and following a job's log
//	adopt.go        taking over processes a previous xpcd started
//	marker.go       the XPCD_INSTANCE marker and the /proc scan
//	state.go        processes.json, overrides.json
//	persist.go      atomic writes, one writer per file
//	overrides.go    enable and disable, committed once on disk
//	jobstore.go     where plists come from, and loading them
//	plistdir.go     a domain's directories; labels of plists not loaded
//	plistgone.go    plists deleted from them: jobs forgotten, or
//	                reloaded when their plist is put back
//	ident.go        acting as a user; RuleError and the rules
//	pathtrust.go    who may change a path: program-owner, dir-owner;
//	                xpcd's own directories
//	buckets.go      what a uid counts under in the per-user limits
//	domain.go       domain and target names; who may read or change one
//	server.go       the bootstrap server, sessions, admission
//	admin.go        the administrative requests: the table, list, print,
//	                blame, procinfo
//	admin_jobs.go   kickstart, kill, bootstrap, bootout
//	admin_overrides.go  enable, disable, print-disabled, remove-disabled
//	render.go       JOB, LOADERR and blame's sentences
//	render_status.go  print's status keys: the definition, and the
//	                running process read from /proc off the loop
//	forward.go      lookups passed on to the system instance
//	refuse.go       the refused frame of a pipelined lookup
//	channel.go      sending to a peer without holding up the loop
//	monitor.go      memory pressure and replaced executables
//	activity.go     activities: the table, limits, declared and
//	                registered ones; activity_sched.go the schedule's
//	                arithmetic and the heap under the one timer;
//	                activity_run.go criteria reads, launches, delivery;
//	                activity_checkin.go, activity_admin.go,
//	                activity_state.go the channel, the requests,
//	                activities.json
//	events.go       launch events: descriptors, matching, the per-job
//	                queue; event_deliver.go handlers, acknowledgement,
//	                instances that end; event_render.go print and blame
//	criteria.go     the machine's criteria sources, as a component
//	notify.go       notifications: the registry (its own owner, beside
//	                the loop), coalesced delivery; notify_session.go
//	                the requests, whose a name is, grants
//	calendar.go     StartCalendarInterval; walltimer.go the one
//	                wall-clock timer under it; exewatch.go replaced
//	                executables, by inotify
//
// The protocol's words (ops, keys, reasons, rules) are in
// internal/bootstrap, shared with the library and xpcctl.
package xpcd
