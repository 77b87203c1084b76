package launchd

import (
	"syscall"
	"time"

	"github.com/goxpc/xpc"
)

// Defaults launchd applies, and goxpc with it, when a key is absent.
const (
	DefaultThrottleInterval = 10 * time.Second
	DefaultExitTimeOut      = 20 * time.Second
	DefaultProcessType      = ProcessTypeStandard
)

// The values of ProcessType, as launchd.plist(5) defines them. xpcd maps
// Background to nice 10 and the idle I/O class when it spawns the job, and
// runs the others as Standard (see the package documentation).
const (
	// ProcessTypeBackground: work the user did not ask for; lowest
	// priorities, may be throttled hard.
	ProcessTypeBackground = "Background"
	// ProcessTypeStandard: the default, the same as no ProcessType.
	ProcessTypeStandard = "Standard"
	// ProcessTypeAdaptive: priority follows what the job is doing for its
	// clients (XPC transactions).
	ProcessTypeAdaptive = "Adaptive"
	// ProcessTypeInteractive: work the user is waiting for; never throttled.
	ProcessTypeInteractive = "Interactive"
)

// Job is a job definition read from a launchd.plist: what to run, how, and
// when. Parse, Load and FromDictionary fill it and validate it; absent keys
// have launchd's defaults (see the package documentation for every key).
// A Job is a plain value: xpcd keeps the running state elsewhere.
type Job struct {
	// Path is the file the job came from, "" if it came from elsewhere.
	Path string
	// Warnings lists keys that were present but have no effect: unknown
	// keys, and launchd keys goxpc does not support. In key order.
	Warnings []Warning

	// Label names the job uniquely within its domain.
	Label string
	// Program is the absolute path of the executable. If empty, the
	// executable is ProgramArguments[0].
	Program string
	// BundleProgram is the executable's path relative to the root of the
	// application bundle the plist belongs to (in a bundle's
	// Library/LaunchAgents or Library/LaunchDaemons), such as
	// "Contents/MacOS/helper": it stays inside the bundle (no "..", not
	// absolute). It stands in for Program; package bundle resolves it and
	// sets Program to the absolute path. A job with BundleProgram and no
	// Program has no Executable and cannot run until that is done.
	BundleProgram string
	// ProgramArguments is the argument vector, argv[0] included. If nil,
	// the argument vector is [Program].
	ProgramArguments []string
	// Disabled: the job is loaded but not started until it is enabled.
	Disabled bool

	// UserName and GroupName are the user and group to run as; they apply
	// only when xpcd runs as root. Empty: xpcd's own user, and the user's
	// primary group.
	UserName, GroupName string
	// EnvironmentVariables are added to the job's environment.
	EnvironmentVariables map[string]string
	// WorkingDirectory is the job's working directory (absolute); "" is /.
	WorkingDirectory string
	// StandardInPath, StandardOutPath and StandardErrorPath are files for
	// the job's standard streams (absolute); "" is /dev/null.
	StandardInPath, StandardOutPath, StandardErrorPath string
	// Umask is the umask to set before exec (0 to 0777); nil leaves
	// xpcd's.
	Umask *int
	// Nice is the nice value to run at, -20 to 20 (Linux caps it at 19).
	Nice int
	// ProcessType is one of the ProcessType constants; Standard by default.
	ProcessType string
	// AbandonProcessGroup: when the job exits, leave the other processes
	// in its process group running instead of killing them.
	AbandonProcessGroup bool

	// MachServices are the XPC service names the job provides, by name.
	// xpcd launches the job on demand when a client looks one up.
	MachServices map[string]MachService

	// RunAtLoad: start the job once when it is loaded. See StartsAtLoad.
	RunAtLoad bool
	// KeepAlive says when to keep the job running (restart it).
	KeepAlive KeepAlive
	// StartInterval starts the job every interval (whole seconds); 0 never.
	StartInterval time.Duration
	// StartCalendarInterval starts the job at matching minutes, like cron.
	StartCalendarInterval []CalendarInterval
	// WatchPaths starts the job when one of these paths is modified.
	WatchPaths []string
	// QueueDirectories keeps the job running while one of these
	// directories is not empty.
	QueueDirectories []string

	// ThrottleInterval is the least time between two spawns of the job;
	// a job that exits sooner is restarted only when it has passed.
	ThrottleInterval time.Duration
	// ExitTimeOut is how long a job has between SIGTERM and SIGKILL when
	// it is stopped. 0 means forever, as in launchd (never SIGKILL).
	ExitTimeOut time.Duration
	// EnableTransactions: the job uses XPC transactions; xpcd may stop
	// it (SIGKILL) when it is clean, with no open transactions.
	EnableTransactions bool
	// EnablePressuredExit: xpcd may stop the clean job under memory
	// pressure, and restarts it if it ends while holding open
	// transactions. It implies EnableTransactions (TracksTransactions).
	EnablePressuredExit bool
	// IdleExitTimeout (goxpc extension, key XPCIdleExitTimeout) asks xpcd
	// to stop the job after it has been idle, with no connections and no
	// open transactions, for this long. 0: never.
	IdleExitTimeout time.Duration

	// LaunchEvents are the events xpcd launches the job for (if it does
	// not run) and delivers to its handler of the stream: by stream
	// (StreamNotify, StreamUEvent), the descriptors by name. A plist's
	// StreamIOKit is read as StreamUEvent; its activities
	// (StreamActivity) are in Activities.
	LaunchEvents map[string]map[string]*xpc.Dictionary
	// Activities are the activities the job declares (LaunchEvents →
	// com.apple.xpc.activity), by identifier: xpcd registers them when
	// the job is loaded.
	Activities map[string]xpc.ActivityCriteria
	// Notifications (goxpc extension, key Notifications) grants the
	// right to post notifications: by name, who may post it besides
	// root. xpcd honours it in the system domain only.
	Notifications map[string]NotificationGrant
}

// MachService is one entry of MachServices: the name's options.
type MachService struct {
	// ResetAtClose: when the job exits, connections made to this name end
	// (Invalid) instead of staying usable (Interrupted); clients must
	// connect anew.
	ResetAtClose bool
	// HideUntilCheckIn: lookups of the name fail until the job has
	// started and checked in, instead of launching it on demand.
	HideUntilCheckIn bool
	// Requirement (goxpc extension) says who may look the name up: xpcd
	// refuses a lookup by a process that does not meet it
	// (docs/SECURITY.md, "Lookup policy"). The zero Requirement lets
	// everyone who may see the domain look it up.
	Requirement xpc.Requirement
}

// IsZero reports whether the entry has no options: MachServices NAME true.
func (s MachService) IsZero() bool {
	return !s.ResetAtClose && !s.HideUntilCheckIn && s.Requirement.IsZero()
}

// KeepAlive is launchd's KeepAlive key: either a bool (Always) or a
// dictionary of conditions, any one of which keeps the job alive. The zero
// value is KeepAlive false: the job runs on demand only.
type KeepAlive struct {
	// Always is KeepAlive true: restart the job whenever it exits.
	Always bool
	// SuccessfulExit: if true, restart the job after an exit with status
	// 0; if false, after any other end (non-zero status or a signal). nil:
	// no condition. Setting it implies RunAtLoad.
	SuccessfulExit *bool
	// Crashed: if true, restart the job after it crashed (see
	// CrashSignal); if false, after any end that was not a crash. nil: no
	// condition.
	Crashed *bool
	// PathState: for each path, keep the job alive while the path exists
	// (true) or while it does not (false).
	PathState map[string]bool
	// OtherJobEnabled: for each label, keep the job alive while that job
	// is loaded (true) or while it is not (false).
	OtherJobEnabled map[string]bool
}

// IsZero reports whether k sets no condition at all.
func (k KeepAlive) IsZero() bool {
	return !k.Always && k.SuccessfulExit == nil && k.Crashed == nil &&
		len(k.PathState) == 0 && len(k.OtherJobEnabled) == 0
}

// ShouldRestart applies KeepAlive's exit conditions to an exit the job made
// on its own: exitedCleanly is an exit with status 0, crashed an end by a
// crash signal (CrashSignal). It reports whether to start the job again
// (after ThrottleInterval): when Always is set, when SuccessfulExit equals
// exitedCleanly, or when Crashed equals crashed. A job that xpcd stopped
// (bootout, disable, idle exit) is not restarted, whatever this says.
//
// PathState and OtherJobEnabled do not depend on how the job ended; they
// are checked by StateWantsRunning, and a job is restarted if either method
// says so.
func (k KeepAlive) ShouldRestart(exitedCleanly bool, crashed bool) bool {
	switch {
	case k.Always:
		return true
	case k.SuccessfulExit != nil && *k.SuccessfulExit == exitedCleanly:
		return true
	case k.Crashed != nil && *k.Crashed == crashed:
		return true
	}
	return false
}

// StateWantsRunning applies KeepAlive's state conditions: it reports whether
// one PathState path exists (or is missing) as wanted, or one
// OtherJobEnabled job is loaded (or is not) as wanted. xpcd checks it when
// the job is loaded, when it exits, and when a watched path or job changes,
// and starts the job if it is true. A nil function skips its conditions.
func (k KeepAlive) StateWantsRunning(pathExists, jobLoaded func(string) bool) bool {
	if pathExists != nil {
		for p, want := range k.PathState {
			if pathExists(p) == want {
				return true
			}
		}
	}
	if jobLoaded != nil {
		for l, want := range k.OtherJobEnabled {
			if jobLoaded(l) == want {
				return true
			}
		}
	}
	return false
}

// CrashSignal reports whether a job killed by sig crashed, in launchd's
// sense (for KeepAlive.Crashed): SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGBUS,
// SIGSEGV or SIGSYS. A job ended by any other signal, SIGKILL and SIGTERM
// included, did not crash.
func CrashSignal(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGILL, syscall.SIGTRAP, syscall.SIGABRT, syscall.SIGFPE,
		syscall.SIGBUS, syscall.SIGSEGV, syscall.SIGSYS:
		return true
	}
	return false
}

// Executable returns the path to execute: Program, or ProgramArguments[0]
// when there is no Program. It is "" for a job whose BundleProgram is not
// resolved (no Program): its ProgramArguments[0] may then be any string.
func (j *Job) Executable() string {
	if j.Program != "" {
		return j.Program
	}
	if j.BundleProgram != "" {
		return ""
	}
	if len(j.ProgramArguments) > 0 {
		return j.ProgramArguments[0]
	}
	return ""
}

// Argv returns a copy of the argument vector to execute Executable with:
// ProgramArguments, or [Program] when there are none. With both keys,
// launchd executes Program with ProgramArguments as its argv, argv[0]
// included, and so does goxpc.
func (j *Job) Argv() []string {
	if len(j.ProgramArguments) > 0 {
		return append([]string(nil), j.ProgramArguments...)
	}
	if j.Program != "" {
		return []string{j.Program}
	}
	return nil
}

// StartsAtLoad reports whether xpcd starts the job as soon as it is loaded
// (and enabled): RunAtLoad, KeepAlive true, or a KeepAlive SuccessfulExit
// condition, which launchd documents as implying RunAtLoad (an exit status
// needs a first run). KeepAlive's state conditions are checked separately
// (KeepAlive.StateWantsRunning).
func (j *Job) StartsAtLoad() bool {
	return j.RunAtLoad || j.KeepAlive.Always || j.KeepAlive.SuccessfulExit != nil
}

// TracksTransactions reports whether xpcd tracks the job's XPC transactions:
// EnableTransactions, or EnablePressuredExit, which implies it.
func (j *Job) TracksTransactions() bool {
	return j.EnableTransactions || j.EnablePressuredExit
}
