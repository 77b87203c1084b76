package xpc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goxpc/xpc/codesign"
)

// ErrBadRequirement: a requirement string does not parse.
var ErrBadRequirement = errors.New("bad requirement")

// Limits on a requirement string, so that a hostile one costs little to
// reject: its length in bytes (of the text given and of its canonical
// form), and how deep parentheses and "not" may nest.
const (
	maxRequirementLen   = 4096
	maxRequirementDepth = 32
)

// Requirement is a declarative condition on a peer's identity, written as
// a one-line string (docs/SECURITY.md, "Peer requirements"): "uid 0",
// "identifier org.x and team ABCDE12345", "exe /usr/libexec/helper or
// group admin", ... The zero Requirement is met by every peer.
//
// A Requirement is an immutable value: copies share nothing that changes.
// Two Requirements mean the same when their String is the same; == also
// compares where each was parsed, so use String to compare.
type Requirement struct {
	text string   // the canonical text; "" for the zero Requirement
	root *reqNode // never changed once parsed
}

// RequirementSyntaxError is a requirement string's parse error.
type RequirementSyntaxError struct {
	Column int // 1-based column (in characters) of the fault
	Msg    string
}

func (e *RequirementSyntaxError) Error() string {
	return fmt.Sprintf("%s: column %d: %s", ErrBadRequirement, e.Column, e.Msg)
}

// Is matches ErrBadRequirement.
func (e *RequirementSyntaxError) Is(target error) bool { return target == ErrBadRequirement }

// RequirementError says which clause of a requirement a peer failed.
type RequirementError struct {
	Requirement string // the whole requirement
	Clause      string // the clause that failed
	Peer        string // the peer's identity as checked
	Err         error  // the cause, if any (a signature error, ...)
}

// Error describes the failure: `xpc: peer requirement not met: pid 12 uid
// 1000 exe /usr/bin/x fails "uid 0"`, then the cause, if any.
func (e *RequirementError) Error() string {
	s := fmt.Sprintf("xpc: %s: %s fails %q", ErrPeerRequirement, e.Peer, e.Clause)
	if e.Err != nil {
		s += ": " + causeText(e.Err)
	}
	return s
}

// Is matches ErrPeerRequirement.
func (e *RequirementError) Is(target error) bool { return target == ErrPeerRequirement }

// Unwrap returns the cause.
func (e *RequirementError) Unwrap() error { return e.Err }

// ParseRequirement parses a requirement string (docs/SECURITY.md has the
// grammar). A fault is a *RequirementSyntaxError naming its column.
func ParseRequirement(s string) (Requirement, error) {
	root, err := parseRequirement(s)
	if err != nil {
		return Requirement{}, fmt.Errorf("xpc: %w", err)
	}
	var b strings.Builder
	root.render(&b, opOr)
	if b.Len() > maxRequirementLen {
		return Requirement{}, fmt.Errorf("xpc: %w", &RequirementSyntaxError{Column: 1,
			Msg: fmt.Sprintf("longer than %d bytes once written canonically (one space between words and around parentheses): %d", maxRequirementLen, b.Len())})
	}
	return Requirement{text: b.String(), root: root}, nil
}

// MustParseRequirement is ParseRequirement that panics on error.
func MustParseRequirement(s string) Requirement {
	r, err := ParseRequirement(s)
	if err != nil {
		panic(err)
	}
	return r
}

// String returns the requirement's canonical text, which parses to the
// same requirement: single spaces, parentheses only where needed, numbers
// in decimal, digests in lower case, values quoted only where needed. It
// is "" for the zero Requirement.
func (r Requirement) String() string { return r.text }

// IsZero reports whether r is the zero Requirement.
func (r Requirement) IsZero() bool { return r.root == nil }

// Check reports whether p meets r: nil, or a *RequirementError naming the
// smallest part of r that p fails (for "a and b" the operand that fails;
// for an "or" or a "not" the whole of it), the peer's identity as checked,
// and the cause, if any. What r needs beyond the uid and gid the kernel
// gave at connect is read through p's pidfd-checked /proc directory, only
// when a clause asks for it. Check records whether it passed and the
// executable it examined, for recheck. Signatures and digests are
// verified by codesign.Default(), which trusts codesign.TrustDir().
func (r Requirement) Check(p *Peer) error { return r.check(p, nil) }

// CheckWith is Check with signatures and digests verified by v, and the
// keys of v's trust directory, in place of codesign.Default(): for a
// process whose trust directory is not the one its environment names (an
// xpcd given --root checks lookups against ROOT/trust.d).
func (r Requirement) CheckWith(p *Peer, v *codesign.Verifier) error {
	if v == nil {
		return r.check(p, nil)
	}
	return r.check(p, v)
}

func (r Requirement) check(p *Peer, v exeVerifier) error {
	if r.IsZero() {
		return nil
	}
	if p == nil {
		return &RequirementError{Requirement: r.text, Clause: r.text, Peer: "no peer", Err: errNoPeer}
	}
	f := newPeerFacts(p, v)
	defer f.close()
	o := f.eval(r.root)
	f.record(o.v == met)
	if o.v == met {
		return nil
	}
	return &RequirementError{Requirement: r.text, Clause: r.text[o.at.lo:o.at.hi], Peer: f.identity(), Err: o.err}
}

var errNoPeer = errors.New("no peer to check")

// recheck is the check made before the messages read from p in one
// wake-up are handled: nil, at the cost of one look at /proc
// (Peer.exeChanged), while p runs the executable the last Check, which
// passed, examined; otherwise a full Check, which fails with its cause if
// p has exited or can no longer be looked at. It must be called after the
// messages were read, so that an exec before their sending is seen. When
// the last Check passed without looking at the executable (uid, group,
// unit, or an "or" met before an executable clause), it costs one atomic
// load.
func (r Requirement) recheck(p *Peer) error {
	if r.IsZero() {
		return nil
	}
	if changed, err := p.exeChanged(); err == nil && !changed {
		return nil
	}
	return r.Check(p)
}
