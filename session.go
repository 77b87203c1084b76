package xpc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
)

// Sessions, as Swift's XPCSession: a client that talks to one instance of
// its peer and never reconnects behind its user's back.

// ErrSessionRejected: the listener turned the session away
// (SessionRequest.Reject); the reason's Description says why. A
// *SessionError carrying it also matches ErrInvalid and ErrDenied.
var ErrSessionRejected = errors.New("session rejected")

// SessionError is the error of a Session that has ended, or could not
// start: every error a Session's sends return once it is over, and the
// last event its handler receives. Reason says why, and CanRetry whether a
// new session may well work: true when the peer went away (it exited,
// crashed, was idled out, upgraded or stopped; xpcd was busy or did not
// answer; xpcd could not start it now, ErrLaunchFailed), false when it
// will not (no such service, denied, a failed requirement, rejected by the
// listener, cancelled by its owner, a protocol error).
//
// errors.Is matches ErrInvalid (a session is over for good), the
// connection error's kinds (ErrInterrupted for a service that went away;
// ErrServiceNotFound, ErrDenied, ErrSessionRejected, ErrCanceled, ...), and
// ErrDenied for a rejected session.
type SessionError struct {
	Reason   *Reason // why; never nil
	CanRetry bool
	// Err is the connection's error that ended the session (a
	// *ConnError).
	Err error
}

// Error says why the session is over: "xpc: session over: " and the
// connection's error.
func (e *SessionError) Error() string { return "xpc: session over: " + causeText(e.Err) }

// Unwrap returns the connection's error.
func (e *SessionError) Unwrap() error { return e.Err }

// Is matches ErrInvalid, and ErrDenied for a rejected session.
func (e *SessionError) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return true
	case ErrDenied:
		return e.Reason != nil && e.Reason.Code == ReasonSessionRejected
	}
	return false
}

// newSessionError makes the error of a session that err, a connection
// error, ended.
func newSessionError(err error) *SessionError {
	var ce *ConnError
	r := &Reason{Code: ReasonUnknown, Description: "the session ended"}
	if errors.As(err, &ce) && ce.Reason != nil {
		r = ce.Reason
	} else if errors.Is(err, ErrNoBootstrap) {
		r.Description = strings.TrimPrefix(err.Error(), "xpc: ")
	}
	// xpcd could not start the service now (ErrLaunchFailed): it may
	// later.
	return &SessionError{Reason: r, CanRetry: canRetry(r.Code) || errors.Is(err, ErrLaunchFailed), Err: err}
}

// canRetry says whether a new session may well work after one ended for
// the reason code: the peer went away, or was too busy, rather than
// refused the caller or was never there.
func canRetry(code string) bool {
	switch code {
	case ReasonExited, ReasonSignaled, ReasonIdleExit, ReasonUpgrade, ReasonKilled, ReasonMemoryPressure,
		ReasonUnknown, ReasonPeerGone, ReasonBusy, ReasonTooManyConnections:
		return true
	}
	return false
}

// Session is a connection to one instance of a named service (NewSession)
// or to a listener (NewEndpointSession) that ends for good when that peer
// goes: unlike a Connection to a named service, it never looks the name up
// again. Once the service has exited, crashed, been idled out or upgraded,
// or the session was refused or cancelled, pending replies fail and every
// later send fails at once, all with the same *SessionError; Done closes,
// and the caller makes a new session if CanRetry says it may help. Nothing
// is sent to a new instance behind the caller's back, and no service is
// launched again by a session that has ended.
//
// A Session is made active, with its handler, for the messages the peer
// sends. All its methods are safe for concurrent use.
type Session struct {
	conn   *Connection
	h      Handler
	dialed atomic.Bool

	mu  sync.Mutex
	err *SessionError // set once, when the session ends
}

// NewSession starts a session with the service named name, through xpcd,
// with the options NewServiceConnection takes. h receives the messages
// the service sends, and, as its last event, the *SessionError that ends
// the session (also when NewSession fails); nil answers every message
// that wants a reply with ErrNoReply.
//
// It looks the name up at once, as Swift's XPCSession initializer
// connects: it fails if no xpcd answers, or ctx ends first, and xpcd
// starts the service now rather than at the first send. It does not wait
// for the service's answer, so that the first message still follows the
// lookup without a round trip: a name xpcd does not know or will not give,
// and a service that rejects the session, end it when the answer comes,
// with the first send's reply failing with that error (CanRetry false).
func NewSession(ctx context.Context, name string, h Handler, opts ...Option) (*Session, error) {
	c, err := NewServiceConnection(name, opts...)
	if err != nil {
		return nil, renamed(err, "NewSession")
	}
	return startSession(ctx, c, h)
}

// NewEndpointSession starts a session with the listener behind ep, with
// the options NewEndpointConnection takes. It connects at once, as
// NewSession looks up: it fails if the listener is gone. h is as
// NewSession's. A listener that rejects the session (or turns the peer
// away otherwise) ends it when its answer comes.
func NewEndpointSession(ctx context.Context, ep *Endpoint, h Handler, opts ...Option) (*Session, error) {
	c, err := NewEndpointConnection(ep, opts...)
	if err != nil {
		return nil, renamed(err, "NewEndpointSession")
	}
	return startSession(ctx, c, h)
}

// renamed returns err, the error of the constructor a session's
// connection is made with, naming the session's constructor ctor if it is
// an *OptionError: the two take the same options.
func renamed(err error, ctor string) error {
	var oe *OptionError
	if errors.As(err, &oe) {
		e := *oe
		e.Constructor = ctor
		return &e
	}
	return err
}

// startSession makes c, not yet shared, a session's connection, activates
// it and connects it: its dial (a lookup, or connecting to an endpoint) is
// made once, and never again.
func startSession(ctx context.Context, c *Connection, h Handler) (*Session, error) {
	s := &Session{conn: c, h: h}
	dial := c.dial
	c.dial = func(ctx context.Context) (linkEnd, error) {
		if s.dialed.Swap(true) {
			return linkEnd{}, s.lostError()
		}
		return dial(ctx)
	}
	c.SetHandler(sessionHandler{s})
	c.Activate()
	if _, err := c.getLink(ctx, false); err != nil {
		err = s.check(err) // a *SessionError for a connection error
		c.Cancel()
		return nil, err
	}
	return s, nil
}

// lostError is the error a send gets that finds the session's only link
// gone before the session has heard of it: the connection would look the
// service up again, and the session is over instead.
func (s *Session) lostError() error {
	if err := s.Err(); err != nil {
		return err
	}
	r := s.conn.Reason() // the link's failure is noted before it is seen
	if r == nil {
		r = &Reason{Code: ReasonUnknown, Description: "the session's peer went away"}
	}
	return &ConnError{Kind: ErrInterrupted, Reason: r}
}

// end makes the session over with err, unless it is already; it returns
// the session's error.
func (s *Session) end(err error) *SessionError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		if se, ok := err.(*SessionError); ok {
			s.err = se
		} else {
			s.err = newSessionError(err)
		}
	}
	return s.err
}

// check returns err, the result of a send on the session's connection: a
// connection error, or no xpcd running (ErrNoBootstrap), ends the
// session, and the session's error is returned
// in its place. Other errors (a context's, a *RemoteError, a message's
// own) leave the session as it was.
func (s *Session) check(err error) error {
	if err == nil {
		return nil // before ce, which escapes: no allocation per call
	}
	var ce *ConnError
	if !errors.Is(err, ErrNoBootstrap) && (!errors.As(err, &ce) || ce.Kind == ErrTerminationImminent) {
		return err
	}
	se := s.end(err)
	s.conn.Cancel()
	return se
}

// Send sends msg without waiting for a reply, as Connection.Send does. On
// a session that is over it fails at once with the *SessionError.
func (s *Session) Send(ctx context.Context, msg *Dictionary) error {
	if err := s.Err(); err != nil {
		return err
	}
	return s.check(s.conn.Send(ctx, msg))
}

// SendWithReply sends msg and waits for the reply, until ctx ends, as
// Connection.SendWithReply does. If the session ends first (its peer went,
// or rejected it) it fails with the *SessionError; on a session that is
// over it fails at once.
func (s *Session) SendWithReply(ctx context.Context, msg *Dictionary) (*Dictionary, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	r, err := s.conn.SendWithReply(ctx, msg)
	return r, s.check(err)
}

// SendValue converts v to a dictionary with ValueOf and sends it as Send
// does.
func (s *Session) SendValue(ctx context.Context, v any) error {
	return sendValue(ctx, s.Send, v)
}

// Invoke converts req to a dictionary with ValueOf, sends it as
// SendWithReply does, and decodes the reply into the value reply points
// to, as Connection.Invoke does.
func (s *Session) Invoke(ctx context.Context, req, reply any) error {
	return invoke(ctx, s.SendWithReply, s.conn.cfg.strict, req, reply)
}

// Cancel ends the session: pending replies and later sends fail with a
// *SessionError matching ErrCanceled (CanRetry false). It does not wait;
// Done is closed once everything has stopped.
func (s *Session) Cancel() {
	s.end(invalidError(ErrCanceled, nil, "the session was canceled by its owner"))
	s.conn.Cancel()
}

// Done returns a channel closed when the session is over and its handler
// has received its last event.
func (s *Session) Done() <-chan struct{} { return s.conn.Done() }

// Err returns the *SessionError that ended the session, or nil while it
// lives.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return nil
	}
	return s.err
}

// Reason returns why the session ended, nil while it lives.
func (s *Session) Reason() *Reason {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return nil
	}
	return s.err.Reason
}

// Peer returns the identity of the process at the other end, as
// Connection.Peer does: for a named service, known once its first frame
// has arrived (before any reply); nil once the session is over.
func (s *Session) Peer() *Peer { return s.conn.Peer() }

// sessionHandler is a session's connection's handler: it hands messages
// to the session's handler, ends the session when its peer goes, and
// gives the session's handler the *SessionError as its last event.
type sessionHandler struct{ s *Session }

func (h sessionHandler) HandleMessage(ctx context.Context, m *Message) {
	if h.s.h != nil {
		h.s.h.HandleMessage(ctx, m)
	}
}

func (h sessionHandler) HandleEvent(err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		se := h.s.end(err)
		if h.s.h != nil {
			h.s.h.HandleEvent(se)
		}
	case errors.Is(err, ErrInterrupted):
		// The session is over; its handler hears so in the final event.
		h.s.check(err)
	default: // ErrTerminationImminent
		if h.s.h != nil {
			h.s.h.HandleEvent(err)
		}
	}
}
