// Package bundle reads application bundles: a directory holding an
// application's main executable, its Info.plist, the XPC services only it
// may use, and the launchd jobs (agents and daemons) it can register.
//
// # Layouts
//
// A bundle is a directory of any name (NAME.app by convention) in one of
// two layouts. Flat, the Linux layout:
//
//	ROOT/Info.plist
//	ROOT/EXECUTABLE                          (CFBundleExecutable; may be in a subdirectory: bin/app)
//	ROOT/XPCServices/NAME.xpc/Info.plist
//	ROOT/XPCServices/NAME.xpc/EXECUTABLE
//	ROOT/Library/LaunchAgents/*.plist
//	ROOT/Library/LaunchDaemons/*.plist
//
// Contents, the macOS layout, so that ported applications keep their tree:
//
//	ROOT/Contents/Info.plist
//	ROOT/Contents/MacOS/EXECUTABLE
//	ROOT/Contents/XPCServices/NAME.xpc/Contents/Info.plist
//	ROOT/Contents/XPCServices/NAME.xpc/Contents/MacOS/EXECUTABLE
//	ROOT/Contents/Library/LaunchAgents/*.plist
//	ROOT/Contents/Library/LaunchDaemons/*.plist
//
// A bundle with both ROOT/Info.plist and ROOT/Contents/Info.plist is
// refused: which one is meant? Services follow the layout of their
// application. A directory named Contents is never a bundle's root: given
// one, Read refuses it and names the bundle it is the inside of.
//
// # Info.plist
//
// An Info.plist is a property list (XML, binary or text, as xpc.FromPlist
// reads them) whose root is a dictionary, of at most MaxInfoPlistSize
// bytes. Read takes these keys and ignores the others:
//
//   - CFBundleIdentifier (string, required): the bundle's identity, in
//     reverse-DNS form (CheckIdentifier: ASCII letters, digits, '.', '_',
//     '-', at most 127 bytes, no empty part between dots). A service's identifier is the name its clients
//     look up; it must differ from the application's and from the other
//     services'.
//   - CFBundleExecutable (string, required): the executable's path,
//     relative to ROOT (Flat) or ROOT/Contents/MacOS (Contents), or to the
//     service's directory likewise. It must stay inside the bundle: not
//     absolute, no ".." element, clean (launchd.RelativePathProblem).
//   - CFBundleVersion (string, optional, at most 255 bytes).
//   - XPCService (dictionary, services only, optional):
//     ServiceType ("Application", the default: one instance per client
//     application; "User": one per user; "System": one per machine; any
//     other value is an error), EnvironmentVariables (dictionary of
//     strings, added to the service's environment), JoinExistingSession
//     (bool: an Application service with it is given its application's
//     login session, the session's variables, by xpcd), and IdleExitTimeout (integer
//     seconds, 0 to 2^31-1; a goxpc key: how long the service may be idle
//     before it is stopped; absent: the default of whoever runs it).
//
// # Job plists
//
// Library/LaunchAgents and Library/LaunchDaemons hold launchd job plists
// (package launchd) that name their executable with BundleProgram, a path
// relative to ROOT in both layouts (such as "Contents/MacOS/helper"),
// instead of Program. Read resolves it: Job.Program becomes the absolute
// path, which must be an executable of the bundle. A plist with Program,
// or without BundleProgram, is refused. Files not ending in ".plist" are
// ignored; labels must be unique within each directory.
//
// # Executables and links
//
// Every executable (the main one, each service's, each BundleProgram)
// must be a regular file that someone may execute, and not a symbolic
// link. Inside the bundle no symbolic link is followed at all: each
// element of a path is opened with O_NOFOLLOW, so a link where an
// Info.plist, a directory of the bundle or a job plist belongs is an error,
// and nothing is read from outside the bundle. A plist that is not a
// regular file (a FIFO, a device) is refused before it is read, without
// waiting on it. The root itself is opened as given, links included.
//
// # Limits
//
// At most MaxServices services, MaxLaunchPlists plists in each of
// LaunchAgents and LaunchDaemons, 1024 entries in each of those
// directories, MaxInfoPlistSize bytes per Info.plist and
// launchd.MaxFileSize per job plist, and MaxBundleBytes for all of them
// together: what Read holds in memory is bounded.
//
// # Which bundle a program belongs to
//
// Find (and FindFile, for a running program, through /proc/PID/exe; and
// FindBundle, which returns the bundle as read) returns the root of the
// bundle whose main executable, or one of whose
// services' executables, a file is. It looks at the directories above the
// file, nearest first and at most eight, never taking one named Contents,
// MacOS, XPCServices or NAME.xpc as a root, Reads each that has an
// Info.plist, and takes the first that claims the file: the same cleaned
// path and the same file (device and inode). A copy or a hard link of a
// bundle's executable elsewhere belongs to no bundle.
//
// # Identity
//
// A bundle's Identity is its CFBundleIdentifier and, when its main
// executable is signed (package codesign) by a trusted key for that
// identifier, the signed team. Bundle.Identify verifies the signature: an
// unsigned executable gives an unsigned Identity; a signature for another
// identifier, by an untrusted key, or that does not match the file is an
// error wrapping ErrBadBundle.
//
// # Errors
//
// Read, Find and Identify return *Error, which names the file or directory
// at fault, and wraps ErrNotBundle (no Info.plist where either layout
// wants one), ErrBadBundle (a rule is broken; the text says which), or
// the file system's error (fs.ErrNotExist, fs.ErrPermission).
//
// # Privileges
//
// The package needs no privilege: it opens only what it reads, with the
// rights of the calling thread. xpcd, which runs as root, calls it with
// the rights of the user who named the bundle.
package bundle
