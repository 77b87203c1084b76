// Package appservice registers an application bundle's main app, agents
// and daemons with xpcd, in the spirit of the app services of macOS's
// Service Management framework: Register, Unregister, Status, and Watch,
// which xpcd pushes every change to.
//
// A bundle is a directory laid out as package bundle describes (its
// Info.plist names CFBundleIdentifier; agents are in
// Library/LaunchAgents, daemons in Library/LaunchDaemons, and name their
// program with BundleProgram). xpcd reads it with the rights of the
// process that calls Register, never its own. An application names its
// own bundle with package bundle:
//
//	exe, err := os.Executable()
//	root, err := bundle.Find(exe) // the bundle's directory, such as /opt/Example.app
//	agent := appservice.Agent(root, "org.example.agent.plist")
//
// The names follow SMAppService's: MainApp is .mainApp, Agent and Daemon
// are .agent(plistName:) and .daemon(plistName:) (NAME is the plist's
// file name, with .plist), and the statuses are .notRegistered, .enabled,
// .requiresApproval and .notFound. Unlike macOS, a daemon that needs
// approval is no error: Register returns nil and Status says
// RequiresApproval.
//
//   - MainApp: the application itself, started at the user's login as an
//     agent of the user's domain (label: CFBundleIdentifier).
//   - Agent: Library/LaunchAgents/NAME, into the user's domain.
//   - Daemon: Library/LaunchDaemons/NAME, into the system domain of the
//     system xpcd. A daemon registered by a user other than root is loaded
//     but not started until an administrator approves it (xpcctl approval
//     approve ID), or until the polkit authority xpcd may be configured
//     with says yes: its Status is RequiresApproval meanwhile. Its program
//     must be one only root can change (xpcd's program-owner rule), or
//     Register is refused before anything is done.
//
// # One registry
//
// Registrations are kept by the bundle's identity: its CFBundleIdentifier
// and, when its main executable is signed by a trusted key, its team.
// Registering a bundle that was moved or updated updates its registration
// and its job; it never duplicates it. An unsigned bundle cannot take over
// the registration of a signed one. A registration whose bundle was
// deleted is stale: its Status is NotFound, and xpcctl app repair removes
// it.
//
// # Statuses and errors
//
// Status is one of four values. NotRegistered: the bundle is there, the
// service is not registered. NotFound: the bundle, or the plist the
// service names in it, does not exist (registered or not: a stale
// registration is NotFound too). The errors keep the same distinction:
// ErrNotFound is a bundle or plist that is not there, ErrNotRegistered an
// Unregister of a service that was never registered (or was already
// unregistered). ErrRequiresApproval is xpc.ErrNotApproved: a client's
// connection to a daemon's name before its approval fails with it
// (errors.Is(err, appservice.ErrRequiresApproval)). A refusal by one of xpcd's security rules is ErrDenied,
// and the *Error's Rule names the rule (docs/SECURITY.md).
//
// Unregister returns once the job has stopped and is unloaded, so a
// Register right after it succeeds.
//
// # Choosing the xpcd
//
// MainApp and Agent talk to the xpcd that XPCD_ROOT selects, or else the
// user's own and then the system's, as the rest of the library does;
// Daemon to XPCD_ROOT's or the system's. WithSystem and WithUser choose
// the system instance or the user's own; WithBootstrapSocket names one by
// its socket. Registrations live in the xpcd that took them: a main app
// registered with the system instance (which serves every user's domain)
// is not known to the user's own xpcd --user, and the other way round.
package appservice
