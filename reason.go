package xpc

import (
	"fmt"
	"strings"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// Reason says why a connection failed, was refused, or is about to lose
// its peer: for code, a stable Code (and errors.Is on the *ConnError that
// carries it), and for people, Description and String. It is the one
// reason type of the package: xpcd, a listener turning a peer away, a
// failed peer requirement and the connection itself all say why with one.
// On the wire it travels as an error object in a refused frame (Object,
// ReasonFromObject).
type Reason struct {
	// Code is a stable word, one of the Reason* constants, or another
	// word a newer peer sent.
	Code string
	// Rule names what refused: a security rule of xpcd
	// (docs/SECURITY.md), or the requirement clause a peer failed.
	Rule string
	// Domain is, for ReasonOtherDomain, the domain the service is in.
	Domain string
	// Peer is, for ReasonRequirementFailed, the peer's identity as the
	// requirement saw it.
	Peer string
	// ExitStatus is, for ReasonExited, the service's exit status; Signal
	// is, for ReasonSignaled, the signal that ended it.
	ExitStatus int
	Signal     int
	// Description says it for people.
	Description string
}

// Reason codes (Reason.Code). The first group comes from xpcd or a
// listener refusing a connection; the second from the connection itself;
// the third says why a named service went away (ErrInterrupted) or is
// about to (ErrTerminationImminent).
const (
	// ReasonNotFound: no service has the name, in any domain the caller
	// may see (ErrServiceNotFound).
	ReasonNotFound = bootstrap.ReasonNotFound
	// ReasonOtherDomain: the name is a service of another domain than the
	// one asked; Domain names it (ErrOtherDomain).
	ReasonOtherDomain = bootstrap.ReasonWrongDomain
	// ReasonDenied: a rule refused the connection; Rule names it
	// (ErrDenied).
	ReasonDenied = bootstrap.ReasonDenied
	// ReasonRequirementFailed: the caller, or the peer, failed a
	// requirement; Rule names the clause and Peer the identity
	// (ErrPeerRequirement).
	ReasonRequirementFailed = bootstrap.ReasonRequirementFailed
	// ReasonNotApproved: the service is not approved to run
	// (ErrNotApproved).
	ReasonNotApproved = bootstrap.ReasonNotApproved
	// ReasonNotInBundle: the name is an XPC service of an application
	// bundle the caller was not started from (Apple's error 147, "not in
	// your bundle"); only the bundle's own processes may look it up
	// (ErrNotInBundle).
	ReasonNotInBundle = bootstrap.ReasonNotInBundle
	// ReasonBusy: too many clients wait for the service (ErrDenied).
	ReasonBusy = bootstrap.ReasonBusy
	// ReasonTooManyConnections: xpcd turned the caller away at connect,
	// over its per-user connection limit (ErrDenied).
	ReasonTooManyConnections = bootstrap.ReasonTooManyConnections
	// ReasonShuttingDown: xpcd is stopping (ErrDenied).
	ReasonShuttingDown = bootstrap.ReasonShuttingDown
	// ReasonBadRequest: xpcd could not make sense of the request, such
	// as an invalid name (ErrDenied).
	ReasonBadRequest = bootstrap.ReasonBadRequest

	// ReasonLaunchFailed: xpcd could not launch the service (its program
	// is missing or not executable, its user unknown, a rule refused
	// it); Description says why, and Rule names a rule that refused it
	// (ErrInterrupted and ErrLaunchFailed).
	ReasonLaunchFailed = bootstrap.ReasonLaunchFailed
	// ReasonThrottled: the service's last launch failed, or its last
	// instance ended before it checked the name in, and xpcd waits before
	// it launches it again; Description says what failed and when xpcd
	// tries again (ErrInterrupted and ErrLaunchFailed).
	ReasonThrottled = bootstrap.ReasonThrottled
	// ReasonDisabled: the service's job was disabled while the client
	// waited for it (ErrInterrupted and ErrLaunchFailed).
	ReasonDisabled = bootstrap.ReasonDisabled

	// ReasonCanceled: the connection's owner cancelled it (ErrCanceled).
	ReasonCanceled = "canceled"
	// ReasonPeerGone: the peer closed its end or exited (ErrPeerGone).
	ReasonPeerGone = "peer-gone"
	// ReasonProtocol: the peer sent something malformed or out of turn
	// (ErrProtocol).
	ReasonProtocol = "protocol-error"
	// ReasonOverLimit: the peer went over one of the connection's byte
	// limits (ErrPeerOverLimit).
	ReasonOverLimit = "over-limit"
	// ReasonSessionRejected: the listener rejected the session
	// (SessionRequest.Reject); Description says why (ErrSessionRejected).
	ReasonSessionRejected = "session-rejected"

	// ReasonExited: the service exited by itself; ExitStatus says how.
	ReasonExited = bootstrap.ReasonExited
	// ReasonSignaled: the service was ended by a signal it did not
	// expect from xpcd (a crash); Signal says which.
	ReasonSignaled = bootstrap.ReasonSignaled
	// ReasonIdleExit: xpcd stopped the idle service.
	ReasonIdleExit = bootstrap.ReasonIdleExit
	// ReasonUpgrade: xpcd stopped the service to start a new version.
	ReasonUpgrade = bootstrap.ReasonUpgrade
	// ReasonKilled: an administrator stopped the service (xpcctl kill,
	// bootout, kickstart -k).
	ReasonKilled = bootstrap.ReasonKilled
	// ReasonMemoryPressure: xpcd stopped the service to free memory.
	ReasonMemoryPressure = bootstrap.ReasonMemoryPressure
	// ReasonUnknown: the service went away and nobody said why (xpcd did
	// not answer, or the service was not started by xpcd).
	ReasonUnknown = "unknown"
)

// reasonKinds maps the codes that have one to their error kind, which
// errors.Is finds on the *ConnError carrying the reason.
var reasonKinds = map[string]error{
	ReasonNotFound:           ErrServiceNotFound,
	ReasonOtherDomain:        ErrOtherDomain,
	ReasonDenied:             ErrDenied,
	ReasonRequirementFailed:  ErrPeerRequirement,
	ReasonNotApproved:        ErrNotApproved,
	ReasonNotInBundle:        ErrNotInBundle,
	ReasonBusy:               ErrDenied,
	ReasonTooManyConnections: ErrDenied,
	ReasonShuttingDown:       ErrDenied,
	ReasonBadRequest:         ErrDenied,
	ReasonCanceled:           ErrCanceled,
	ReasonPeerGone:           ErrPeerGone,
	ReasonProtocol:           ErrProtocol,
	ReasonOverLimit:          ErrPeerOverLimit,
	ReasonSessionRejected:    ErrSessionRejected,
	ReasonLaunchFailed:       ErrLaunchFailed,
	ReasonThrottled:          ErrLaunchFailed,
	ReasonDisabled:           ErrLaunchFailed,
}

// reasonCodes is reasonKinds the other way, for the connection's own
// reasons.
var reasonCodes = map[error]string{
	ErrServiceNotFound: ReasonNotFound,
	ErrOtherDomain:     ReasonOtherDomain,
	ErrDenied:          ReasonDenied,
	ErrPeerRequirement: ReasonRequirementFailed,
	ErrNotApproved:     ReasonNotApproved,
	ErrNotInBundle:     ReasonNotInBundle,
	ErrCanceled:        ReasonCanceled,
	ErrPeerGone:        ReasonPeerGone,
	ErrProtocol:        ReasonProtocol,
	ErrPeerOverLimit:   ReasonOverLimit,
	ErrSessionRejected: ReasonSessionRejected,
	ErrLaunchFailed:    ReasonLaunchFailed,
}

// Kind returns the error kind the reason is matched by (ErrServiceNotFound,
// ErrDenied, ErrLaunchFailed, ...), or nil if its code has none: an
// interruption's reasons (ReasonExited, ...) have none, and neither has a
// code this package does not know. A refusal
// with a code unknown here counts as ErrDenied (refusalError).
func (r *Reason) Kind() error {
	if r == nil {
		return nil
	}
	return reasonKinds[r.Code]
}

// String says the reason for people: its description, and the rule or
// clause, the domain and the peer it names.
func (r *Reason) String() string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(r.Description)
	if b.Len() == 0 {
		b.WriteString(r.Code)
	}
	if r.Rule != "" && !strings.Contains(r.Description, r.Rule) {
		fmt.Fprintf(&b, " (rule %s)", r.Rule)
	}
	return b.String()
}

// Object returns the reason as an error object, as a refused frame or an
// error reply carries it: the description, "kind" "invalid", "reason" the
// code, and "rule", "domain", "peer", "exit_status", "signal" when set.
// A listener's admission function may return it.
func (r *Reason) Object() *ErrorObject {
	eo := NewErrorObject(r.Description)
	eo.Set(bootstrap.KeyKind, String(bootstrap.KindInvalid))
	if r.Code != "" {
		eo.Set(bootstrap.KeyReason, String(r.Code))
	}
	for _, kv := range [...]struct{ k, v string }{
		{bootstrap.KeyRule, r.Rule}, {bootstrap.KeyDomain, r.Domain}, {bootstrap.KeyPeer, r.Peer},
	} {
		if kv.v != "" {
			eo.Set(kv.k, String(kv.v))
		}
	}
	if r.ExitStatus != 0 {
		eo.Set(bootstrap.KeyExitStatus, Int64(int64(r.ExitStatus)))
	}
	if r.Signal != 0 {
		eo.Set(bootstrap.KeySignal, Int64(int64(r.Signal)))
	}
	return eo
}

// ReasonFromObject reads a reason from an error object a refusal or an
// error reply carried (Object's form). Keys of the wrong type are
// ignored; an object without a code gives ReasonDenied.
func ReasonFromObject(eo *ErrorObject) *Reason {
	r := reasonFromDict(&eo.Dictionary)
	r.Description = eo.Description()
	if r.Code == "" {
		r.Code = ReasonDenied
	}
	return r
}

// reasonFromDict reads a reason's code and fields from d, an error
// object's or an exit-reason answer's keys; values of the wrong type are
// ignored. The description is the caller's: the two keep it under
// different keys.
func reasonFromDict(d *Dictionary) *Reason {
	r := &Reason{}
	r.Code, _ = d.String(bootstrap.KeyReason)
	r.Rule, _ = d.String(bootstrap.KeyRule)
	r.Domain, _ = d.String(bootstrap.KeyDomain)
	r.Peer, _ = d.String(bootstrap.KeyPeer)
	if n, ok := d.Get(bootstrap.KeyExitStatus).(Int64); ok && int64(int(n)) == int64(n) {
		r.ExitStatus = int(n)
	}
	if n, ok := d.Get(bootstrap.KeySignal).(Int64); ok && n > 0 && n < 128 {
		r.Signal = int(n)
	}
	return r
}
