package xpcd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// Who a lookup is for. A lookup carries one end of a socket pair the
// client made (bootstrap.KeySocket); the service reads the identity of the
// pair's maker from it (SO_PEERCRED, SO_PEERPIDFD), whoever hands it over.
// So xpcd judges the lookup on that same identity, which it reads from the
// socket the same way (xpc.PeerOfSocket), and accepts the socket only from
// its maker (rule socket-creator): a process holding an end someone else
// made cannot present it, and pass for them.
//
// The one exception is a lookup a --user instance passes on to the system
// instance with its client's socket (forward.go): the requester is then
// that xpcd, and the maker its client. It is accepted when the requester
// runs the very executable the receiving xpcd runs (the same file: device
// and inode, through /proc, checked against the requester's pidfd after)
// and the maker has the requester's uid. docs/SECURITY.md says why that
// is enough and what remains.

// lookupClient reads who made fd, the socket a lookup of name carries,
// and checks that the requester (the session's peer) may present it. The
// caller owns the returned Peer (Close); on error there is none.
func (ss *session) lookupClient(name string, fd *xpc.FD) (*xpc.Peer, *opError) {
	client, err := xpc.PeerOfSocket(fd.File())
	switch {
	case errors.Is(err, unix.ESRCH):
		return nil, creatorDenied(name, "the process that made the socket has exited")
	case err != nil:
		return nil, badRequest("lookup of %s: the socket: %v", name, err)
	}
	req := ss.peer
	if client.PID > 0 && client.PID == req.PID && client.Alive() && sameProcess(client, ss.pidfdID) {
		// (Its uid may differ from the connection's, if the process
		// changed its credentials between the two: the policy judges
		// the maker's, which the service sees.)
		return client, nil
	}
	if client.PID > 0 && client.PID != req.PID && client.UID == req.UID && ss.s.runsOurExecutable(req) && client.Alive() {
		// An xpcd of the client's user passing its lookup on.
		return client, nil
	}
	oe := creatorDenied(name, fmt.Sprintf("the socket was made by %s, not by the requester (%s)", peerText(client), peerText(req)))
	client.Close()
	return nil, oe
}

// creatorDenied is the refusal of a lookup by rule socket-creator.
func creatorDenied(name, why string) *opError {
	re := refusedBy(bootstrap.RuleSocketCreator, "lookup of %s: %s", name, why)
	return ruleOpError(re, "%s", re.Detail)
}

func peerText(p *xpc.Peer) string {
	return fmt.Sprintf("pid %d uid %d", p.PID, p.UID)
}

// pidfdID identifies the process a pidfd refers to: its inode on pidfs
// (Linux 6.9 and later), which no other process ever has while the system
// runs; 0 where pidfds are not on pidfs, or p has none.
func pidfdID(p *xpc.Peer) uint64 {
	f, err := p.PIDFD()
	if err != nil {
		return 0
	}
	defer f.Close()
	var fs unix.Statfs_t
	var st unix.Stat_t
	if unix.Fstatfs(int(f.Fd()), &fs) != nil || fs.Type != unix.PID_FS_MAGIC || unix.Fstat(int(f.Fd()), &st) != nil {
		return 0
	}
	return st.Ino
}

// sameProcess reports whether client, of the requester's pid and alive,
// is the requester itself, whose pidfd's identity (pidfdID, taken when it
// connected) is requester. The pid alone could be a new process's if the
// requester had exited and its bootstrap connection been passed on; the
// pidfds tell them apart. Without pidfs (requester 0) the pid and the
// client being alive must do (docs/SECURITY.md).
func sameProcess(client *xpc.Peer, requester uint64) bool {
	return requester == 0 || pidfdID(client) == requester
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
	if s.exe == (exeID{}) || p.PID <= 0 || !p.Alive() {
		return false
	}
	var st unix.Stat_t
	if unix.Stat("/proc/"+strconv.Itoa(p.PID)+"/exe", &st) != nil {
		return false
	}
	return exeID{st.Dev, st.Ino} == s.exe && p.Alive()
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
func lookupBlame(reqs []nameRequirement, caller *xpc.Peer) string {
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "; a lookup of %s requires %q", r.name, r.req.String())
		if err := r.req.Check(caller); err != nil {
			clause, who, _ := failure(r.req, caller, err)
			fmt.Fprintf(&b, ": yours would be refused (%s fails %q)", who, clause)
		} else {
			b.WriteString(" (yours would pass)")
		}
	}
	return b.String()
}
