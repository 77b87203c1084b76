package xpc

import "sync"

// The listener's side of sessions, as Swift's XPCListener: each incoming
// session is accepted, with the handler of its messages, or rejected with
// a reason the client receives.

// SessionRequest is a client asking a listener for a session: the handler
// set with Listener.SetSessionHandler decides, with Accept or Reject, before
// anything is sent to the client or read from it. The first decision
// stands; later calls do nothing. A request decided neither way is
// rejected.
type SessionRequest struct {
	peer     *Peer
	decided  bool
	accepted bool
	handler  Handler
	reason   string
}

// Peer returns the client's identity, as the kernel gave it: pid, uid,
// gid and a pidfd.
func (r *SessionRequest) Peer() *Peer { return r.peer }

// Accept accepts the session: the client is sent the hello, and h receives
// its messages and events, as a peer connection's handler does. nil
// answers every message that wants a reply with ErrNoReply.
func (r *SessionRequest) Accept(h Handler) {
	if r.decided {
		return
	}
	r.decided, r.accepted, r.handler = true, true, h
}

// Reject turns the session away, saying why: the client's session ends
// with a *SessionError whose Reason has Code ReasonSessionRejected and
// Description reason, matching ErrSessionRejected, ErrDenied and
// ErrInvalid, CanRetry false. Its pending sends fail with it; none of its
// messages is handled.
func (r *SessionRequest) Reject(reason string) {
	if r.decided {
		return
	}
	r.decided, r.reason = true, reason
}

// SetSessionHandler sets the function that decides on each incoming
// session, in place of SetHandler and SetAdmission (it sets both). fn runs
// on the listener's accept goroutine, one client at a time, after the
// listener's peer requirement (WithPeerRequirement) has passed and before
// anything is sent to the client; it decides before it returns, and
// should be quick. An accepted client
// is activated with the handler Accept was given. It must be called before
// Activate, and works on every listener: NewListener's, ListenUnix's and
// Service.Listen's (a client that looked the name up through xpcd gets the
// rejection from the service).
func (l *Listener) SetSessionHandler(fn func(r *SessionRequest)) {
	g := &sessionGate{decide: fn, accepted: make(map[*Peer]Handler)}
	l.SetAdmission(g.admit)
	l.SetHandler(g.start)
}

// sessionGate carries a listener's decisions from its admission check,
// which sees the peer, to its handler, which gets the connection; both run
// for one client in turn, but a service's listener may admit two clients
// at once (serviceListener.deliver), so decisions are kept by peer.
type sessionGate struct {
	decide func(r *SessionRequest)

	mu sync.Mutex
	// accepted holds the handler of each peer accepted and not yet
	// started: one entry a client being admitted, as long as that takes,
	// and one for each client cancelled in between (maxGateEntries).
	accepted map[*Peer]Handler
}

// admit decides on one client: nil lets it in; otherwise the rejection the
// client is sent, in place of the hello.
func (g *sessionGate) admit(p *Peer) *ErrorObject {
	r := &SessionRequest{peer: p}
	g.decide(r)
	if !r.accepted {
		why := r.reason
		if !r.decided {
			why = "the listener neither accepted nor rejected the session"
		}
		return (&Reason{Code: ReasonSessionRejected, Description: why}).Object()
	}
	g.mu.Lock()
	if len(g.accepted) >= maxGateEntries {
		// Left by clients cancelled between admission and handler: no
		// more than two are ever in flight.
		clear(g.accepted)
	}
	g.accepted[p] = r.handler
	g.mu.Unlock()
	return nil
}

// maxGateEntries bounds a sessionGate's accepted table.
const maxGateEntries = 16

// start activates an accepted client's connection with its handler.
func (g *sessionGate) start(c *Connection) {
	p := c.Peer()
	g.mu.Lock()
	h, ok := g.accepted[p]
	delete(g.accepted, p)
	g.mu.Unlock()
	if !ok {
		// Cancelled since it was admitted: no link, no peer.
		c.Cancel()
		return
	}
	if h != nil {
		c.SetHandler(h)
	}
	c.Activate()
}
