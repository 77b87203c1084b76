package xpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// link is one connected socket under a Connection, with the state that
// lives and dies with it: the reply table, flow-control credits and the
// peer's identity. A Connection to a named service goes through several
// links over its life; any other has one.
type link struct {
	c    *Connection
	s    *sock.Socket
	peer atomic.Pointer[Peer] // nil until known: a named service's comes with its hello

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

	// The read role (read.go), guarded by mu.
	reading  bool // some goroutine holds the read role
	missed   bool // a watcher woke while the role was held
	watchers int  // watcher goroutines alive
	idle     int  // watchers not running a handler
	waiters  int  // goroutines waiting for credit or buffer space
	handoffs int  // callers that found a watcher reading, before a watch
	// deferred: the link has no watcher yet, because the caller that
	// dialed it reads its reply itself; it gets one when that caller is
	// done (ensureWatcher), or as soon as anything else needs reading.
	deferred bool
	// roleWanted: a watcher waits on roleFree for the role (no watch);
	// roleFree is made the first time one does.
	roleWanted bool
	roleFree   chan struct{}

	outstanding atomic.Int32 // received messages not yet dequeued
	ungranted   atomic.Int32 // dequeued messages not yet granted back
	terminating atomic.Bool  // a terminating frame arrived

	// helloSeen, made only for a connection DialUnix made, is closed when
	// the listener's hello has arrived or the link has died (see
	// Connection.awaitHello).
	helloSeen chan struct{}
	helloOnce sync.Once
	// dialed is set on a link DialUnix connected to a listener, until the
	// listener's hello: the listener may refuse the connection, with a
	// refused frame in place of the hello.
	dialed atomic.Bool
	// lookup is set on the client's end of a socket pair whose other end
	// went to xpcd in a pipelined lookup: only that xpcd may refuse the
	// connection, with a refused frame ahead of the service's hello.
	lookup *lookupRef

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
}

func newLink(c *Connection, end linkEnd) *link {
	l := &link{c: c, s: end.s, lookup: end.lookup, pending: make(map[uint64]*Call)}
	l.peer.Store(end.peer)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.credits.n = wire.CreditWindow
	l.credits.limit = c.cfg.maxUnread
	l.credits.window = min(wire.InitialWindow, c.cfg.maxUnread)
	l.credits.onWait = l.waiting
	l.credits.stall = l.sendStalled
	l.s.SetOnBlock(l.waiting)
	return l
}

// fail kills the link: the socket and the peer's pidfd close, every pending
// call fails with err. It is idempotent; the first error stands.
func (l *link) fail(err error) {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	l.err = err
	pending := l.pending
	l.pending = nil
	l.wakeRoleWaiterLocked()
	l.mu.Unlock()
	l.cancel()
	l.closeHelloSeen()
	l.credits.fail(err)
	l.s.Close()
	l.peer.Load().close()
	for _, call := range pending {
		call.finish(nil, err)
	}
}

func (l *link) dead() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// lostError is the error for a peer that went away: an interruption for a
// connection that can reconnect, the end of any other.
func (l *link) lostError(cause error) error {
	if l.c.reconnect {
		return interruptedError(cause, "the service went away")
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
		return false, l.protocolError("%v", err)
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
		// queue.
		if !l.terminating.Swap(true) {
			l.c.enqueue(event{err: &ConnError{Kind: ErrTerminationImminent, Detail: "the peer is about to exit"}})
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
	return nil
}

// sendRefusal sends a refused frame holding eo, in place of the hello, to
// a peer the listener turns away. It does not wait: the socket is new, so
// a small frame goes at once; one that cannot go is not sent, and the
// peer sees only its connection end.
func (l *link) sendRefusal(eo *ErrorObject) {
	body, err := Encode(eo)
	if err != nil {
		return
	}
	frame := make([]byte, wire.HeaderSize, wire.HeaderSize+len(body))
	wire.PutHeader(frame, wire.Header{Kind: wire.KindRefused})
	frame = append(frame, body...)
	_ = l.sendNow(frame)
}

// awaitAdmission readies a link DialUnix made, before it is used, to be
// admitted by the listener's hello or refused in its place.
func (l *link) awaitAdmission() {
	l.dialed.Store(true)
	l.helloSeen = make(chan struct{})
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
	body := d.B[wire.HeaderSize:]
	fds := d.FDs
	if h.Flags&wire.FlagNoReply != 0 && h.Kind != wire.KindReply {
		d.CloseFDs()
		return false, l.protocolError("no-reply flag on a %v frame", h.Kind)
	}
	if h.Flags&wire.FlagOutOfLine != 0 {
		if len(fds) == 0 || len(body) != 0 {
			d.CloseFDs()
			return false, l.protocolError("out-of-line frame without its memfd")
		}
		b, err := wire.ReadOutOfLine(fds[0], l.c.cfg.maxRecvSize)
		unix.Close(fds[0])
		fds = fds[1:]
		if err != nil {
			closeRawFDs(fds)
			return false, l.protocolError("%v", err)
		}
		body = b
		if h.Kind == wire.KindReply {
			// Its memfd is released: the replier may count it off.
			l.ack(int64(len(body)))
		}
	}
	if h.Kind == wire.KindReply && h.Flags&wire.FlagNoReply != 0 {
		if len(body) != 0 || len(fds) != 0 {
			closeRawFDs(fds)
			return false, l.protocolError("no-reply frame with a body")
		}
		return false, l.complete(h.ID, nil, ErrNoReply)
	}
	if len(fds) > l.c.cfg.maxFDs {
		closeRawFDs(fds)
		return false, l.protocolError("%d descriptors in one message, limit %d", len(fds), l.c.cfg.maxFDs)
	}
	dec := Decoder{Limits: Limits{MaxSize: l.c.cfg.maxRecvSize}}
	obj, err := dec.Decode(body, fds)
	if err != nil {
		closeRawFDs(fds)
		return false, l.protocolError("%v", err)
	}
	if h.Kind == wire.KindReply {
		var err error
		switch v := obj.(type) {
		case *Dictionary:
			if err = l.complete(h.ID, v, nil); err != nil {
				_ = CloseAttachments(v)
			}
		case *ErrorObject:
			if err = l.complete(h.ID, nil, &RemoteError{Object: v}); err != nil {
				_ = CloseAttachments(v)
			}
		default:
			_ = CloseAttachments(obj)
			return false, l.protocolError("reply is a %v, not a dictionary", obj.Type())
		}
		return false, err
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
	m := &Message{Body: dict, conn: l.c, link: l, id: h.ID, size: uint32(size), wantsReply: h.Kind == wire.KindRequest}
	if m.wantsReply {
		m.txOpen.Store(true)
		l.c.cfg.tx.add(1)
	}
	if watcher {
		return l.c.enqueueInline(event{msg: m}), nil
	}
	l.c.enqueue(event{msg: m})
	return false, nil
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
	l.mu.Unlock()
	if call != nil {
		call.finish(reply, err)
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

// abandon gives up on call, which fails with cause unless its result is in
// already. Its reply, when it comes, is discarded.
func (l *link) abandon(call *Call, cause error) {
	l.mu.Lock()
	owned := l.pending[call.id] == call
	if owned {
		delete(l.pending, call.id)
		if l.abandoned == nil {
			l.abandoned = make(map[uint64]struct{})
		}
		l.abandoned[call.id] = struct{}{}
	}
	l.mu.Unlock()
	if owned {
		call.finish(nil, cause)
	}
}

func (l *link) sendNoReply(ctx context.Context, id uint64) {
	if l.dead() != nil {
		return
	}
	if err := l.sendHeader(ctx, wire.Header{Kind: wire.KindReply, Flags: wire.FlagNoReply, ID: id}); err != nil {
		l.sendFailed(err)
	}
}

func (l *link) sendControl(k wire.Kind, id uint64) {
	if err := l.sendHeader(l.ctx, wire.Header{Kind: k, ID: id}); err != nil {
		l.sendFailed(err)
	}
}

// sendTerminating tells the peer that this process is about to exit.
func (l *link) sendTerminating(ctx context.Context) error {
	if err := l.sendHeader(ctx, wire.Header{Kind: wire.KindTerminating}); err != nil {
		return l.sendFailed(err)
	}
	return nil
}

// sendHello sends the hello frame. A client that sent what it had to and
// closed its end at once (xpc's pipelined lookup does) makes it fail with
// EPIPE; the link lives on, so that what the client sent is still read
// before the reader comes to the end.
func (l *link) sendHello() {
	l.sendSetup(wire.KindHello, 0)
}

// sendWindow announces this end's queued-bytes limit to the peer, which
// until then assumes wire.InitialWindow. Like the hello, it may fail with EPIPE
// on a link whose peer has sent what it had to and gone.
func (l *link) sendWindow() {
	if w := l.c.cfg.maxQueued; w != wire.InitialWindow {
		l.sendSetup(wire.KindWindow, uint64(w))
	}
}

func (l *link) sendSetup(k wire.Kind, id uint64) {
	if err := l.sendHeader(l.ctx, wire.Header{Kind: k, ID: id}); err != nil && !peerClosed(err) {
		l.sendFailed(err)
	}
}

// sendHeader sends a frame that is its header alone, waiting for buffer
// space until ctx ends.
func (l *link) sendHeader(ctx context.Context, h wire.Header) error {
	var b [wire.HeaderSize]byte
	wire.PutHeader(b[:], h)
	return wire.Send(ctx, l.s, b[:], nil)
}

// sendNow sends frame, without descriptors, at once or not at all (EAGAIN):
// for a frame its sender must not wait to send (an acknowledgement, sent
// by the reader), or need not (a refusal, on a socket nobody has written
// to yet).
func (l *link) sendNow(frame []byte) error {
	var err error
	if cerr := l.s.Control(func(fd int) { err = wire.SendNow(fd, frame, nil) }); cerr != nil {
		return cerr
	}
	return err
}

// peerClosed reports whether a send failed because the peer has closed its
// end: EPIPE, or ECONNRESET if frames of ours were left unread.
func peerClosed(err error) bool {
	return errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET)
}

// sendFailed turns a socket error into the link's death.
// refusalGrace is how long a send that found the peer gone, on a link that
// may be refused, waits for a reader that has the refusal in hand.
const refusalGrace = 100 * time.Millisecond

func (l *link) sendFailed(err error) error {
	if e := l.dead(); e != nil {
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if peerClosed(err) && ((l.lookup != nil && l.peer.Load() == nil) || l.dialed.Load()) {
		// xpcd may have refused the lookup, or the listener the
		// connection, and closed its end before this send: the reason
		// is waiting, unread. (ECONNRESET rather than EPIPE if it closed
		// with our window frame unread.)
		if e := l.refusedNow(); e != nil {
			l.fail(e)
			return l.dead()
		}
		// Or a reader has just taken the refusal off the socket and
		// is about to end the link with it: let its reason stand.
		t := time.NewTimer(refusalGrace)
		select {
		case <-l.ctx.Done():
			t.Stop()
			return l.dead()
		case <-t.C:
		}
	}
	e := l.lostError(err)
	l.fail(e)
	return e
}

// request registers call and sends msg as a request. selfRead says the
// caller will read its reply itself, so a link that has no watcher yet
// (deferred) need not start one for it.
func (l *link) request(ctx context.Context, call *Call, msg *Dictionary, selfRead bool) {
	if msg == nil {
		call.finish(nil, ErrNotMessage)
		return
	}
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		call.finish(nil, err)
		return
	}
	l.nextID++
	call.id, call.link = l.nextID, l
	l.pending[call.id] = call
	if !selfRead || !l.deferred {
		l.needReaderLocked()
	}
	l.mu.Unlock()
	if err := l.sendFrame(ctx, wire.KindRequest, call.id, msg); err != nil {
		l.mu.Lock()
		owned := l.pending[call.id] == call
		delete(l.pending, call.id)
		l.mu.Unlock()
		if owned {
			call.finish(nil, err)
		}
	}
}

// sendMessage sends a one-way message or a reply.
func (l *link) sendMessage(ctx context.Context, k wire.Kind, id uint64, body Object) error {
	if k == wire.KindMessage {
		if _, ok := body.(*Dictionary); !ok || body == (*Dictionary)(nil) {
			return ErrNotMessage
		}
	}
	return l.sendFrame(ctx, k, id, body)
}

// sendFrame encodes and sends one frame. A message or request takes its
// credit (a message, and its body's bytes) once encoded, and gives it back
// if it never left; an out-of-line reply is counted against the peer's
// unread bytes until the peer acknowledges it.
func (l *link) sendFrame(ctx context.Context, k wire.Kind, id uint64, body Object) (err error) {
	w := framePool.Get().(*writer)
	defer func() {
		w.reset(w.b[:0], Limits{})
		if cap(w.b) > wire.InlineMax {
			w.b = nil
		}
		framePool.Put(w)
	}()
	frame, fds, err := buildFrame(w, k, id, body, l.c.cfg.maxMessageSize, l.c.cfg.maxFDs)
	if err != nil {
		return &unsentError{err}
	}
	defer closeRawFDs(fds)
	size := int64(len(w.b) - wire.HeaderSize)
	switch {
	case k == wire.KindMessage || k == wire.KindRequest:
		if err := l.credits.acquire(ctx, size); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				l.credits.release(size)
			}
		}()
	case len(w.b) > wire.InlineMax: // an out-of-line reply
		if err := l.reserveUnread(size); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				l.unread.Add(-size)
			}
		}()
	}
	if err := wire.Send(ctx, l.s, frame, fds); err != nil {
		return l.sendFailed(err)
	}
	return nil
}
