package xpcd

// Administrative operations on the bootstrap connection (docs/XPCD.md,
// "Administration"), their keys, and the reasons xpcd gives beyond those
// of package bootstrap. xpcctl uses these names.
const (
	OpList           = "list"
	OpPrint          = "print"
	OpPrintDisabled  = "print-disabled"
	OpEnable         = "enable"
	OpDisable        = "disable"
	OpKickstart      = "kickstart"
	OpKill           = "kill"
	OpBootstrap      = "bootstrap"
	OpBootout        = "bootout"
	OpBlame          = "blame"
	OpProcinfo       = "procinfo"
	OpRemoveDisabled = "remove-disabled"
	OpWatch          = "watch"

	KeyTarget = "target"
	KeyPath   = "path"
	KeyWait   = "wait"
	KeySignal = "signal"
	KeyPID    = "pid"
	KeyStatus = "status"
	KeyJobs   = "jobs"
	KeyErrors = "errors"
	KeyEvent  = "event"
	KeyWhy    = "why"
	// KeyRule names the security rule (Rule*) a refusal is by.
	KeyRule = "rule"
	// KeyPlist carries the descriptor of the plist bootstrap loads,
	// opened by the requester.
	KeyPlist = "plist"
	// KeyStateReadOnly (true) and KeyStateReadOnlyWhy (a sentence) are in
	// print's replies, of a domain and of a job, when the state is
	// read-only (ReasonReadOnlyState).
	KeyStateReadOnly    = "state_read_only"
	KeyStateReadOnlyWhy = "state_read_only_why"
)

// Reasons (the "reason" key of error replies) besides bootstrap's.
const (
	// ReasonBadPlist: bootstrap was given a job definition that does not
	// load; the error object's "errors" lists file, key and reason.
	ReasonBadPlist = "bad-plist"
	// ReasonExists: a job with that label is already loaded from another
	// definition.
	ReasonExists = "exists"
	// ReasonNameTaken: another job of the domain provides the name.
	ReasonNameTaken = "name-taken"
	// ReasonDraining: the job was booted out and its instance has not
	// exited yet.
	ReasonDraining = "draining"
	// ReasonNotRunning: kill of a job that does not run.
	ReasonNotRunning = "not-running"
	// ReasonDisabled: kickstart of a disabled job. (Lookups of a disabled
	// job's names fail with bootstrap.ReasonNotFound, as launchd's do; the
	// description says the job is disabled.)
	ReasonDisabled = "disabled"
	// ReasonBusy: too many clients are already waiting for the service.
	ReasonBusy = "busy"
	// ReasonShuttingDown: xpcd is stopping.
	ReasonShuttingDown = "shutting-down"
	// ReasonLaunchFailed: kickstart could not start the job (the
	// description says why: no such executable, unknown UserName...).
	ReasonLaunchFailed = "launch-failed"
	// ReasonIO: the state could not be written (enable, disable,
	// remove-disabled); the description names the file and the cause
	// (no space left, read-only file system, ...). Nothing changed.
	ReasonIO = "io-error"
	// ReasonReadOnlyState: the state is read-only (its directory cannot be
	// written or made, or a file in it is of a newer version), so a
	// request that changes overrides (enable, disable, remove-disabled)
	// is refused before anything is done; the description says why the
	// state is read-only, as print does (KeyStateReadOnly).
	ReasonReadOnlyState = "read-only-state"
)

const (
	keyKind     = "kind"
	keyReason   = "reason"
	kindInvalid = "invalid"
)
