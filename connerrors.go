package xpc

import (
	"errors"
	"fmt"
	"strings"
)

// The errors of this package follow one scheme (CHANGES.md): a sentinel
// is a kind, its text the kind alone ("interrupted", "peer gone"), tested
// with errors.Is; the error a function returns names the package once, at
// its start ("xpc: invalid: peer gone: ...").

// The connection error kinds, testable with errors.Is on any error a
// Connection returns or delivers to its handler.
var (
	// ErrInterrupted: the named service went away (crash, exit, upgrade).
	// The connection stays usable; the next send reaches a new instance.
	ErrInterrupted = errors.New("interrupted")
	// ErrInvalid: the connection can never work again. Final. The error
	// also matches one reason (ErrServiceNotFound, ErrDenied, ErrCanceled,
	// ErrPeerGone, ErrProtocol, ...), and a *ConnError says more.
	ErrInvalid = errors.New("invalid")
	// ErrTerminationImminent: the service has been asked to exit.
	ErrTerminationImminent = errors.New("termination imminent")
	// ErrLaunchFailed: xpcd cannot start the named service now, and told
	// the clients waiting for it at once rather than let them wait out
	// their deadlines. It comes with ErrInterrupted: the connection stays
	// usable, and the next send looks the name up again. The *ConnError's
	// Reason says why: ReasonLaunchFailed (the program is missing, not
	// executable, ...), ReasonExited, ReasonSignaled, ReasonKilled or
	// ReasonUnknown (the service ended before it checked the name in),
	// ReasonThrottled (one of those happened just before, and xpcd waits
	// before the next launch), ReasonDisabled or ReasonNotFound (its job
	// was disabled, or unloaded, while the client waited).
	ErrLaunchFailed = errors.New("launch failed")
	// ErrNoBootstrap: no xpcd is running: nothing listens on the
	// bootstrap socket (it is not there, or refuses connections). The
	// error names the socket and how to start xpcd. It is not
	// ErrInterrupted; the connection stays usable, and a send after xpcd
	// has started works.
	ErrNoBootstrap = errors.New("no xpcd is running")
)

// Reasons a connection is invalid; each is matched by errors.Is alongside
// ErrInvalid.
var (
	// ErrServiceNotFound: no service has the name looked up, in the
	// domains the caller may see.
	ErrServiceNotFound = errors.New("service not found")
	// ErrOtherDomain: the name looked up is a service of another domain
	// than the one asked for (WithDomain); the reason's Domain names it.
	ErrOtherDomain = errors.New("service is in another domain")
	// ErrPeerRequirement: the peer failed a requirement: the service, or a
	// client, failed the requirement set on the connection, or the caller
	// failed the requirement xpcd keeps for the name it looked up. The
	// reason's Rule names the clause, its Peer the identity checked.
	ErrPeerRequirement = errors.New("peer requirement not met")
	// ErrDenied: the lookup or connection was refused (a listener that
	// did not activate its new peer, a policy rule, ...).
	ErrDenied = errors.New("denied")
	// ErrCanceled is the reason when the connection's owner cancelled it.
	ErrCanceled = errors.New("canceled")
	// ErrPeerGone: the process at the other end went away, or its end
	// was closed (its owner cancelled it, or it exited or crashed).
	ErrPeerGone = errors.New("peer gone")
	// ErrProtocol: the peer sent something malformed or out of turn.
	ErrProtocol = errors.New("protocol error")
	// ErrNotApproved: the service is not approved to run.
	ErrNotApproved = errors.New("not approved")
	// ErrNotInBundle: the name looked up is an XPC service of an
	// application bundle, visible only to the processes started from that
	// bundle (Apple's error 147, "not in your bundle").
	ErrNotInBundle = errors.New("service not in your bundle")
	// ErrPeerOverLimit: the peer went over one of the connection's byte
	// limits: it queued more message and request bytes than
	// WithMaxQueuedBytes allows, or left more out-of-line reply bytes
	// unread than WithMaxUnreadBytes allows. The detail names the rule
	// and the numbers.
	ErrPeerOverLimit = errors.New("peer over limit")
)

// Per-message errors: the message failed, the connection is unharmed. A
// message larger than WithMaxMessageSize fails with ErrTooLarge, the
// codec's kind for every size limit.
var (
	// ErrTooManyFDs: the message carries more descriptors than WithMaxFDs
	// allows.
	ErrTooManyFDs = errors.New("too many file descriptors in one message")
	// ErrNoReply: the peer's handler finished without replying to a
	// message that wanted a reply.
	ErrNoReply = errors.New("peer sent no reply")
	// ErrNotMessage: messages must be dictionaries.
	ErrNotMessage = errors.New("a message must be a dictionary")
	// ErrNotActivated is returned by a send on a connection that has not
	// been activated yet.
	ErrNotActivated = errors.New("connection not activated")
	// ErrAlreadyReplied: Reply was called twice for one message.
	ErrAlreadyReplied = errors.New("message already replied to")
	// ErrNoReplyWanted: Reply was called on a message that wants none.
	ErrNoReplyWanted = errors.New("message does not want a reply")
)

// The per-message errors as returned: the kind with the package's prefix.
var (
	errNoReply        = fmt.Errorf("xpc: %w", ErrNoReply)
	errNotMessage     = fmt.Errorf("xpc: %w", ErrNotMessage)
	errNotActivated   = fmt.Errorf("xpc: %w", ErrNotActivated)
	errAlreadyReplied = fmt.Errorf("xpc: %w", ErrAlreadyReplied)
	errNoReplyWanted  = fmt.Errorf("xpc: %w", ErrNoReplyWanted)
)

// ConnError is the error value of a connection-level failure: a Kind
// (ErrInterrupted, ErrInvalid, ErrTerminationImminent), the Reason, and
// the underlying cause, if any. errors.Is matches the kind and the
// reason's kind (ErrServiceNotFound, ErrDenied, ErrPeerRequirement, ...).
type ConnError struct {
	Kind   error
	Reason *Reason // why; never nil in the errors this package makes
	Err    error   // underlying cause, or nil
	// reasonKind, if set, is what the reason is matched by in place of
	// Reason.Kind(): a refusal with a code this package does not know
	// counts as ErrDenied.
	reasonKind error
}

// Error describes the failure: "xpc: invalid: peer gone: detail: cause".
func (e *ConnError) Error() string {
	s := "xpc: " + e.Kind.Error()
	if k := e.kindOfReason(); k != nil {
		s += ": " + k.Error()
	}
	if d := e.Reason.String(); d != "" {
		s += ": " + d
	}
	// A code its kind does not already say (too-many-connections is
	// ErrDenied's) is named too.
	if r := e.Reason; r != nil && r.Code != "" && r.Code != ReasonUnknown && r.Code != reasonCodes[e.kindOfReason()] &&
		!strings.Contains(s, r.Code) {
		s += " (" + r.Code + ")"
	}
	if e.Err != nil {
		s += ": " + causeText(e.Err)
	}
	return s
}

// Is matches the kind and the reason's kind.
func (e *ConnError) Is(target error) bool {
	return target == e.Kind || (target != nil && target == e.kindOfReason())
}

func (e *ConnError) kindOfReason() error {
	if e.reasonKind != nil {
		return e.reasonKind
	}
	if e.Kind != ErrInvalid {
		// An interruption's or a termination's reason has no kind:
		// ReasonShuttingDown is ErrDenied's only in a refusal.
		return nil
	}
	return e.Reason.Kind()
}

// Unwrap returns the underlying cause.
func (e *ConnError) Unwrap() error { return e.Err }

// wrapError is an error of this package that wraps a cause, which may be
// one too: "xpc: what: cause", the package named once.
type wrapError struct {
	what string
	err  error
}

// wrapf returns err wrapped in a *wrapError saying what failed.
func wrapf(err error, format string, args ...any) error {
	return &wrapError{what: fmt.Sprintf(format, args...), err: err}
}

func (e *wrapError) Error() string { return "xpc: " + e.what + ": " + causeText(e.err) }

func (e *wrapError) Unwrap() error { return e.err }

// invalidError is the error of a connection made invalid by this side,
// for reason (ErrPeerGone, ErrCanceled, ...).
func invalidError(reason error, cause error, format string, args ...any) *ConnError {
	r := &Reason{Code: reasonCodes[reason], Description: fmt.Sprintf(format, args...)}
	return &ConnError{Kind: ErrInvalid, Reason: r, Err: cause, reasonKind: reason}
}

// interruptedError is the error of an interruption nobody said the reason
// of.
func interruptedError(cause error, format string, args ...any) *ConnError {
	return &ConnError{Kind: ErrInterrupted, Reason: &Reason{Code: ReasonUnknown, Description: fmt.Sprintf(format, args...)}, Err: cause}
}

// RemoteError is returned by a send with reply when the peer answered with
// an error object (Message.ReplyError), or could not send the reply it made
// (errors.Is(err, ErrReplyFailed)).
type RemoteError struct {
	Object *ErrorObject
}

// ErrReplyFailed is what a send with reply fails with when the peer made a
// reply it could not send: one that does not encode, is larger than its
// WithMaxMessageSize, or carries more descriptors than WithMaxFDs. The
// error is a *RemoteError whose description says why.
var ErrReplyFailed = errors.New("the peer could not send its reply")

// replyFailedKey marks the error object a peer sends in place of a reply
// it could not send.
const replyFailedKey = "goxpc-reply-failed"

func replyFailedObject(cause error) *ErrorObject {
	o := NewErrorObject("the reply could not be sent: " + causeText(cause))
	o.Set(replyFailedKey, Bool(true))
	return o
}

// Is reports whether target is ErrReplyFailed and the peer sent this error
// in place of a reply it could not send, or target is a CodedError of the
// error's domain and code.
func (e *RemoteError) Is(target error) bool {
	if e.Object == nil {
		return false
	}
	if target != ErrReplyFailed {
		c, ok := target.(CodedError)
		return ok && e.Domain() != "" && c.ErrorDomain() == e.Domain() && c.ErrorCode() == e.Code()
	}
	v, _ := e.Object.Get(replyFailedKey).(Bool)
	return bool(v)
}

// Error returns the error object's description, and the domain and code
// of a coded error.
func (e *RemoteError) Error() string {
	if e.Object == nil {
		return "xpc: peer replied with error"
	}
	if d := e.Domain(); d != "" {
		return fmt.Sprintf("xpc: peer replied with error: %s (%s code %d)", e.Object.Description(), d, e.Code())
	}
	return "xpc: peer replied with error: " + e.Object.Description()
}
