package xpc

import (
	"errors"
	"fmt"
)

// Enforcing WithPeerRequirement: where a connection checks its peer, and
// the error and refusal it makes when the peer fails. The requirement
// itself (Requirement.Check, recheck) is requirement.go's.

// checkPeer checks p, a newly known peer, against the requirement cfg
// holds, if any: nil, or the connection's error (requirementFailed).
func (cfg *config) checkPeer(p *Peer) error {
	if cfg.req == nil {
		return nil
	}
	if err := cfg.req.Check(p); err != nil {
		return requirementFailed(err)
	}
	return nil
}

// recheckPeer checks the link's peer again before a frame it sent is
// handled (readBody), r being the connection's requirement: at the cost
// of one look at the peer's executable while it is the one last checked
// (Requirement.recheck). A frame before the peer is known (a service
// that sent something ahead of its hello) fails.
func (l *link) recheckPeer(r *Requirement) error {
	if err := r.recheck(l.peer.Load()); err != nil {
		return requirementFailed(err)
	}
	return nil
}

// requirementFailed is the error of a connection whose peer failed its
// requirement, from err, the *RequirementError Check returned: ErrInvalid
// and ErrPeerRequirement, with a reason naming the clause and the
// identity checked, and the requirement's cause (a signature error, say)
// as its own.
func requirementFailed(err error) *ConnError {
	var re *RequirementError
	if !errors.As(err, &re) {
		return invalidError(ErrPeerRequirement, err, "the peer's requirement could not be checked")
	}
	r := &Reason{Code: ReasonRequirementFailed, Rule: re.Clause, Peer: re.Peer,
		Description: fmt.Sprintf("the peer (%s) fails %q of this connection's requirement", re.Peer, re.Clause)}
	return &ConnError{Kind: ErrInvalid, Reason: r, Err: re.Err, reasonKind: ErrPeerRequirement}
}

// requirementRefusal is the error object a listener sends, in a refused
// frame, to a client that failed its requirement (err, from
// requirementFailed): the reason, its description saying the cause too.
func requirementRefusal(err error) *ErrorObject {
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Reason == nil {
		return (&Reason{Code: ReasonRequirementFailed, Description: causeText(err)}).Object()
	}
	r := *ce.Reason
	r.Description = fmt.Sprintf("the listener turned you away: you (%s) fail %q of its requirement", r.Peer, r.Rule)
	if ce.Err != nil {
		r.Description += ": " + causeText(ce.Err)
	}
	return r.Object()
}

// requirePeer checks the peer of a connection made over a connected
// socket (DialUnix, NewConnectionFromFile), before it is shared, against
// its requirement. One that fails leaves the connection's link dead: sends
// fail with the error, and once activated the connection ends with it.
func (c *Connection) requirePeer() {
	if err := c.cfg.checkPeer(c.link.remotePeer()); err != nil {
		c.link.fail(err)
	}
}
