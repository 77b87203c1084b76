package xpc

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// link is one connected socket under a Connection, with the state that
// lives and dies with it: the reply table, flow-control credits and the
// peer's identity. A Connection to a named service goes through several
// links over its life; any other has one.
//
// How its state is owned:
//   - c, cfg, s, reconnect, lookup, ctx and cancel are set by newLink and
//     never change; helloSeen is made before the link is used
//     (awaitAdmission) and closed once.
//   - mu guards the reply table (pending, abandoned, nextID), err and the
//     read role (rd, read.go). err is set once, by fail, which fails every
//     pending call, then cancels ctx and closes the socket. A call leaves
//     the table finished, in the critical section that takes it out, so
//     whoever finds the link dead (its last watcher, which reports the
//     end) finds each of its calls answered or failed, even while the
//     goroutine that failed the link, or read a reply, has not yet
//     returned.
//   - Reading is the read role's: only its holder reads s and runs handle,
//     and so is the only writer of what handle sets: peer (once, from the
//     hello; nil until then on a looked-up link), dialed (cleared by the
//     hello), announced, grantWanted, and the counts of what was read
//     (outstanding and queued grow, ackDue).
//   - Sending needs no role (send.go): any goroutine sends, the socket
//     taking one datagram at a time; credits has its own lock.
//   - The other counters are atomics shared by the roles that meet on
//     them: the dispatcher counts messages dequeued (outstanding and
//     queued shrink, ungranted and ungrantedBytes grow) and whoever
//     grants swaps those back to zero; unread grows as out-of-line replies
//     are sent and shrinks with the peer's acks, read by the reader;
//     acking is held by the one goroutine sending acknowledgements.
type link struct {
	// local is set, alone with peer, on the link of a message made by
	// NewLocalMessage, which has no connection: where its answer goes.
	local *localSink

	c    *Connection
	cfg  *config // the connection's, which never changes
	s    *sock.Socket
	peer atomic.Pointer[Peer] // nil until known: a named service's comes with its hello
	// reconnect: losing the link interrupts the connection (a named
	// service's) rather than ending it.
	reconnect bool

	ctx    context.Context // ends when the link dies
	cancel context.CancelFunc

	credits credits // messages and requests we may still send

	mu      sync.Mutex
	pending map[uint64]*Call
	// abandoned holds the ids of calls whose caller gave up: their reply
	// is still due, and is discarded when it comes. Any other reply for
	// an id not pending is a protocol error.
	abandoned map[uint64]struct{}
	nextID    uint64
	err       error // why the link died, once it has

	rd readRole // who reads the socket (read.go), guarded by mu

	outstanding atomic.Int32 // received messages not yet dequeued
	ungranted   atomic.Int32 // dequeued messages not yet granted back
	// announced is the reason of the terminating frame that arrived, nil
	// until one has; the reader sets it, and whoever finds the link lost
	// reads it (interruptionReason).
	announced atomic.Pointer[Reason]
	// whyOnce finds out why, once, on a link that can reconnect, the
	// service went away: why (interruption.go).
	whyOnce sync.Once
	why     *Reason

	// helloSeen, made only for a connection DialUnix made, is closed when
	// the listener's hello has arrived or the link has died (see
	// Connection.awaitHello).
	helloSeen chan struct{}
	helloOnce sync.Once
	// dialed is set on a link DialUnix or an endpoint connected to a
	// listener, until the listener's hello: the listener may refuse the
	// connection, with a refused frame in place of the hello.
	dialed atomic.Bool
	// lookup is set on the client's end of a socket pair whose other end
	// went to xpcd in a pipelined lookup: only that xpcd may refuse the
	// connection, with a refused frame ahead of the service's hello.
	lookup *lookupRef
	// refusing is set by the reader once it has a refused frame in hand,
	// until it ends the link with it (sendFailed waits for that).
	refusing atomic.Bool

	// Byte limits (WithMaxQueuedBytes, WithMaxUnreadBytes).
	queued         atomic.Int64 // body bytes of received messages not yet dequeued
	ungrantedBytes atomic.Int64 // body bytes dequeued, not yet granted back
	grantWanted    atomic.Bool  // the peer is stalled: grant at the next chance
	unread         atomic.Int64 // out-of-line reply bytes sent, not yet acknowledged
	ackDue         atomic.Int64 // out-of-line reply bytes read, not yet acknowledged
	acking         atomic.Bool  // a goroutine is sending the acknowledgements due
}

// linkEnd is our end of a new link, as a dial or an accept makes it.
type linkEnd struct {
	s    *sock.Socket
	peer *Peer // nil if not known yet: a looked-up service's comes with its hello
	// lookup is set for a pipelined lookup: who may refuse the link.
	lookup *lookupRef
	// admission is set for a link connected through an endpoint: its
	// listener may refuse it in place of the hello (link.dialed).
	admission bool
}

// close closes what a dial made, when it is not to be used.
func (e linkEnd) close() {
	e.s.Close()
	e.peer.close()
}

// newLink returns c's link over end. cfg is c's configuration, which
// never changes; reconnect says whether losing the link interrupts c
// rather than ending it.
func newLink(c *Connection, cfg *config, reconnect bool, end linkEnd) *link {
	l := &link{c: c, cfg: cfg, s: end.s, reconnect: reconnect, lookup: end.lookup, pending: make(map[uint64]*Call)}
	l.peer.Store(end.peer)
	l.dialed.Store(end.admission)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.credits.init(cfg.maxUnread, l.waiting, l.sendStalled)
	l.s.SetOnBlock(l.waiting)
	return l
}

// fail kills the link: the socket and the peer's pidfd close, every pending
// call fails with err. It is idempotent; the first error stands.
func (l *link) fail(err error) {
	// The connection's Reason first: whoever sees a call fail below may
	// ask it at once.
	l.c.noteFailure(err)
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	l.err = err
	// Each pending call fails before mu is let go: from then on, a reader
	// that finds the link dead may end the connection (and Done close)
	// while this goroutine is still in what follows.
	for _, call := range l.pending {
		call.finish(nil, err)
	}
	l.pending = nil
	l.rd.wakeWaiter()
	l.mu.Unlock()
	l.cancel()
	l.closeHelloSeen()
	l.credits.fail(err)
	l.s.Close()
	l.peer.Load().close()
}

// remotePeer returns the peer's identity, nil while it is not known.
func (l *link) remotePeer() *Peer { return l.peer.Load() }

func (l *link) dead() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// lostError is the error for a peer that went away: an interruption for a
// connection that can reconnect, saying why (which may take
// exitReasonWait to find out), the end of any other.
func (l *link) lostError(cause error) error {
	if l.reconnect {
		return &ConnError{Kind: ErrInterrupted, Reason: l.interruptionReason(), Err: cause}
	}
	return invalidError(ErrPeerGone, cause, "peer %s went away", peerName(l.peer.Load()))
}

func peerName(p *Peer) string {
	if p == nil {
		return "(unknown)"
	}
	return fmt.Sprintf("pid %d", p.PID)
}

func (l *link) protocolError(format string, args ...any) error {
	return invalidError(ErrProtocol, nil, "peer %s: %s", peerName(l.peer.Load()), fmt.Sprintf(format, args...))
}

// handle handles one datagram read by the holder of the read role. A
// watcher (watcher true) may be asked to deliver a message itself: run is
// then true, and the connection's dispatcher role is the watcher's.
func (l *link) handle(d sock.Datagram, watcher bool) (run bool, err error) {
	defer d.Release()
	h, err := wire.ParseHeader(d.B)
	if err == nil && int(h.NFDs) != len(d.FDs) {
		err = fmt.Errorf("frame announces %d descriptors, %d arrived", h.NFDs, len(d.FDs))
	}
	if err != nil {
		d.CloseFDs()
		return false, l.protocolError("%s", causeText(err))
	}
	if h.Kind != wire.KindHello {
		d.ClosePIDFD()
	}
	switch h.Kind {
	case wire.KindHello:
		return false, l.readHello(h, &d)
	case wire.KindRefused:
		return false, l.readRefusal(h, &d)
	case wire.KindMessage, wire.KindRequest, wire.KindReply:
		return l.readBody(h, &d, watcher)
	case wire.KindCredit, wire.KindTerminating, wire.KindAck, wire.KindWindow, wire.KindStalled:
		if len(d.B) != wire.HeaderSize || len(d.FDs) != 0 || h.Flags != 0 {
			d.CloseFDs()
			return false, l.protocolError("%v frame with a body, descriptors or flags", h.Kind)
		}
		return false, l.readControl(h)
	}
	d.CloseFDs()
	return false, l.protocolError("unexpected %v frame", h.Kind)
}

// readControl handles a frame that is its header alone.
func (l *link) readControl(h wire.Header) error {
	switch h.Kind {
	case wire.KindTerminating:
		// One event per link: a peer repeating itself cannot grow the
		// queue. The id says why (any id is accepted: a newer peer may
		// know more reasons).
		if r := terminationReason(h.ID); l.announced.CompareAndSwap(nil, r) {
			l.c.enqueue(event{err: &ConnError{Kind: ErrTerminationImminent, Reason: r}})
		}
	case wire.KindCredit:
		msgs, bytes := int(h.ID&(1<<wire.CreditBytesShift-1)), int64(h.ID>>wire.CreditBytesShift)
		if h.ID == 0 || msgs > wire.CreditWindow || !l.credits.grant(msgs, bytes) {
			return l.protocolError("bad credit grant of %d messages and %d bytes", msgs, h.ID>>wire.CreditBytesShift)
		}
	case wire.KindWindow:
		if h.ID < wire.InitialWindow || h.ID > wire.MaxLimitBytes || !l.credits.setWindow(int64(h.ID)) {
			return l.protocolError("bad window of %d bytes, or a second one", h.ID)
		}
	case wire.KindAck:
		if h.ID == 0 || h.ID > wire.MaxLimitBytes || l.unread.Add(-int64(h.ID)) < 0 {
			return l.protocolError("acknowledged %d bytes of out-of-line replies, more than were sent", h.ID)
		}
	case wire.KindStalled:
		// Whoever sees the other's write grants: the dispatcher in
		// dequeued, or, if nothing is left to dequeue, this reader,
		// through a goroutine (a reader never waits to send).
		l.grantWanted.Store(true)
		if (l.ungranted.Load() > 0 || l.ungrantedBytes.Load() > 0) && l.grantWanted.CompareAndSwap(true, false) {
			go l.grant()
		}
	}
	return nil
}

// readHello takes the identity of a service from its hello frame: the
// credentials and pidfd the kernel attached to the datagram (SO_PASSCRED,
// SO_PASSPIDFD, turned on by the client for this one frame). A connection
// that already knows its peer ignores it.
func (l *link) readHello(h wire.Header, d *sock.Datagram) error {
	if len(d.B) != wire.HeaderSize || len(d.FDs) != 0 || h.Flags != 0 || h.ID != 0 {
		d.CloseFDs()
		return l.protocolError("hello frame with a body, descriptors, flags or id")
	}
	if l.dialed.Load() {
		// The listener has admitted us: from now on, a refused frame
		// is out of turn.
		l.dialed.Store(false)
		l.closeHelloSeen()
	}
	if l.peer.Load() != nil || d.Cred == nil {
		d.ClosePIDFD()
		return nil
	}
	p := newPeer(d.Cred, d.PIDFD)
	d.PIDFD = -1
	l.peer.Store(p)
	// Stop stamping: only the hello's credentials were wanted.
	_ = l.s.SetPassCred(false)
	// The service is known now, before anything it sends is delivered.
	return l.cfg.checkPeer(p)
}

// awaitAdmission readies a link DialUnix made, before it is used, to be
// admitted by the listener's hello or refused in its place.
func (l *link) awaitAdmission() {
	l.dialed.Store(true)
	l.helloSeen = make(chan struct{})
}

// awaitHello waits, on a link DialUnix made, for the listener's hello,
// and returns the link's error if it died instead (refused, say), or ctx's
// if ctx ends first. On any other link it returns nil at once.
func (l *link) awaitHello(ctx context.Context) error {
	if l.helloSeen == nil {
		return nil
	}
	select {
	case <-l.helloSeen:
	case <-ctx.Done():
		return ctx.Err()
	}
	return l.dead()
}

// closeHelloSeen says that a dialed link's listener has answered, with
// its hello or by the link's end.
func (l *link) closeHelloSeen() {
	if l.helloSeen != nil {
		l.helloOnce.Do(func() { close(l.helloSeen) })
	}
}

// readBody handles a frame carrying a body. It owns d's descriptors.
func (l *link) readBody(h wire.Header, d *sock.Datagram, watcher bool) (bool, error) {
	if r := l.cfg.req; r != nil {
		// Read, so an exec before it was sent is seen; not yet
		// delivered. Without a requirement, this branch is all it costs.
		if err := l.recheckPeer(r); err != nil {
			d.CloseFDs()
			return false, err
		}
	}
	if h.Flags&wire.FlagNoReply != 0 && h.Kind != wire.KindReply {
		d.CloseFDs()
		return false, l.protocolError("no-reply flag on a %v frame", h.Kind)
	}
	body, fds, err := l.bodyOf(h, d)
	if err != nil {
		return false, err
	}
	l.cfg.mirror.received(l, h, body, len(fds))
	if h.Kind == wire.KindReply && h.Flags&wire.FlagNoReply != 0 {
		if len(body) != 0 || len(fds) != 0 {
			closeRawFDs(fds)
			return false, l.protocolError("no-reply frame with a body")
		}
		return false, l.complete(h.ID, nil, errNoReply)
	}
	if len(fds) > l.cfg.maxFDs {
		closeRawFDs(fds)
		return false, l.protocolError("%d descriptors in one message, limit %d", len(fds), l.cfg.maxFDs)
	}
	dec := Decoder{Limits: Limits{MaxSize: l.cfg.maxRecvSize}}
	obj, err := dec.Decode(body, fds)
	if err != nil {
		closeRawFDs(fds)
		return false, l.protocolError("%s", causeText(err))
	}
	if h.Kind == wire.KindReply {
		return false, l.readReply(h.ID, obj)
	}
	dict, ok := obj.(*Dictionary)
	if !ok {
		_ = CloseAttachments(obj)
		return false, l.protocolError("message is a %v, not a dictionary", obj.Type())
	}
	size := int64(len(body))
	if err := l.enqueued(size); err != nil {
		_ = CloseAttachments(obj)
		return false, err
	}
	m := newMessage(l.c, l, dict, h.ID, size, h.Kind == wire.KindRequest)
	if watcher {
		return l.c.enqueueInline(event{msg: m}), nil
	}
	l.c.enqueue(event{msg: m})
	return false, nil
}

// bodyOf returns a body frame's body and descriptors: inline, or read from
// its memfd (the first descriptor, closed here) if it is out of line. On
// error it has closed every descriptor.
func (l *link) bodyOf(h wire.Header, d *sock.Datagram) ([]byte, []int, error) {
	body, fds := d.B[wire.HeaderSize:], d.FDs
	if h.Flags&wire.FlagOutOfLine == 0 {
		return body, fds, nil
	}
	if len(fds) == 0 || len(body) != 0 {
		d.CloseFDs()
		return nil, nil, l.protocolError("out-of-line frame without its memfd")
	}
	b, err := wire.ReadOutOfLine(fds[0], l.cfg.maxRecvSize)
	unix.Close(fds[0])
	fds = fds[1:]
	if err != nil {
		closeRawFDs(fds)
		return nil, nil, l.protocolError("%s", causeText(err))
	}
	if h.Kind == wire.KindReply {
		// Its memfd is released: the replier may count it off.
		l.ack(int64(len(b)))
	}
	return b, fds, nil
}

// readReply completes request id's call with obj, the reply's decoded
// body: a dictionary, or an error object (a *RemoteError).
func (l *link) readReply(id uint64, obj Object) error {
	var err error
	switch v := obj.(type) {
	case *Dictionary:
		if err = l.complete(id, v, nil); err != nil {
			_ = CloseAttachments(v)
		}
	case *ErrorObject:
		if err = l.complete(id, nil, &RemoteError{Object: v}); err != nil {
			_ = CloseAttachments(v)
		}
	default:
		_ = CloseAttachments(obj)
		return l.protocolError("reply is a %v, not a dictionary", obj.Type())
	}
	return err
}

// complete hands a reply to its call. A reply nobody waits for any more
// (the caller gave up) is discarded. A reply for an id that was never
// issued, or was answered already, is a protocol error; the caller then
// still owns reply.
func (l *link) complete(id uint64, reply *Dictionary, err error) error {
	l.mu.Lock()
	call := l.pending[id]
	delete(l.pending, id)
	_, gaveUp := l.abandoned[id]
	delete(l.abandoned, id)
	if call != nil {
		call.finish(reply, err) // under mu (see link)
	}
	l.mu.Unlock()
	if call != nil {
		return nil
	}
	if gaveUp {
		if reply != nil {
			_ = CloseAttachments(reply)
		}
		return nil
	}
	return l.protocolError("reply for request %d, which is not pending", id)
}

// abandon gives up on call, request id, which fails with cause unless its
// result is in already. Its reply, when it comes, is discarded.
func (l *link) abandon(id uint64, call *Call, cause error) {
	l.mu.Lock()
	if l.pending[id] == call {
		delete(l.pending, id)
		if l.abandoned == nil {
			l.abandoned = make(map[uint64]struct{})
		}
		l.abandoned[id] = struct{}{}
		call.finish(nil, cause) // under mu (see link)
	}
	l.mu.Unlock()
}
