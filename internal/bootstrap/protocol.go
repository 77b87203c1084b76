package bootstrap

// Operations: the value of KeyOp in a message on the bootstrap connection
// or the check-in channel (docs/XPCD.md).
const (
	// OpLookup asks for a connection to a named service (KeyName,
	// KeyDomain optional), handing xpcd the service's end of a socket
	// pair (KeySocket). As a one-way message it is pipelined: a failure
	// comes back as a refused frame on that socket.
	OpLookup = "lookup"
	// OpCheckin, on the check-in channel: the service listens for
	// KeyName.
	OpCheckin = "checkin"
	// OpConnect, on the check-in channel: xpcd hands the service a
	// client for KeyName (KeySocket).
	OpConnect = "connect"
	// OpTransactions, on the check-in channel: the service's open
	// transaction count (KeyCount) and, from a library that counts them,
	// its listeners' open peer connections (KeyConnections).
	OpTransactions = "transactions"
	// OpTerminate, on the check-in channel: xpcd is about to stop the
	// service, for the reason KeyReason names (ReasonIdleExit, ...). Sent
	// as a request: the service tells its peers, then replies, and xpcd
	// sends SIGTERM once it has the answer (any answer) or has waited
	// long enough.
	OpTerminate = "terminate"
	// OpAdopt: a service that lost its check-in channel when xpcd
	// restarted checks in again for its job (KeyLabel).
	OpAdopt = "adopt"
)

// Administrative operations on the bootstrap connection (docs/XPCD.md,
// "Administration"); xpcctl sends them. Each request names a domain
// (KeyDomain) or a job (KeyTarget, DOMAIN/LABEL).
const (
	OpList           = "list"           // the jobs of a domain, or of every domain the caller may read
	OpPrint          = "print"          // a job's or a domain's state
	OpPrintDisabled  = "print-disabled" // a domain's enable/disable overrides
	OpEnable         = "enable"         // enable a job (persisted)
	OpDisable        = "disable"        // disable a job (persisted)
	OpKickstart      = "kickstart"      // start a job now (KeyKill: restart it if it runs)
	OpKill           = "kill"           // send a job's process a signal (KeySignal)
	OpBootstrap      = "bootstrap"      // load a job plist (KeyPath, KeyPlist) into a domain
	OpBootout        = "bootout"        // unload a job (KeyWait: reply once it has exited)
	OpBlame          = "blame"          // why a job runs, or why it does not (KeyWhy)
	OpProcinfo       = "procinfo"       // which job a process (KeyPID) xpcd launched belongs to
	OpRemoveDisabled = "remove-disabled"
	OpWatch          = "watch" // stream a domain's or a job's changes (KeyEvent)
	// OpExitReason asks why the process KeyPID, an instance of the service
	// KeyName, went away; the answer has KeyReason (ReasonExited, ...),
	// KeyExitStatus or KeySignal, and KeyDescription. The library asks it
	// when a service connection loses its service unannounced.
	OpExitReason = "exit-reason"
)

// Keys of requests.
const (
	KeyOp     = "op"
	KeyName   = "name"   // a service name
	KeyDomain = "domain" // a domain: "system", "user/UID", "gui/UID"
	KeySocket = "socket" // a descriptor: the service's end of a client's socket pair
	KeyLabel  = "label"  // a job's label
	KeyCount  = "count"  // OpTransactions' count
	KeyTarget = "target" // DOMAIN or DOMAIN/LABEL
	KeyPath   = "path"   // the path of the plist OpBootstrap loads
	// KeyPlist carries the descriptor of the plist OpBootstrap loads,
	// opened by the requester.
	KeyPlist  = "plist"
	KeyWait   = "wait"   // OpBootout: reply once the job has exited
	KeyKill   = "kill"   // OpKickstart: stop a running instance first
	KeySignal = "signal" // OpKill's signal number (default SIGTERM)
	KeyPID    = "pid"    // OpProcinfo's process; in replies, a job's process
	// KeyConnections: OpTransactions' count of open peer connections.
	KeyConnections = "connections"
)

// Keys of replies and of the messages OpWatch sends.
const (
	KeyStatus    = "status"    // what an administrative request did ("loaded", "started", ...)
	KeyJobs      = "jobs"      // jobs, each a dictionary with the job keys below
	KeyErrors    = "errors"    // plists that did not load, each a dictionary with the load error keys below
	KeyWhy       = "why"       // OpBlame's answer
	KeyEvent     = "event"     // an OpWatch message: a job's dictionary
	KeyOverflow  = "overflow"  // an OpWatch message (true): the watcher fell behind and is dropped
	KeyOverrides = "overrides" // a domain's overrides: label -> disabled
	KeyStale     = "stale"     // overrides whose job is not loaded or whose plist is gone
	KeyRemoved   = "removed"   // the overrides OpRemoveDisabled removed
	KeyLoaded    = "loaded"    // OpEnable, OpDisable: whether the job is loaded
	// KeyWarnings: the plist keys that have no effect ("KEY: why"), in
	// OpBootstrap's reply and a job's print.
	KeyWarnings = "warnings"
	// KeyStateReadOnly (true) and KeyStateReadOnlyWhy (a sentence) are in
	// print's replies, of a domain and of a job, when the state is
	// read-only (ReasonReadOnlyState).
	KeyStateReadOnly    = "state_read_only"
	KeyStateReadOnlyWhy = "state_read_only_why"
)

// Keys of a job's dictionary (in KeyJobs, KeyEvent, OpPrint's and
// OpProcinfo's replies) that clients read, besides KeyDomain, KeyLabel and
// KeyPID. OpPrint's dictionary has more, for people (docs/XPCD.md).
const (
	KeyState        = "state"         // "waiting", "spawning", "running", "exiting", "throttled", "disabled", "refused", "unloaded"
	KeyRuns         = "runs"          // how many times the job was launched
	KeyLastExit     = "last_exit"     // how its last process ended, for people
	KeyLaunchReason = "launch_reason" // why its process was launched
)

// Keys of a load error (in KeyErrors), besides KeyDomain and KeyReason.
const (
	KeyFile  = "file"  // the plist
	KeyKey   = "key"   // the plist key at fault, if one is
	KeyError = "error" // the whole error, for people
)

// Keys of error replies, besides the description: every error xpcd
// replies has KeyKind KindInvalid and a reason (KeyReason, Reason*); a
// refusal by a security rule also names it (KeyRule, Rule*).
const (
	KeyKind   = "kind"
	KeyReason = "reason"
	KeyRule   = "rule"
	// KeyPeer: the identity a requirement was checked against
	// (ReasonRequirementFailed).
	KeyPeer = "peer"
	// KeyExitStatus: how a service exited (ReasonExited).
	KeyExitStatus = "exit_status"
	// KeyDescription: OpExitReason's answer, for people.
	KeyDescription = "description"

	KindInvalid = "invalid"
)

// Reasons carried in error replies (KeyReason). The library maps those of
// lookups and check-ins to its error values; the others are for xpcctl.
const (
	ReasonNotFound    = "not-found"
	ReasonDenied      = "denied"
	ReasonWrongDomain = "wrong-domain"
	ReasonNotApproved = "not-approved"
	ReasonBadRequest  = "bad-request"
	ReasonNotDeclared = "not-declared"
	// ReasonTooManyConnections: xpcd turned a bootstrap connection away
	// as it connected, because the caller's uid has as many open as
	// xpcd allows one user (xpcd --max-connections-per-user). It comes
	// in a refused frame in place of xpcd's hello; the library maps it
	// to ErrDenied.
	ReasonTooManyConnections = "too-many-connections"
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
	// job's names fail with ReasonNotFound, as launchd's do; the
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
	// ReasonRequirementFailed: the caller failed the requirement of the
	// name it looked up (MachServices → NAME → Requirement), or a peer
	// failed a connection's requirement; KeyRule names the clause and
	// KeyPeer the identity checked.
	ReasonRequirementFailed = "requirement-failed"
)

// Reasons a service went away (ErrInterrupted) or is about to
// (ErrTerminationImminent), as xpcd tells a client that asks and as a
// service's termination announcement carries them. ReasonShuttingDown
// (xpcd is stopping, and stops its services) is one of them too.
const (
	ReasonExited         = "exited"          // exited by itself (KeyExitStatus)
	ReasonSignaled       = "signaled"        // ended by a signal xpcd did not send (KeySignal)
	ReasonIdleExit       = "idle-exit"       // stopped by xpcd when idle
	ReasonUpgrade        = "upgrade"         // stopped by xpcd for a new version
	ReasonKilled         = "killed"          // stopped by an administrator
	ReasonMemoryPressure = "memory-pressure" // stopped by xpcd to free memory
	// ReasonUnknown: xpcd does not know how it ended (it adopted the
	// process, so is not its parent).
	ReasonUnknown = "unknown"
)

// Rules a refusal names (KeyRule in error replies and in a refused job's
// dictionary; xpcd's RuleError.Rule). docs/SECURITY.md states them.
const (
	// RuleDomainUser: a user domain's jobs run as the domain's user;
	// UserName may only name that user.
	RuleDomainUser = "domain-user"
	// RuleDomainGroups: a user domain's job may only run with groups its
	// user belongs to (GroupName).
	RuleDomainGroups = "domain-groups"
	// RuleUnknownAccount: UserName or GroupName names no account.
	RuleUnknownAccount = "unknown-account"
	// RuleProgramOwner: a program and every directory above it belong to
	// root (or, in a user domain, the domain's user) and are writable by
	// nobody else.
	RuleProgramOwner = "program-owner"
	// RulePlistOwner: a job definition belongs to root or the domain's
	// user and is writable by nobody else.
	RulePlistOwner = "plist-owner"
	// RuleDomainAccess: a user domain is its user's and root's; only root
	// changes the system domain.
	RuleDomainAccess = "domain-access"
	// RuleDirOwner: a root xpcd's own directories (XPCD_ROOT, run, state,
	// LaunchAgents, LaunchDaemons) belong to root, are writable by nobody
	// else, and are not symbolic links.
	RuleDirOwner = "dir-owner"
	// RuleWatchLimit: a user domain may have only so many jobs watching
	// paths (xpcd's Config.MaxWatchesPerUser).
	RuleWatchLimit = "watch-limit"
	// RuleWatcherLimit: a user other than root may have only so many
	// OpWatch connections at once.
	RuleWatcherLimit = "watcher-limit"
	// RuleQueueLimit: a user other than root may have only so many clients
	// waiting for services at once (reason ReasonBusy).
	RuleQueueLimit = "queue-limit"
	// RuleCheckLimit: a user other than root may have only so many lookups
	// (and posts of granted notifications) being checked against
	// requirements at once, and all such users together only so many more
	// (reason ReasonBusy).
	RuleCheckLimit = "check-limit"
	// RuleJobLimit: a user may load only so many jobs into their domains
	// (counted by bucket: every uid without an account together).
	RuleJobLimit = "job-limit"
	// RuleOverrideLimit: a user's domains may have only so many
	// enable/disable overrides together (counted by bucket, as
	// RuleJobLimit).
	RuleOverrideLimit = "override-limit"
	// RuleSocketCreator: the socket a lookup carries (KeySocket) was made
	// by the process that sends the lookup, or, for a lookup an xpcd
	// passes on, by a process of the same uid as that xpcd, which runs the
	// same executable as the xpcd it asks.
	RuleSocketCreator = "socket-creator"
)
