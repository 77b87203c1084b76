package xpcd

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"unsafe"

	"github.com/goxpc/xpc/internal/bootstrap"
	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc/launchd"
)

// A root xpcd touches nothing a user names with its own rights. Whatever a
// job or a request names (StandardInPath, StandardOutPath,
// StandardErrorPath, WatchPaths, QueueDirectories, PathState, a plist given
// to bootstrap) is opened, listed, watched or stat'ed on an OS thread that
// has taken the user's identity: effective uid and gid, and supplementary
// groups, set with the raw per-thread system calls (setresuid, setresgid,
// setgroups act on the calling thread only; Go's syscall.Setuid and the
// like act on every thread, which is not wanted here).
//
// The thread is locked to its goroutine and never unlocked: when the
// goroutine returns, the Go runtime ends the thread rather than reuse it,
// so no other goroutine ever runs with the user's identity, and the
// identity never needs to be given back (a failure to give it back would
// leave a half-privileged thread). The runtime creates new threads from a
// clean template thread, never by cloning a locked one, so the identity
// does not leak into other threads either.
//
// Why threads rather than a re-executed helper process: Go's fork/exec has
// no hook between fork and exec, so the job's own files must be opened
// before the fork; a helper would have to be xpcd's own binary, which
// xpctest and the tests do not have (they run xpcd inside another
// program). A thread costs tens of microseconds, paid once per launch or
// per path change, never on the message path.
//
// The effective uid decides file access (Linux's fsuid follows it) and
// whose quota an inotify instance counts against; the kernel clears the
// thread's effective capabilities (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
// CAP_FOWNER...) when its effective uid leaves 0, so the user's
// permissions apply as they would to the user's own process. Files the
// thread creates belong to the user and group: nothing is chowned.

// ident is who a job runs as, or who asked for something: the identity
// files are opened with.
type ident struct {
	uid, gid uint32
	groups   []uint32 // supplementary groups
	name     string   // the user name, "" if unknown
	home     string   // the home directory, "" if unknown
}

// privileged reports whether id is root's: nothing needs dropping.
func (id *ident) privileged() bool { return id == nil || id.uid == 0 }

// asUser runs fn with id's identity, on a thread of its own that ends
// with it; with no identity to take (nil, root's, or xpcd is not root) it
// runs fn as it is. It returns fn's error, or why the identity could not be
// taken (fn does not run then).
func asUser(id *ident, fn func() error) error {
	if id.privileged() || os.Geteuid() != 0 {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		// Locked and never unlocked: the thread dies with this
		// goroutine (see above).
		runtime.LockOSThread()
		if err := becomeUser(id); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// becomeUser gives the calling thread id's groups, effective gid and
// effective uid, in that order (groups and gid need the privilege the uid
// change gives up). The real and saved ids stay root's; the thread is
// never used again after the work it does as the user.
func becomeUser(id *ident) error {
	var gp unsafe.Pointer
	if len(id.groups) > 0 {
		gp = unsafe.Pointer(&id.groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(id.groups)), uintptr(gp), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	keep := ^uintptr(0) // -1: unchanged
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, keep, uintptr(id.gid), keep); e != 0 {
		return fmt.Errorf("setresgid: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keep, uintptr(id.uid), keep); e != 0 {
		return fmt.Errorf("setresuid: %w", e)
	}
	return nil
}

// ErrRefused is what every RuleError is: a request or a launch that a
// security rule refuses.
var ErrRefused = errors.New("refused by rule")

// RuleError is a refusal by one of the Rule* rules.
type RuleError struct {
	Rule   string // one of the bootstrap.Rule* constants
	Detail string // what broke it, for people
}

func (e *RuleError) Error() string { return e.Detail + " (rule " + e.Rule + ")" }

// Is makes errors.Is(err, ErrRefused) true.
func (e *RuleError) Is(target error) bool { return target == ErrRefused }

func refusedBy(rule, format string, args ...any) *RuleError {
	return &RuleError{Rule: rule, Detail: fmt.Sprintf(format, args...)}
}

// jobIdent works out whom a job runs as, by the rules of its domain: when
// xpcd is root, a user domain's jobs run as its user (UserName may only
// name them; GroupName only one of their groups), a system job as its
// UserName and GroupName (root by default). When xpcd is not root, every
// job runs as xpcd's own user, and a UserName naming another user is
// ignored with a warning (warn is told). A *RuleError says which rule a
// job breaks; other errors are failures to read the user database.
func jobIdent(root bool, domain string, owner uint32, def *launchd.Job, warn func(string)) (*ident, error) {
	if !root {
		u, _ := user.Current()
		if def.UserName != "" && (u == nil || u.Username != def.UserName) && warn != nil {
			warn("UserName ignored: xpcd does not run as root")
		}
		id, _ := identOf(u)
		return id, nil
	}
	userDomain := domain != DomainSystem && owner != 0
	var u *user.User
	var err error
	switch {
	case def.UserName != "":
		if u, err = user.Lookup(def.UserName); err != nil {
			return nil, refusedBy(bootstrap.RuleUnknownAccount, "UserName %s: %v", def.UserName, err)
		}
		if userDomain && u.Uid != strconv.FormatUint(uint64(owner), 10) {
			return nil, refusedBy(bootstrap.RuleDomainUser, "UserName %s is not the user of %s", def.UserName, domain)
		}
	case userDomain:
		if u, err = user.LookupId(strconv.FormatUint(uint64(owner), 10)); err != nil {
			return nil, refusedBy(bootstrap.RuleUnknownAccount, "the user of %s: %v", domain, err)
		}
	default:
		if u, err = user.Current(); err != nil {
			return nil, fmt.Errorf("xpcd's own user: %w", err)
		}
	}
	id, err := identOf(u)
	if err != nil {
		return nil, err
	}
	if def.GroupName != "" {
		g, err := user.LookupGroup(def.GroupName)
		if err != nil {
			return nil, refusedBy(bootstrap.RuleUnknownAccount, "GroupName %s: %v", def.GroupName, err)
		}
		gid, _ := strconv.ParseUint(g.Gid, 10, 32)
		if userDomain && uint32(gid) != id.gid && !slices.Contains(id.groups, uint32(gid)) {
			return nil, refusedBy(bootstrap.RuleDomainGroups, "GroupName %s: uid %d is not a member of that group", def.GroupName, owner)
		}
		id.gid = uint32(gid)
	}
	return id, nil
}

// identOf is a user account's identity: uid, primary gid and the groups
// the group database gives it.
func identOf(u *user.User) (*ident, error) {
	if u == nil {
		return nil, nil
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q", u.Username, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q", u.Username, u.Gid)
	}
	id := &ident{uid: uint32(uid), gid: uint32(gid), name: u.Username, home: u.HomeDir}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				id.groups = append(id.groups, uint32(n))
			}
		}
	}
	return id, nil
}

// callerIdent is the identity of uid: its account's groups if it has one
// (SO_PEERCRED gives no supplementary groups), otherwise just gid. With
// peerGID, gid is the one the kernel attested and stands; otherwise the
// account's primary group does.
func callerIdent(uid, gid uint32, peerGID bool) *ident {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		if id, err := identOf(u); err == nil && id != nil {
			if peerGID {
				id.gid = gid
			}
			return id
		}
	}
	return &ident{uid: uid, gid: gid}
}

// credential is id as os/exec takes it: nil when nothing changes (xpcd is
// not root).
func (id *ident) credential(root bool) *syscall.Credential {
	if !root || id == nil {
		return nil
	}
	return &syscall.Credential{Uid: id.uid, Gid: id.gid, Groups: slices.Clone(id.groups)}
}
