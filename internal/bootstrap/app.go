package bootstrap

// Registration of an application bundle's main app, agents and daemons,
// and approval of daemons (docs/APPS.md, "Registering agents and daemons"
// and "Approval"). Requests name a service by KeyPath (the bundle's
// directory, absolute), KeyAppKind and, for an agent or a daemon,
// KeyAppPlist (the plist's file name in Library/LaunchAgents or
// Library/LaunchDaemons). xpcd reads the bundle with the requester's
// rights.
const (
	// OpAppRegister registers the service: {"status": S,
	// "label", "domain", "approval_id"?}. Registering again (the same
	// bundle identity from any path) updates the registration.
	OpAppRegister = "app-register"
	// OpAppUnregister unregisters it and answers once its job has
	// stopped and is unloaded ({"status": AppStatusNotRegistered}).
	OpAppUnregister = "app-unregister"
	// OpAppStatus answers {"status": S}: AppStatusNotRegistered,
	// AppStatusEnabled, AppStatusRequiresApproval or AppStatusNotFound.
	OpAppStatus = "app-status"
	// OpAppWatch streams the service's status: the reply, then one
	// {"status": S} message now and at every change, until the
	// connection ends ({"overflow": true} for a watcher that fell behind).
	OpAppWatch = "app-watch"
	// OpAppList answers KeyRegistrations: the registrations the caller
	// may see (root: all; others: their own), each with KeyStale. With
	// KeyStale true in the request, only the stale ones.
	OpAppList = "app-list"
	// OpAppRepair removes the caller's stale registrations (root: every
	// user's) and answers KeyRemoved, the registrations removed.
	OpAppRepair = "app-repair"
	// OpApprovalList answers KeyApprovals: daemons registered by users
	// other than root (an administrator sees all, others their own).
	OpApprovalList = "approval-list"
	// OpApprove approves the daemon KeyApprovalID; only an administrator
	// may (RuleApprovalAdmin).
	OpApprove = "approval-approve"
	// OpDeny refuses it: its registration is removed and its job unloaded.
	OpDeny = "approval-deny"
)

// Keys of the requests and replies above.
const (
	KeyAppKind       = "app_kind"       // AppKind*
	KeyAppPlist      = "app_plist"      // an agent's or daemon's plist file name
	KeyApprovalID    = "approval_id"    // a daemon's approval identifier
	KeyRegistrations = "registrations"  // OpAppList's answer
	KeyApprovals     = "approvals"      // OpApprovalList's answer
	KeyAppIdentifier = "app_identifier" // a bundle's CFBundleIdentifier
	KeyAppTeam       = "app_team"       // a bundle's signing team, "" when unsigned
	KeyAppSigned     = "app_signed"     // the bundle is signed by a trusted key
	KeyAppBundle     = "app_bundle"     // the bundle's directory, as last registered
	KeyAppUID        = "app_uid"        // who registered
	KeyAppApproved   = "app_approved"   // a daemon's approval
	KeyAppProgram    = "app_program"    // a job's program
	// What a user's daemon runs, for the administrator who approves it
	// (OpApprovalList, OpAppList): its arguments (argv, the first
	// argv[0]), the user it runs as ("" for root) and its
	// EnvironmentVariables (a dictionary).
	KeyAppArguments   = "app_arguments"
	KeyAppUserName    = "app_user_name"
	KeyAppEnvironment = "app_environment"
)

// Kinds of service (KeyAppKind).
const (
	AppKindMain   = "main"
	AppKindAgent  = "agent"
	AppKindDaemon = "daemon"
)

// Statuses (KeyStatus of OpAppStatus, OpAppRegister and OpAppWatch).
const (
	AppStatusNotRegistered    = "not-registered"
	AppStatusEnabled          = "enabled"
	AppStatusRequiresApproval = "requires-approval"
	AppStatusNotFound         = "not-found"
)

// Reasons and rules of the refusals above.
const (
	// ReasonNotRegistered: OpAppUnregister of a service that is not
	// registered. (ReasonNotFound is a bundle, or a plist in it, that
	// does not exist.)
	ReasonNotRegistered = "not-registered"
	// RuleApprovalAdmin: only root or a member of one of xpcd's
	// administrator groups (xpcd --admin-groups) approves or denies a
	// daemon.
	RuleApprovalAdmin = "approval-admin"
	// RuleAppIdentity: a registration made by a signed bundle is changed
	// only by a bundle signed by the same team.
	RuleAppIdentity = "app-identity"
	// RuleAppOwner: a daemon's registration is changed only by the user
	// who made it, or root.
	RuleAppOwner = "app-owner"
	// RuleAppLimit: a user may have only so many registrations.
	RuleAppLimit = "app-limit"
)

// StateUnapproved is the KeyState of a daemon's job that waits for an
// administrator's approval: loaded, never started, its names refused with
// ReasonNotApproved.
const StateUnapproved = "unapproved"
