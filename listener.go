package xpc

import (
	"context"
	"errors"
	"sync"

	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// Listener accepts connections. An anonymous listener (NewListener) is
// reached through its endpoints: Endpoint returns one, which can be sent in a
// message to any process, and NewEndpointConnection connects to it. Each
// accepted client becomes a peer Connection handed to the listener's
// handler.
//
// Ownership: cfg, run and stop (and an anonymous listener's accept) are set
// when it is made, handler and admission before Activate; mu guards the
// rest. Its accept goroutine (acceptLoop, or run) alone admits peers, one
// at a time, reading handler and admission without the lock.
type Listener struct {
	cfg config

	mu      sync.Mutex
	state   connState
	handler func(peer *Connection)
	// admission, if set, may turn a peer away before the handler sees it;
	// set before Activate and only read after.
	admission func(peer *Peer) *ErrorObject
	peers     map[*Connection]struct{}
	accept    *sock.Socket // anonymous: the end connect requests arrive on
	epFD      int          // anonymous: the end endpoints duplicate; -1 once cancelled
	// For other listeners (a socket path, a service's check-in channel),
	// run accepts until stop is called; both are nil for anonymous ones.
	run  func(l *Listener)
	stop func()
	done chan struct{}
	err  error
}

// newListener returns an inactive listener that, once active, accepts by
// running run on a goroutine of its own until stop is called (both nil for
// an anonymous listener, which NewListener completes).
func newListener(cfg config, run func(l *Listener), stop func()) *Listener {
	return &Listener{cfg: cfg, epFD: -1, peers: make(map[*Connection]struct{}), done: make(chan struct{}), run: run, stop: stop}
}

// newAnonymousListener returns an inactive anonymous listener that reads
// connect requests on accept and whose endpoints duplicate epFD, the other
// end of accept's socket pair. It takes ownership of both.
func newAnonymousListener(cfg config, accept *sock.Socket, epFD int) *Listener {
	l := newListener(cfg, nil, nil)
	l.accept, l.epFD = accept, epFD
	return l
}

// SetHandler sets the function that receives each new peer connection, in
// the listener's accept goroutine, one at a time. It should set the peer's
// handler and Activate it, or Cancel it to turn the peer away; a peer left
// neither activated nor cancelled when the function returns is cancelled.
// It must be called before Activate.
func (l *Listener) SetHandler(fn func(peer *Connection)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != stateInactive {
		panic("xpc: Listener.SetHandler after Activate")
	}
	l.handler = fn
}

// SetAdmission sets a check each connecting peer must pass before it is
// handed to the handler. fn runs on the listener's accept goroutine, one
// peer at a time and in the order they connected, after the kernel has
// named the peer and before anything is sent to it or read from it. To
// admit the peer it returns nil. To turn it away it returns an error
// object saying why (its description and, by convention, a "reason"
// key): the peer is sent a refused frame holding it, in place of the
// hello, and its connection is closed; the handler never sees it. The
// dialing side's connection then fails with ErrInvalid and ErrDenied (or
// ErrServiceNotFound, ErrNotApproved, as the reason says), and the error
// carries the description and the reason. fn should be quick: the next
// peer waits for it. It must be called before Activate.
func (l *Listener) SetAdmission(fn func(peer *Peer) *ErrorObject) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != stateInactive {
		panic("xpc: Listener.SetAdmission after Activate")
	}
	l.admission = fn
}

// Activate starts accepting. Connect requests made before it wait.
func (l *Listener) Activate() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != stateInactive {
		return
	}
	if l.handler == nil {
		panic("xpc: Listener.Activate without a handler")
	}
	l.state = stateActive
	if l.run != nil {
		go func() {
			defer close(l.done)
			l.run(l)
		}()
		return
	}
	go l.acceptLoop()
}

func (l *Listener) isActive() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state == stateActive
}

// Transactions returns the count the listener's peers' requests are
// counted in.
func (l *Listener) Transactions() *Transactions { return l.cfg.tx }

// Peers returns the peer connections that are still alive.
func (l *Listener) Peers() []*Connection {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Connection, 0, len(l.peers))
	for c := range l.peers {
		out = append(out, c)
	}
	return out
}

// AnnounceTermination tells every peer that this process is about to exit:
// each peer's handler receives ErrTerminationImminent. Given a context
// that has already ended, it tells no one and returns the context's error.
func (l *Listener) AnnounceTermination(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var errs []error
	for _, c := range l.Peers() {
		if err := c.announceTermination(ctx, wire.TermUnspecified); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Cancel stops accepting; endpoints stop working. Peer connections already
// made live on. Done is closed once the accept goroutine has stopped.
func (l *Listener) Cancel() {
	l.shut(invalidError(ErrCanceled, nil, "listener canceled"))
}

// shut makes the listener final with err: connecting through its endpoints
// fails from now on, and connect requests not yet accepted are dropped
// (their dialers see the peer gone).
func (l *Listener) shut(err error) {
	l.mu.Lock()
	if l.state == stateFinal {
		l.mu.Unlock()
		return
	}
	wasActive := l.state == stateActive
	l.state = stateFinal
	l.err = err
	if l.epFD >= 0 {
		unix.Close(l.epFD)
		l.epFD = -1
	}
	l.mu.Unlock()
	if l.stop != nil {
		l.stop()
	} else {
		l.accept.Close()
	}
	if !wasActive {
		close(l.done)
	}
}

// Done returns a channel closed when the listener has stopped.
func (l *Listener) Done() <-chan struct{} { return l.done }

// admit makes fd, a connected socket whose creator or connector is the
// client, a peer connection and hands it to the handler. It takes
// ownership of fd.
func (l *Listener) admit(fd int) {
	c, err := newPeerConnection(l.cfg, fd)
	if err != nil {
		return
	}
	// The requirement (WithPeerRequirement) comes first: a peer that
	// fails it is seen by neither the admission check nor the handler.
	if err := l.cfg.checkPeer(c.Peer()); err != nil {
		c.refuse(requirementRefusal(err), err)
		return
	}
	if l.admission != nil {
		// Set before Activate, which started this goroutine (or made
		// the listener active, for a service's): no lock needed.
		if eo := l.admission(c.Peer()); eo != nil {
			c.refuse(eo, invalidError(ErrDenied, nil, "turned away: %s", eo.Description()))
			return
		}
	}
	c.setOnFinal(l.forget)
	l.mu.Lock()
	if l.state == stateFinal {
		// Read just before Cancel: too late.
		l.mu.Unlock()
		c.invalidate(invalidError(ErrDenied, nil, "the listener was canceled"))
		return
	}
	fn := l.handler
	l.peers[c] = struct{}{}
	l.mu.Unlock()
	l.peersChanged()
	c.greet()
	fn(c)
	c.cancelIfInactive(invalidError(ErrDenied, nil, "the listener did not accept the connection"))
}

func (l *Listener) forget(c *Connection) {
	l.mu.Lock()
	delete(l.peers, c)
	l.mu.Unlock()
	l.peersChanged()
}

// peersChanged tells whoever counts the listener's peers (a Service, which
// reports them to xpcd) that their number has changed.
func (l *Listener) peersChanged() {
	if fn := l.cfg.onPeers; fn != nil {
		fn()
	}
}

// peerCount returns how many peer connections are alive.
func (l *Listener) peerCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.peers)
}
