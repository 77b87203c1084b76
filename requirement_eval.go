package xpc

import (
	"errors"
	"fmt"
	"os/user"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/goxpc/xpc/codesign"
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
		x, err := f.exe.get(f.loadExe)
		if err != nil {
			return unknown, err
		}
		return is(x.path == n.arg), nil
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
		cg, err := f.cgroup.get(f.loadCgroup)
		if err != nil {
			return unknown, err
		}
		if !inUnit(cg, n.arg) {
			return unmet, fmt.Errorf("its cgroup is %s", cg)
		}
		return met, nil
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

// inUnit reports whether cgroup path cg is unit or lies below it: unit is
// a path prefix (whole components) if it starts with "/", else the name of
// one of cg's components.
func inUnit(cg, unit string) bool {
	if strings.HasPrefix(unit, "/") {
		return unit == "/" || cg == unit || strings.HasPrefix(cg, unit+"/")
	}
	return slices.Contains(strings.Split(path.Clean(cg), "/"), unit)
}
