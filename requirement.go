package xpc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SKELETON: the requirement language's API, to be filled in. Only "uid N"
// parses for now.

// ErrBadRequirement: a requirement string does not parse.
var ErrBadRequirement = errors.New("bad requirement")

// Requirement is a declarative condition on a peer's identity, written as
// a one-line string (docs/SECURITY.md): "uid 0", "identifier org.x and
// team ABCDE12345", ... The zero Requirement is met by every peer.
type Requirement struct {
	text string
	uid  int
}

// RequirementSyntaxError is a requirement string's parse error.
type RequirementSyntaxError struct {
	Column int // 1-based column of the fault
	Msg    string
}

func (e *RequirementSyntaxError) Error() string {
	return fmt.Sprintf("column %d: %s", e.Column, e.Msg)
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

func (e *RequirementError) Error() string {
	s := fmt.Sprintf("%s: %s fails %q", ErrPeerRequirement, e.Peer, e.Clause)
	if e.Err != nil {
		s += ": " + causeText(e.Err)
	}
	return s
}

// Is matches ErrPeerRequirement.
func (e *RequirementError) Is(target error) bool { return target == ErrPeerRequirement }

// Unwrap returns the cause.
func (e *RequirementError) Unwrap() error { return e.Err }

// ParseRequirement parses a requirement string.
func ParseRequirement(s string) (Requirement, error) {
	f := strings.Fields(s)
	if len(f) != 2 || f[0] != "uid" {
		return Requirement{}, fmt.Errorf("xpc: %w", &RequirementSyntaxError{Column: 1, Msg: "only uid N for now"})
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return Requirement{}, fmt.Errorf("xpc: %w", &RequirementSyntaxError{Column: 5, Msg: "not a number"})
	}
	return Requirement{text: s, uid: n}, nil
}

// MustParseRequirement is ParseRequirement that panics on error.
func MustParseRequirement(s string) Requirement {
	r, err := ParseRequirement(s)
	if err != nil {
		panic(err)
	}
	return r
}

// String returns the requirement's text.
func (r Requirement) String() string { return r.text }

// IsZero reports whether r is the zero Requirement.
func (r Requirement) IsZero() bool { return r.text == "" }

// Check reports whether p meets r: nil, or a *RequirementError.
func (r Requirement) Check(p *Peer) error {
	if r.IsZero() || int(p.UID) == r.uid {
		return nil
	}
	return &RequirementError{Requirement: r.text, Clause: r.text, Peer: p.String()}
}
