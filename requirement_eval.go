package xpc

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/goxpc/xpc/codesign"
	"golang.org/x/sys/unix"
)

// verdict is what a requirement, or a part of it, says of a peer. A fact
// that could not be read makes its clause unknown, neither met nor unmet:
// "not" keeps it unknown, so that a peer whose executable cannot be read
// never passes "not exe /x"; only met passes.
type verdict uint8

const (
	met verdict = iota
	unmet
	unknown
)

// outcome is a verdict with, when not met, the smallest part of the
// requirement that is not, and the cause.
type outcome struct {
	v   verdict
	at  *reqNode
	err error
}

// eval evaluates n for the peer, reading facts as clauses need them: an
// "and" stops at an operand that is unmet, an "or" at one that is met.
func (f *peerFacts) eval(n *reqNode) outcome {
	switch n.op {
	case opNot:
		switch o := f.eval(n.kids[0]); o.v {
		case met:
			return outcome{v: unmet, at: n}
		case unmet:
			return outcome{v: met}
		default:
			return outcome{v: unknown, at: n, err: o.err}
		}
	case opAnd:
		// An unknown operand is reported only if none is unmet, which
		// makes the whole unmet whatever the unknown one is.
		first := outcome{v: met}
		for _, k := range n.kids {
			o := f.eval(k)
			if o.v == unmet {
				return o
			}
			if o.v == unknown && first.v == met {
				first = o
			}
		}
		return first
	case opOr:
		v := unmet
		var causes []error
		for _, k := range n.kids {
			o := f.eval(k)
			if o.v == met {
				return o
			}
			if o.v == unknown {
				v = unknown
			}
			causes = appendCause(causes, o.err)
		}
		return outcome{v: v, at: n, err: errors.Join(causes...)}
	}
	v, err := f.clause(n)
	if v == met {
		return outcome{v: met}
	}
	return outcome{v: v, at: n, err: err}
}

// appendCause appends err to causes unless it is nil or one of them says
// the same.
func appendCause(causes []error, err error) []error {
	if err == nil || slices.ContainsFunc(causes, func(c error) bool { return c.Error() == err.Error() }) {
		return causes
	}
	return append(causes, err)
}

// is is the verdict of a comparison.
func is(ok bool) verdict {
	if ok {
		return met
	}
	return unmet
}

// clause evaluates one clause: its verdict and, when not met, the cause
// if there is more to say than the peer's identity does.
func (f *peerFacts) clause(n *reqNode) (verdict, error) {
	switch n.op {
	case opUID:
		uid, err := lookupID(n, user.Lookup)
		if err != nil {
			return unknown, err
		}
		return is(f.p.UID == uid), nil
	case opGroup:
		return f.group(n)
	case opExe:
		return f.exeIs(n.arg)
	case opSHA256:
		d, err := f.digest.get(f.loadDigest)
		if err != nil {
			return unknown, err
		}
		if d != n.digest {
			return unmet, fmt.Errorf("its executable's sha256 is %x", d)
		}
		return met, nil
	case opIdentifier, opTeam, opSigned:
		return f.signed(n)
	case opUnit:
		return f.unit(n.arg)
	}
	panic("xpc: unknown requirement clause")
}

// lookupID returns a uid or group clause's number, looking a name up in
// the user or group database (lookup is user.Lookup or groupLookup). A
// name not found is unknown, not unmet: "not uid typo" passes no one.
func lookupID(n *reqNode, lookup func(string) (*user.User, error)) (uint32, error) {
	if !n.named {
		return n.id, nil
	}
	u, err := lookup(n.arg)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q has id %q: %w", clauseWords[n.op], n.arg, u.Uid, err)
	}
	return uint32(id), nil
}

// groupLookup looks a group up as lookupID wants it, its gid in Uid.
func groupLookup(name string) (*user.User, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return nil, err
	}
	return &user.User{Uid: g.Gid}, nil
}

// group evaluates a group clause: the gid the kernel gave at connect, then
// the supplementary groups, read only if that is not it.
func (f *peerFacts) group(n *reqNode) (verdict, error) {
	gid, err := lookupID(n, groupLookup)
	if err != nil {
		return unknown, err
	}
	if f.p.GID == gid {
		return met, nil
	}
	gs, err := f.groups.get(f.loadGroups)
	if err != nil {
		return unknown, err
	}
	if !slices.Contains(gs, gid) {
		return unmet, fmt.Errorf("its groups are %d and %v", f.p.GID, gs)
	}
	return met, nil
}

// signed evaluates identifier, team and signed. A missing, bad or
// untrusted signature makes them unmet; a failure to read one, unknown.
func (f *peerFacts) signed(n *reqNode) (verdict, error) {
	info, err := f.sig.get(f.loadSig)
	switch {
	case err == nil && info == nil:
		return unknown, errors.New("the signature check gave no answer")
	case errors.Is(err, codesign.ErrUnsigned), errors.Is(err, codesign.ErrBadSignature), errors.Is(err, codesign.ErrUntrusted):
		return unmet, err
	case err != nil:
		return unknown, err
	case n.op == opIdentifier:
		return is(info.Identifier == n.arg), nil
	case n.op == opTeam:
		return is(info.Team == n.arg), nil
	}
	return met, nil
}

// exeIs evaluates "exe PATH": the peer's executable must be the file at
// PATH as this process sees it, symbolic links followed, told by its
// device and inode. The path /proc/PID/exe shows proves nothing: a process
// can run any file from any path it likes, bind-mounted there in a mount
// namespace of its own. PATH is looked up once per Check; recheck compares
// only the executable with the one the last passing Check examined. A
// PATH that is not there is no one's executable; one that cannot be
// looked up otherwise leaves the clause unknown.
func (f *peerFacts) exeIs(path string) (verdict, error) {
	x, err := f.exe.get(f.loadExe)
	if err != nil {
		return unknown, err
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		err = &os.PathError{Op: "stat", Path: path, Err: err}
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return unmet, err
		}
		return unknown, err
	}
	if st.Dev == x.id.dev && st.Ino == x.id.ino {
		return met, nil
	}
	if x.path == path {
		// The identity names PATH: say why it is not met.
		return unmet, fmt.Errorf("its executable is not the file at %s: device %d:%d inode %d, not %d:%d inode %d",
			path, unix.Major(x.id.dev), unix.Minor(x.id.dev), x.id.ino, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	}
	return unmet, nil
}

// unit evaluates "unit NAME" on the peer's cgroup.
func (f *peerFacts) unit(name string) (verdict, error) {
	cg, err := f.cgroup.get(f.loadCgroup)
	if err != nil {
		return unknown, err
	}
	if inUnit(cg, name) {
		return met, nil
	}
	if strings.HasPrefix(name, "/") {
		return unmet, fmt.Errorf("its cgroup is %s", cg)
	}
	if _, u := unitOf(cg); u != "" {
		return unmet, fmt.Errorf("its cgroup is %s, of unit %s", cg, u)
	}
	return unmet, fmt.Errorf("its cgroup is %s, of no unit", cg)
}

// inUnit reports whether cgroup path cg is in unit: if unit starts with
// "/", whether it is a path prefix of cg (whole components); else whether
// it is cg's systemd unit or one of the slices above that (unitOf). A
// component below the unit is not looked at: a unit may delegate its
// subtree (systemd's Delegate=, which every user@UID.service has), and
// its delegate names what is there.
func inUnit(cg, unit string) bool {
	if strings.HasPrefix(unit, "/") {
		return unit == "/" || cg == unit || strings.HasPrefix(cg, unit+"/")
	}
	above, u := unitOf(cg)
	return u == unit || slices.Contains(above, unit)
}

// unitOf returns the systemd unit of a process in cgroup cg, as
// sd_pid_get_unit tells it: the first component that is not a slice (does
// not end in ".slice"), and the slices before it; each component less
// the one leading "_" with which systemd escapes some names. The unit is
// "" if every component is a slice. A process outside the checker's
// cgroup namespace, whose path starts with "/..", has the unit "..",
// which no requirement names.
func unitOf(cg string) (above []string, unit string) {
	for c := range strings.SplitSeq(cg, "/") {
		if c == "" {
			continue
		}
		c = strings.TrimPrefix(c, "_")
		if !strings.HasSuffix(c, ".slice") {
			return above, c
		}
		above = append(above, c)
	}
	return above, ""
}
