package xpcd

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/codesign"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// Who a lookup is for. A lookup carries one end of a socket pair the
// client made (bootstrap.KeySocket); the service reads the identity of the
// pair's maker from it (SO_PEERCRED, SO_PEERPIDFD), whoever hands it over.
// So xpcd judges the lookup on that same identity, which it reads from the
// socket the same way, and accepts the socket only from its maker (rule
// socket-creator): a process holding an end someone else made cannot
// present it, and pass for them.
//
// The one exception is a lookup a --user instance passes on to the system
// instance with its client's socket (forward.go): the requester is then
// that xpcd, and the maker its client. It is accepted when the requester
// runs the very executable the receiving xpcd runs (the same file: device
// and inode, through /proc, checked against the requester's pidfd after)
// and the maker has the requester's uid. docs/SECURITY.md says why that
// is enough and what remains.
//
// Every lookup pays for this check, so it reads no more than it needs:
// the maker's credentials and a pidfd, which tells whether it is the
// requester, in four or five system calls. The maker's full identity
// (xpc.PeerOfSocket, which reads its executable too) is read only for a
// name with a requirement.

// maker is who made a lookup's socket, as the kernel recorded it.
type maker struct {
	pid int
	uid uint32
}

// lookupClient reads who made fd, the socket a lookup of name carries,
// and checks that the requester (the session's peer) may present it.
func (ss *session) lookupClient(name string, fd *xpc.FD) (maker, *opError) {
	req := ss.peer
	mk, same, alive, err := readMaker(fd.File(), ss.pidfdID, ss.s.pidfs)
	switch {
	case err != nil:
		return mk, badRequest("lookup of %s: the socket: %v", name, err)
	case mk.pid <= 0:
		// In a pid namespace xpcd does not see.
	case mk.pid == req.PID && (same || (!ss.s.pidfs && alive)):
		// (Its uid may differ from the connection's, if the process
		// changed its credentials between the two: the policy judges
		// the maker's, which the service sees.) It must still run the
		// program it ran when it connected: a process that made its
		// bootstrap connection and this socket, then executed a trusted
		// program, would otherwise hand a child its socket to talk as
		// that program.
		// (A pid reused since would read another program and refuse:
		// its process, the requester, has exited.)
		if now := exeOfPID(req.PID); ss.exe != (exeID{}) && now != (exeID{}) && now != ss.exe {
			return mk, creatorDenied(name, fmt.Sprintf("pid %d has executed another program since it connected to xpcd", mk.pid))
		}
		return mk, nil
	case mk.pid != req.PID && mk.uid == req.UID && alive && ss.s.runsOurExecutable(req):
		// An xpcd of the client's user passing its lookup on.
		return mk, nil
	}
	why := fmt.Sprintf("the socket was made by pid %d uid %d, not by the requester (pid %d uid %d)", mk.pid, mk.uid, req.PID, req.UID)
	if mk.pid == req.PID && !alive && !same {
		why = fmt.Sprintf("the process that made the socket (pid %d uid %d) has exited", mk.pid, mk.uid)
	}
	return mk, creatorDenied(name, why)
}

// readMaker reads who made the socket f (SO_PEERCRED) and, through a
// pidfd for it (SO_PEERPIDFD), whether it is the process whose pidfd
// identity is reqID (on pidfs: same) and whether it still runs (alive,
// not read when same).
func readMaker(f *os.File, reqID uint64, pidfs bool) (mk maker, same, alive bool, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return mk, false, false, err
	}
	cerr := rc.Control(func(fd uintptr) {
		var cred *unix.Ucred
		if cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err != nil {
			return
		}
		mk = maker{pid: int(cred.Pid), uid: cred.Uid}
		pidfd, perr := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
		if errors.Is(perr, unix.ENOPROTOOPT) && mk.pid > 0 {
			// Before Linux 6.5: by pid (docs/SECURITY.md).
			pidfd, perr = unix.PidfdOpen(mk.pid, 0)
		}
		if perr != nil {
			return // the maker is gone: neither same nor alive
		}
		defer unix.Close(pidfd)
		var st unix.Stat_t
		if same = pidfs && reqID != 0 && unix.Fstat(pidfd, &st) == nil && st.Ino == reqID; !same {
			alive = unix.PidfdSendSignal(pidfd, 0, nil, 0) == nil
		}
	})
	if cerr != nil {
		err = cerr
	}
	return mk, same, alive, err
}

// creatorDenied is the refusal of a lookup by rule socket-creator.
func creatorDenied(name, why string) *opError {
	re := refusedBy(bootstrap.RuleSocketCreator, "lookup of %s: %s", name, why)
	return ruleOpError(re, "%s", re.Detail)
}

// onPIDFS reports whether this system's pidfds are on pidfs (Linux 6.9
// and later), where a pidfd's inode identifies its process.
func onPIDFS() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var fs unix.Statfs_t
	return unix.Fstatfs(fd, &fs) == nil && fs.Type == unix.PID_FS_MAGIC
}

// pidfdID identifies the process p's pidfd refers to: its inode on pidfs
// (pidfs: onPIDFS), which no other process ever has while the system
// runs; 0 without pidfs, or if p has no pidfd.
func pidfdID(p *xpc.Peer, pidfs bool) uint64 {
	if !pidfs {
		return 0
	}
	f, err := p.PIDFD()
	if err != nil {
		return 0
	}
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return 0
	}
	return st.Ino
}

// exeID is an executable's file identity.
type exeID struct{ dev, ino uint64 }

// ownExecutable is the identity of the executable this process runs, the
// zero exeID if it cannot be read.
func ownExecutable() exeID {
	var st unix.Stat_t
	if unix.Stat("/proc/self/exe", &st) != nil {
		return exeID{}
	}
	return exeID{st.Dev, st.Ino}
}

// runsOurExecutable reports whether p runs the executable this xpcd runs:
// the same file (device and inode) as /proc/self/exe, read through
// /proc/PID/exe while p's pidfd shows it alive before and after, so the
// pid was p's all along.
func (s *server) runsOurExecutable(p *xpc.Peer) bool {
	return s.exe != (exeID{}) && exeOf(p) == s.exe
}

// exeOf is the identity of the executable p runs, read through
// /proc/PID/exe while p's pidfd shows it alive before and after, so the
// pid was p's all along; the zero exeID if it cannot be read.
func exeOf(p *xpc.Peer) exeID {
	if p.PID <= 0 || !p.Alive() {
		return exeID{}
	}
	if id := exeOfPID(p.PID); p.Alive() {
		return id
	}
	return exeID{}
}

// exeOfPID is the identity of the executable process pid runs, the zero
// exeID if it cannot be read. Without exeOf's pidfd checks it may read a
// process that got the pid after the one meant had exited: where a wrong
// answer only refuses (session.exe), that costs nothing.
func exeOfPID(pid int) exeID {
	var st unix.Stat_t
	if pid <= 0 || unix.Stat("/proc/"+strconv.Itoa(pid)+"/exe", &st) != nil {
		return exeID{}
	}
	return exeID{st.Dev, st.Ino}
}

// requirementFailed is the refusal of a lookup of name by a client that
// does not meet the name's requirement: reason requirement-failed, the
// failing clause as the rule, the identity checked as the peer.
func requirementFailed(name string, req xpc.Requirement, client *xpc.Peer, err error) *opError {
	clause, who, cause := failure(req, client, err)
	desc := fmt.Sprintf("%s may be looked up only by a process that meets %q: %s fails %q", name, req.String(), who, clause)
	if cause != nil {
		desc += ": " + cause.Error()
	}
	return &opError{reason: bootstrap.ReasonRequirementFailed, desc: desc,
		extra: xpc.Dict(bootstrap.KeyRule, clause, bootstrap.KeyPeer, who)}
}

// failure reads Requirement.Check's error: the clause that failed, the
// identity checked, and the cause, if any.
func failure(req xpc.Requirement, p *xpc.Peer, err error) (clause, who string, cause error) {
	var re *xpc.RequirementError
	if errors.As(err, &re) {
		return re.Clause, re.Peer, re.Err
	}
	if p != nil {
		who = p.String()
	}
	return req.String(), who, err
}

// errNoIdentity: a lookup of a name with a requirement had no client
// identity to check (only tests make such lookups).
var errNoIdentity = errors.New("no identity to check it against")

// keyRequirements is print's key of a job's names' requirements: name ->
// requirement, for the names that have one.
const keyRequirements = "requirements"

// nameRequirement is one of a job's names and its requirement.
type nameRequirement struct {
	name string
	req  xpc.Requirement
}

// requirementsOf lists j's names that have a requirement, in name order.
func requirementsOf(j *job) []nameRequirement {
	var out []nameRequirement
	for _, name := range sortedKeys(j.def.MachServices) {
		if r := j.def.MachServices[name].Requirement; !r.IsZero() {
			out = append(out, nameRequirement{name, r})
		}
	}
	return out
}

func requirementsDict(reqs []nameRequirement) *xpc.Dictionary {
	d := xpc.NewDictionary(len(reqs))
	for _, r := range reqs {
		d.Set(r.name, xpc.String(r.req.String()))
	}
	return d
}

// lookupBlame says, for blame, who may look the names up and whether
// caller would be refused.
func lookupBlame(reqs []nameRequirement, caller *xpc.Peer, trust *codesign.Verifier) string {
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "; a lookup of %s requires %q", r.name, r.req.String())
		if err := r.req.CheckWith(caller, trust); err != nil {
			clause, who, _ := failure(r.req, caller, err)
			fmt.Fprintf(&b, ": yours would be refused (%s fails %q)", who, clause)
		} else {
			b.WriteString(" (yours would pass)")
		}
	}
	return b.String()
}
