package xpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// Handler receives what arrives on a connection: messages, one at a time in
// the order they were sent, and events (ErrInterrupted,
// ErrTerminationImminent, and last of all the ErrInvalid that ends the
// connection), in order with the messages.
type Handler interface {
	// HandleMessage handles one message. It may run on the goroutine that
	// read the message (see "Goroutines" in the package documentation).
	// ctx ends when the connection is cancelled, or is found to have
	// ended, which a peer's exit during HandleMessage may only be once
	// it has returned.
	HandleMessage(ctx context.Context, m *Message)
	// HandleEvent reports a change of the connection's state. The last
	// call, and only the last, carries an error matching ErrInvalid.
	HandleEvent(err error)
}

// HandlerFunc adapts a function to a Handler that ignores events.
type HandlerFunc func(ctx context.Context, m *Message)

// HandleMessage calls f.
func (f HandlerFunc) HandleMessage(ctx context.Context, m *Message) { f(ctx, m) }

// HandleEvent does nothing.
func (f HandlerFunc) HandleEvent(error) {}

type connState uint8

const (
	stateInactive connState = iota
	stateActive
	stateFinal // cancelled or invalid
)

// Connection is one XPC connection: to a listener through an endpoint, to a
// named service, or, on the service side, to one peer. It is created
// inactive, given a Handler, activated, and used until it is cancelled or
// becomes invalid; both are final. All methods are safe for concurrent use.
//
// How its state is owned (the goroutines are described in the package
// documentation, "Goroutines"):
//   - cfg, dial and reconnect are set when the connection is made
//     (newConnection, newDialConnection) and never change; onFinal too, by
//     setOnFinal before the connection is shared. ctx, cancel and done are
//     made with it.
//   - mu guards the lifecycle (state, final), the handler, the current link
//     and the dial in progress (dialing), and the event queue with its
//     dispatcher role (queue, qhead, running, suspended).
//   - The dispatcher role (dispatch.go) is held by one goroutine at a time
//     (running): it alone takes events off the queue and calls the handler,
//     without holding mu, so deliveries are in order and one at a time.
//   - Each link owns its own state (link); the connection only replaces
//     its current link, under mu, when a link dies and a send dials anew.
//   - workers counts the goroutines that may still use the connection's
//     descriptors; the goroutine that delivers the final event waits for
//     them (finish) before onFinal runs and done closes.
type Connection struct {
	cfg config
	// dial makes a new link; nil for a peer connection, whose one link was
	// accepted. reconnect says whether losing the link interrupts
	// (named services) rather than invalidates the connection.
	dial      func(ctx context.Context) (linkEnd, error)
	reconnect bool
	onFinal   func(*Connection)

	ctx    context.Context // ends when the connection is final
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	state     connState
	handler   Handler
	link      *link
	dialing   chan struct{}
	final     error
	reason    *Reason // the reason of final, or of the last interruption
	queue     []event // queue[qhead:] is waiting for delivery
	qhead     int
	running   bool // a goroutine is delivering (the dispatcher role)
	suspended int
	// workers counts the goroutines that may still use the connection's
	// descriptors (link readers, dials in progress); finish waits for
	// them before onFinal releases what they use.
	workers sync.WaitGroup
}

type event struct {
	msg   *Message
	err   error
	final bool
}

func newConnection(cfg config) *Connection {
	c := &Connection{cfg: cfg, done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// newDialConnection returns an inactive connection that makes its links
// with dial, at its first send and, if reconnect, again after each
// interruption.
func newDialConnection(cfg config, dial func(ctx context.Context) (linkEnd, error), reconnect bool) *Connection {
	c := newConnection(cfg)
	c.dial, c.reconnect = dial, reconnect
	return c
}

// SetHandler sets the handler. It must be called before Activate, and
// panics on a connection that is active; a connection without a handler
// answers every message wanting a reply with ErrNoReply and ignores
// events. On a connection that has already ended (a peer its listener
// cancelled before the listener's handler set it up, for one) it does
// nothing, as Activate does: the handler would never be called.
func (c *Connection) SetHandler(h Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateActive:
		panic("xpc: SetHandler on a connection that was already activated")
	case stateFinal:
		return
	}
	c.handler = h
}

// Activate starts the connection: from now on it sends, and delivers what
// arrives to its handler. Activating twice does nothing.
func (c *Connection) Activate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateInactive {
		return
	}
	c.state = stateActive
	if c.link != nil {
		c.startReader(c.link)
	}
	c.kick()
}

// Suspend stops delivery to the handler until a matching Resume. Calls
// nest. Messages keep arriving meanwhile, up to the flow-control window,
// after which the peer's sends wait. The final event is a delivery too: a
// connection that ends while suspended closes Done only after Resume.
func (c *Connection) Suspend() {
	c.mu.Lock()
	c.suspended++
	c.mu.Unlock()
}

// Resume undoes one Suspend. It panics if there is no Suspend to undo.
func (c *Connection) Resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.suspended == 0 {
		panic("xpc: Resume without Suspend")
	}
	c.suspended--
	c.kick()
}

// Cancel ends the connection for good. Pending replies fail with ErrInvalid
// and ErrCanceled, and the handler receives one last event saying so. Cancel
// does not wait; Done is closed once everything has stopped.
func (c *Connection) Cancel() {
	c.invalidate(invalidError(ErrCanceled, nil, "canceled by its owner"))
}

// Done returns a channel that is closed when the connection has ended and its
// handler has received its last event.
func (c *Connection) Done() <-chan struct{} { return c.done }

// Err returns the error that ended the connection, or nil while it lives.
func (c *Connection) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.final
}

// Reason returns why the connection is invalid, or, while it lives, why it
// was last interrupted; nil if neither has happened. Every connection has
// one once it has failed (xpc_connection_copy_invalidation_reason in
// libxpc): what xpcd or the listener said, the requirement clause the peer
// failed, how the service ended, or what this side saw.
func (c *Connection) Reason() *Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// noteFailure records the reason of err, with which a link of c failed,
// unless c has ended already (its final error's reason stands).
func (c *Connection) noteFailure(err error) {
	c.mu.Lock()
	if c.state != stateFinal {
		c.noteReason(err)
	}
	c.mu.Unlock()
}

// noteReason records the reason of err, a connection's failure, for
// Reason. Called with c.mu held.
func (c *Connection) noteReason(err error) {
	var ce *ConnError
	if errors.As(err, &ce) && ce.Reason != nil {
		c.reason = ce.Reason
	}
}

// Peer returns the identity of the process at the other end, or nil while
// it is not known: before the first send, between an interruption and the
// next send, and on a named-service connection until the service's first
// frame has arrived (it comes before any reply).
func (c *Connection) Peer() *Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.link == nil {
		return nil
	}
	return c.link.remotePeer()
}

// announceTermination tells the peer that this process is about to exit,
// and why (wire.Term*). A connection without a link has nobody to tell.
func (c *Connection) announceTermination(ctx context.Context, why uint64) error {
	l := c.currentLink()
	if l == nil {
		return nil
	}
	return l.sendTerminating(ctx, why)
}

// Transactions returns the count this connection's incoming requests are
// counted in.
func (c *Connection) Transactions() *Transactions { return c.cfg.tx }

// Send sends msg without waiting for a reply. It blocks only while the peer
// is behind by a full flow-control window (256 messages, or its
// WithMaxQueuedBytes of message bytes) or the socket buffer is full, and
// returns ctx's error if ctx ends first. Given a context that has already
// ended, it sends nothing and returns the context's error (TrySend is the
// send that never waits).
func (c *Connection) Send(ctx context.Context, msg *Dictionary) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l, err := c.getLink(ctx, false)
	if err != nil {
		return err
	}
	return l.sendMessage(ctx, wire.KindMessage, 0, msg)
}

// SendWithReply sends msg and waits for the reply, until ctx ends. A reply
// that is an error object is returned as a *RemoteError.
func (c *Connection) SendWithReply(ctx context.Context, msg *Dictionary) (*Dictionary, error) {
	// The call never leaves this function, and once it is finished the
	// link holds no reference to it: it can be used again.
	call := callPool.Get().(*Call)
	l := c.send(ctx, call, msg, true)
	reply, err := call.Wait(ctx)
	if l != nil {
		// A link this call dialed got no watcher, so that the call could
		// read its reply without waiting for one to start (see
		// readRole.deferred); it needs one from now on, whatever happened.
		l.ensureWatcher()
	}
	call.reset()
	callPool.Put(call)
	return reply, err
}

// Go sends msg and returns at once with a Call that completes when the reply
// arrives. ctx bounds the sending only; Call.Wait takes its own. Given a
// context that has already ended, it sends nothing, and the call completes
// with the context's error.
func (c *Connection) Go(ctx context.Context, msg *Dictionary) *Call {
	call := new(Call)
	c.send(ctx, call, msg, false)
	return call
}

// send sends msg as a request for call and returns the link it went on, or
// nil. selfRead says the caller will wait for the reply with Wait.
func (c *Connection) send(ctx context.Context, call *Call, msg *Dictionary, selfRead bool) *link {
	if err := ctx.Err(); err != nil {
		call.finish(nil, err)
		return nil
	}
	l, err := c.getLink(ctx, selfRead)
	if err != nil {
		call.finish(nil, err)
		return nil
	}
	l.request(ctx, call, msg, selfRead)
	return l
}

// getLink returns the live link, dialing one if the connection has none.
// A link dialed for a caller that will read its reply itself (selfRead)
// gets its watcher only once that caller is done (readRole.deferred).
func (c *Connection) getLink(ctx context.Context, selfRead bool) (*link, error) {
	for {
		c.mu.Lock()
		switch {
		case c.state == stateInactive:
			c.mu.Unlock()
			return nil, errNotActivated
		case c.state == stateFinal:
			err := c.final
			c.mu.Unlock()
			return nil, err
		case c.link != nil && c.link.dead() == nil:
			l := c.link
			c.mu.Unlock()
			return l, nil
		case c.link != nil && !c.reconnect:
			// Dead, and its reader has not yet made the connection final:
			// report what killed it.
			err := c.link.dead()
			c.mu.Unlock()
			return nil, err
		case c.link != nil:
			// Dead, its reader not yet through linkDied: a connection that
			// reconnects dials a new link now rather than fail on this one.
			c.link = nil
			c.mu.Unlock()
			continue
		case c.dial == nil:
			err := invalidError(ErrPeerGone, nil, "peer connection lost")
			c.mu.Unlock()
			return nil, err
		case c.dialing != nil:
			w := c.dialing
			c.mu.Unlock()
			select {
			case <-w:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		w := make(chan struct{})
		c.dialing = w
		c.workers.Add(1)
		c.mu.Unlock()
		return c.dialNew(ctx, w, selfRead)
	}
}

// dialNew dials a link for getLink, which has set c.dialing to w and
// counted the dial in c.workers, and makes it the connection's.
func (c *Connection) dialNew(ctx context.Context, w chan struct{}, selfRead bool) (*link, error) {
	end, err := c.dialLink(ctx)
	if err == nil && end.peer != nil {
		// Known at connect (an endpoint's listener): checked before the
		// link is used. A named service is checked at its hello.
		if err = c.cfg.checkPeer(end.peer); err != nil {
			end.close()
		}
	}

	c.mu.Lock()
	c.dialing = nil
	close(w)
	c.workers.Done()
	if err != nil && c.state == stateFinal {
		// Cancelled while dialing: report why.
		err = c.final
	}
	if err != nil {
		c.mu.Unlock()
		var ce *ConnError
		if errors.As(err, &ce) && ce.Kind == ErrInvalid {
			c.invalidate(err)
		}
		return nil, err
	}
	if c.state == stateFinal {
		err := c.final
		c.mu.Unlock()
		end.close()
		return nil, err
	}
	l := newLink(c, &c.cfg, c.reconnect, end)
	c.link = l
	c.workers.Add(1) // the link's count, until its last watcher ends
	l.startReading(selfRead)
	c.mu.Unlock()
	l.sendWindow()
	return l, nil
}

// dialLink dials, giving up when ctx ends or the connection does. A
// context that has already ended (TrySend's) does not dial.
func (c *Connection) dialLink(ctx context.Context) (linkEnd, error) {
	if err := ctx.Err(); err != nil {
		return linkEnd{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	return c.dial(ctx)
}

// startReader starts l's first watcher (read.go); c.mu is held. The link
// holds one count in c.workers until its last watcher has ended.
func (c *Connection) startReader(l *link) {
	c.workers.Add(1)
	l.startReading(false)
}

// linkDied is called once by a link's last watcher when the link has failed:
// connections that can reconnect are interrupted, others become invalid.
// It reports whether the watcher is to deliver the event itself
// (deliverQueued, once it has left c.workers): the dispatcher role is then
// its, and no goroutine is started for it.
func (c *Connection) linkDied(l *link, err error) (run bool) {
	defer c.workers.Done() // the link's count
	if !errors.Is(err, ErrInterrupted) {
		// invalidate clears c.link and does nothing if already final.
		return c.invalidateRun(err, true)
	}
	c.mu.Lock()
	if c.link == l {
		c.link = nil
	}
	if c.state != stateFinal {
		c.noteReason(err)
	}
	c.mu.Unlock()
	return c.enqueueRun(event{err: err}, true) // dropped if the connection is final
}

// invalidate makes the connection final with err: the link is closed, its
// pending calls fail, and the handler gets err as its last event.
func (c *Connection) invalidate(err error) {
	c.invalidateRun(err, false)
}

// invalidateRun is invalidate; with inline, a dispatcher is not started:
// the caller is told to deliver instead (see claim).
func (c *Connection) invalidateRun(err error, inline bool) (run bool) {
	c.mu.Lock()
	if c.state == stateFinal {
		c.mu.Unlock()
		return false
	}
	wasActive := c.state == stateActive
	c.state = stateFinal
	c.final = err
	c.noteReason(err)
	l := c.link
	c.link = nil
	c.queue = append(c.queue, event{err: err, final: true})
	var never []event
	if !wasActive {
		// Never activated: nobody will dispatch, so finish here.
		never = c.queue[c.qhead:]
		c.queue, c.qhead = nil, 0
	}
	if inline {
		run = c.claim()
	} else {
		c.kick()
	}
	c.mu.Unlock()
	for _, e := range never {
		if e.msg != nil {
			e.msg.drop()
		}
	}
	if l != nil {
		l.fail(err)
	}
	c.cancel()
	if !wasActive {
		go c.finish()
	}
	return run
}

// finish waits for the workers, then closes done.
func (c *Connection) finish() {
	c.workers.Wait()
	if c.onFinal != nil {
		c.onFinal(c)
	}
	close(c.done)
}

// newPeerConnection makes an inactive connection over fd, a socket received
// in a connect request, whose peer is the process that created the socket
// pair. It takes ownership of fd, closing it on error.
func newPeerConnection(cfg config, fd int) (*Connection, error) {
	if err := sock.CheckSeqpacket(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("xpc: %w", err)
	}
	// An unconnected or listening socket has no peer; the kernel would
	// report pid 0.
	if _, err := unix.Getpeername(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("xpc: connect request with an unconnected socket: %w", err)
	}
	peer, err := peerOf(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	s, err := sock.New(fd, "xpc-peer")
	if err != nil {
		peer.close()
		return nil, fmt.Errorf("xpc: %w", err)
	}
	c := newConnection(cfg)
	c.link = newLink(c, &c.cfg, c.reconnect, linkEnd{s: s, peer: peer})
	return c, nil
}

// setOnFinal sets the function called once the connection has ended; it
// is called before the connection is shared.
func (c *Connection) setOnFinal(fn func(*Connection)) { c.onFinal = fn }

// refuse turns a peer connection a listener accepted away, before its
// handler sees it: the peer gets a refused frame holding eo in place of
// the hello, and the connection ends with err.
func (c *Connection) refuse(eo *ErrorObject, err error) {
	if l := c.currentLink(); l != nil {
		l.sendRefusal(eo)
	}
	c.invalidate(err)
}

// greet sends an admitted peer connection's first frames, ahead of any
// reply: the hello (a client that reached us by name learns who we are
// from the credentials the kernel stamps on it) and our window. The
// connection is shared by then (Listener.Peers), so it may already have
// been cancelled: it then has no link, and nobody to greet.
func (c *Connection) greet() {
	if l := c.currentLink(); l != nil {
		l.sendHello()
		l.sendWindow()
	}
}

// currentLink returns the connection's link, nil if it has none.
func (c *Connection) currentLink() *link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.link
}

// cancelIfInactive ends the connection with err if it was never activated.
func (c *Connection) cancelIfInactive(err error) {
	c.mu.Lock()
	inactive := c.state == stateInactive
	c.mu.Unlock()
	if inactive {
		c.invalidate(err)
	}
}

// dropCurrent cancels c after clearing *cur, guarded by mu, if it is
// still c: the owner of a current connection (a Bootstrap, a Service's
// check-in channel) forgets one that failed before its end is seen.
func dropCurrent(mu *sync.Mutex, cur **Connection, c *Connection) {
	mu.Lock()
	if *cur == c {
		*cur = nil
	}
	mu.Unlock()
	c.Cancel()
}
