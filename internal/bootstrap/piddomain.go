package bootstrap

// The pid domain (issue 17): the XPC services of an application bundle,
// seen only by the processes started from that bundle.

// ReasonNotInBundle: the name looked up is an XPC service of an
// application bundle, and the process asking was not started from that
// bundle (Apple's error 147, "not in your bundle"). xpcd says it only
// for a name of a bundle it has seen for the caller's own uid; for any
// other the reason is ReasonNotFound.
const ReasonNotInBundle = "not-in-bundle"

// Rules of the pid domain.
const (
	// RuleBundleTrust: a bundle's XPC service of the System type runs
	// only in a root xpcd, and only from a bundle whose path nobody but
	// root can change: the service's executable and Info.plist, the
	// bundle's Info.plist, and every directory above them belong to root
	// and are writable by nobody else.
	RuleBundleTrust = "bundle-trust"
	// RuleAppInstanceLimit: a user may have only so many applications
	// with XPC service instances at once, and only so many such instances
	// (counted by bucket, as RuleJobLimit).
	RuleAppInstanceLimit = "app-instance-limit"
	// RulePIDDomainAccess: a process's pid domain may be printed by root
	// and by the process's own uid only.
	RulePIDDomainAccess = "pid-domain-access"
)

// Keys of print's answer for a pid domain (OpPrint, KeyTarget "pid/PID").
const (
	KeyBundle         = "bundle"          // the bundle's root directory, absent if none
	KeyBundleID       = "bundle_id"       // CFBundleIdentifier
	KeyBundleIdentity = "bundle_identity" // "ID" or "ID (team T)", from the signature
	KeyBundleSigned   = "bundle_signed"   // the main executable is signed for ID
	KeyBundleError    = "bundle_error"    // why the bundle or its signature could not be read
	KeyServices       = "services"        // [{"name","type","executable","domain","instance_pid"?}]
	KeyServiceType    = "type"            // Application, User, System
	KeyExecutable     = "executable"      // a path
	KeyJoinsSession   = "joins_session"   // true: an Application service given its application's session (JoinExistingSession)
	KeyInstances      = "instances"       // the jobs running for it (job dictionaries)
)
