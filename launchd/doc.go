// Package launchd reads launchd.plist job definitions, the files that
// define xpcd's jobs as they define launchd's: it parses them (XML or
// binary property lists, through xpc.FromPlist), validates every key by
// launchd's rules, and describes the result as a typed Job with launchd's
// meanings and defaults, ready for xpcd to run.
//
//	job, err := launchd.Load("/etc/xpcd/LaunchDaemons/com.example.helper.plist")
//	if err != nil {
//		for _, e := range launchd.Errors(err) {
//			fmt.Println(e) // file: key: reason
//		}
//		return err
//	}
//	for _, w := range job.Warnings {
//		log.Printf("%s: %v", job.Path, w)
//	}
//
// # Keys
//
// The keys goxpc acts on, with their property-list types, their defaults
// when absent, and their meanings. Durations are whole seconds, 0 to
// 2147483647. Paths marked absolute are rejected when relative ("~" is not
// expanded).
//
//	key                     type                         default     Job field / meaning
//	Label                   string                       required    Label; unique in its domain
//	Program                 string, absolute path        -           Program; the executable
//	BundleProgram           string, relative path        -           BundleProgram; the executable, inside an application bundle
//	ProgramArguments        array of strings             [Program]   ProgramArguments; argv, argv[0] included
//	Disabled                bool                         false       Disabled; loaded but not started
//	UserName                string                       xpcd's      UserName; run as (xpcd as root only)
//	GroupName               string                       user's      GroupName; run as (xpcd as root only)
//	EnvironmentVariables    dictionary of strings        none        EnvironmentVariables; added to the environment
//	WorkingDirectory        string, absolute path        /           WorkingDirectory
//	StandardInPath          string, absolute path        /dev/null   StandardInPath
//	StandardOutPath         string, absolute path        /dev/null   StandardOutPath
//	StandardErrorPath       string, absolute path        /dev/null   StandardErrorPath
//	Umask                   integer, or string           xpcd's      Umask; 0-0777; an integer is decimal (18 is 022),
//	                                                                 a string is read as strtoul(3) base 0 ("022" is octal);
//	                                                                 see "Umask and ProcessType"
//	Nice                    integer                      0           Nice; -20 to 20
//	ProcessType             string                       Standard    ProcessType; Background, Standard, Adaptive, Interactive;
//	                                                                 see "Umask and ProcessType"
//	AbandonProcessGroup     bool                         false       AbandonProcessGroup; spare the job's process group at exit
//	MachServices            dictionary: name -> true     none        MachServices; names clients look up; launch on demand
//	                        or dictionary of options
//	  .ResetAtClose         bool                         false       clients' connections end (Invalid) when the job exits
//	  .HideUntilCheckIn     bool                         false       lookups fail until the job checks in
//	  .Requirement          string: a requirement        none        Requirement; who may look the name up (goxpc
//	                                                                 extension, see below)
//	RunAtLoad               bool                         false       RunAtLoad; start once at load
//	KeepAlive               bool, or dictionary          false       KeepAlive; when to keep the job running
//	  .SuccessfulExit       bool                         -           restart after exit status 0 (true) / after any other end (false)
//	  .Crashed              bool                         -           restart after a crash (true) / after any other end (false)
//	  .PathState            dictionary: path -> bool     -           keep running while the path exists (true) / is missing (false)
//	  .OtherJobEnabled      dictionary: label -> bool    -           keep running while that job is loaded (true) / is not (false)
//	StartInterval           integer seconds              0 (never)   StartInterval; start every interval
//	StartCalendarInterval   dictionary, or array of      none        StartCalendarInterval; start at matching minutes, like cron
//	                        dictionaries
//	  .Minute               integer                      any         0-59
//	  .Hour                 integer                      any         0-23
//	  .Day                  integer                      any         1-31
//	  .Weekday              integer                      any         0-7, 0 and 7 are Sunday
//	  .Month                integer                      any         1-12
//	WatchPaths              array of absolute paths      none        WatchPaths; start when one is modified
//	QueueDirectories        array of absolute paths      none        QueueDirectories; keep running while one is not empty
//	ThrottleInterval        integer seconds              10          ThrottleInterval; least time between spawns
//	ExitTimeOut             integer seconds              20          ExitTimeOut; SIGTERM to SIGKILL; 0 is forever
//	EnableTransactions      bool                         false       EnableTransactions; may be stopped when clean
//	EnablePressuredExit     bool                         false       EnablePressuredExit; may be stopped under memory pressure;
//	                                                                 implies EnableTransactions
//	XPCIdleExitTimeout      integer seconds              0 (never)   IdleExitTimeout; goxpc extension, see below
//
// # Umask and ProcessType
//
// xpcd starts a job with a Umask through /bin/sh, which sets the umask and
// replaces itself with the program (same pid): Go cannot set a child's
// umask alone. The program's argv[0] is then its path, even where
// ProgramArguments[0] says otherwise.
//
// ProcessType Background runs the job at nice 10 (or at its Nice, if it
// sets one) and in the idle I/O class (ioprio_set(2)), which gets the disk
// only when nothing else wants it. Standard, Adaptive and Interactive run
// it at its Nice in the normal I/O class: Linux offers an unprivileged job
// nothing above normal, and launchd's Adaptive boost while a job serves
// requests is not done (Adaptive runs as Standard). Both are applied just
// after the process starts.
//
// # Extensions
//
// XPCIdleExitTimeout is goxpc's own key. launchd leaves idle exit to the
// service (xpc_main's services exit when the system asks them to); goxpc
// lets the job say it: after the job has had no connections and no open
// transactions for this many seconds, xpcd stops it (SIGTERM, then SIGKILL
// after ExitTimeOut), and the next lookup of one of its names launches it
// again. 0, or no key, means never. launchd ignores keys it does not know,
// so a plist using it still loads on macOS.
//
// MachServices → NAME → Requirement is goxpc's own key too: a requirement
// in the language of xpc.ParseRequirement ("uid 0", "team ABCDE12345 and
// identifier org.example.app", ...) that a process must meet to look the
// name up; xpcd refuses the lookup of anyone else itself, before the service
// sees them (docs/SECURITY.md, "Lookup policy"). A string that does not
// parse is an error naming the column. launchd has no such key (on macOS the
// service checks its clients itself).
//
// # Differences from launchd
//
// goxpc is stricter than launchd where launchd's leniency hides mistakes:
//   - Keys are case-sensitive. A key that differs from a known one only in
//     case is reported (Warning, or in the ErrMissingKey reason) with the
//     right spelling.
//   - The executable must be an absolute path: Program, or
//     ProgramArguments[0] when there is no Program. launchd would search
//     PATH; xpcd's PATH is not the user's, so goxpc refuses to guess. The
//     exception is BundleProgram, a path relative to the root of the
//     application bundle the plist belongs to, which stays inside it (no
//     "..", RelativePathProblem) and which package bundle resolves to
//     Program; with it, ProgramArguments[0] may be any string.
//   - StandardInPath, StandardOutPath, StandardErrorPath, WorkingDirectory,
//     WatchPaths, QueueDirectories and KeepAlive.PathState keys must be
//     absolute paths.
//   - MachServices names are 1 to 127 bytes of ASCII letters, digits, '.',
//     '_' and '-' (reverse-DNS, as XPC names are). An entry whose value is
//     false is an error: launchd.plist(5) defines true and a dictionary of
//     options, and false would read as "disabled" when it is not; remove
//     the entry instead.
//   - A StartCalendarInterval that can never fire (Day 31 of Month 4, Day
//     30 of Month 2, with no Weekday) is an error.
//   - Labels are at most 255 bytes, hold no '/', white space or control
//     characters, and are not "." or "..".
//
// # Validation, errors and warnings
//
// Parse reports every problem at once, not only the first: the error is
// one *Error, or errors.Join of several (Errors lists them). Each names the
// file, the key (a dotted path such as StartCalendarInterval[1].Hour) and
// the reason, and wraps one of the kinds ErrBadFile, ErrNotJob,
// ErrMissingKey, ErrBadType and ErrValueNotAllowed, for errors.Is:
//
//	/etc/xpcd/LaunchDaemons/com.example.foo.plist: KeepAlive.SuccessfulExit: want bool, have string
//
// Any error means no Job: nothing loads half-validated. A Disabled job is
// valid; being disabled is a state, not a fault.
//
// Keys that have no effect are not errors, but they are not silently
// dropped either: each gets a Warning in Job.Warnings. These are unknown
// keys ("unknown key: ignored", with a suggestion when the key looks like a
// misspelled known one), keys launchd supports and goxpc does not yet
// ("supported by launchd but not by goxpc: ignored": LimitLoadToHosts,
// LimitLoadFromHosts, LimitLoadToSessionType, LimitLoadToHardware,
// LimitLoadFromHardware, inetdCompatibility, Sockets,
// SoftResourceLimits, HardResourceLimits, LowPriorityIO,
// LowPriorityBackgroundIO, MaterializeDatalessFiles,
// AssociatedBundleIdentifiers, LaunchOnlyOnce,
// SessionCreate, InitGroups, RootDirectory, EnableGlobbing, Debug,
// WaitForDebugger, StartOnMount, TimeOut, JetsamProperties, LegacyTimers,
// POSIXSpawnType, the launch constraints; the Mach-only MachServices
// options TaskSpecialPort, HostSpecialPort, ExceptionServer,
// DrainMessagesOnCrash; KeepAlive.AfterInitialDemand), keys launchd itself
// deprecated (OnDemand, ServiceIPC, HopefullyExitsFirst,
// HopefullyExitsLast, KeepAlive.NetworkState), and values that are valid
// but probably not meant (ExitTimeOut 0, StartInterval 0).
//
// # Restarting: KeepAlive and friends
//
// KeepAlive true restarts the job whenever it exits. The dictionary form is
// a set of conditions, any one of which keeps the job alive:
// KeepAlive.ShouldRestart applies SuccessfulExit and Crashed to an exit
// (CrashSignal says which signals are crashes), and
// KeepAlive.StateWantsRunning applies PathState and OtherJobEnabled to the
// present state. Job.StartsAtLoad tells whether a job starts when it is
// loaded: RunAtLoad, KeepAlive true, or a SuccessfulExit condition, which
// launchd documents as implying RunAtLoad. Restarts are spaced by
// ThrottleInterval.
//
// CalendarInterval.Next computes when a StartCalendarInterval entry fires
// next, with cron's rules (a Day and a Weekday both set match if either
// does).
//
// # Comparing jobs
//
// ToDictionary gives a job's canonical form: sorted keys, defaults written
// out, ignored keys left out. Job.Equal compares canonical forms, and
// Job.Fingerprint digests one, so xpcd can tell whether a plist
// bootstrapped again changed anything it acts on, whatever the file's
// format or key order. Job.Validate checks a Job built in code by the same
// rules as Parse.
package launchd
