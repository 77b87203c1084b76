package xpc

import (
	"context"
	"errors"
	"time"

	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// What a link sends. Any goroutine may send on a link: frames go out
// whole, one datagram each, through wire.Send (waiting for buffer space
// under the caller's context) or wire.SendNow (never waiting). A send that
// fails on the socket ends the link (sendFailed), with the reason a
// refusal waiting on the socket gives, if one does.

// request registers call and sends msg as a request. selfRead says the
// caller will read its reply itself, so a link that has no watcher yet
// (deferred) need not start one for it.
func (l *link) request(ctx context.Context, call *Call, msg *Dictionary, selfRead bool) {
	if msg == nil {
		call.finish(nil, errNotMessage)
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
	id := l.nextID
	call.bind(l, id)
	l.pending[id] = call
	if l.rd.needWatcher(false, selfRead) {
		l.startWatcherLocked()
	}
	l.mu.Unlock()
	if err := l.sendFrame(ctx, wire.KindRequest, id, msg); err != nil {
		l.mu.Lock()
		if l.pending[id] == call {
			delete(l.pending, id)
			call.finish(nil, err) // under mu (see link)
		}
		l.mu.Unlock()
	}
}

// sendMessage sends a one-way message or a reply.
func (l *link) sendMessage(ctx context.Context, k wire.Kind, id uint64, body Object) error {
	if k == wire.KindMessage {
		if _, ok := body.(*Dictionary); !ok || body == (*Dictionary)(nil) {
			return errNotMessage
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
	frame, fds, err := buildFrame(w, k, id, body, l.cfg.maxMessageSize, l.cfg.maxFDs)
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
	l.cfg.mirror.sent(l, k, id, w.b[wire.HeaderSize:], len(w.att))
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
	_ = l.sendNow(wire.RefusedFrame(body))
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

// sendTerminating tells the peer that this process is about to exit, and
// why (wire.Term*).
func (l *link) sendTerminating(ctx context.Context, why uint64) error {
	if err := l.sendHeader(ctx, wire.Header{Kind: wire.KindTerminating, ID: why}); err != nil {
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
// until then assumes wire.InitialWindow. Like the hello, it may fail with
// EPIPE on a link whose peer has sent what it had to and gone.
func (l *link) sendWindow() {
	if w := l.cfg.maxQueued; w != wire.InitialWindow {
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

// refusalGrace is how long a send that found the peer gone, on a link that
// may be refused, waits for a reader that may have the refusal in hand;
// refusalHeld how long, at most, once the reader has said it has
// (link.refusing), however slowly it is scheduled.
const (
	refusalGrace = 100 * time.Millisecond
	refusalHeld  = 5 * time.Second
)

// awaitRefusal waits up to d for the link to end, and reports whether it
// has.
func (l *link) awaitRefusal(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.ctx.Done():
		return true
	case <-t.C:
		return false
	}
}

// sendFailed turns a socket error into the link's death, and returns the
// error the send fails with.
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
		if l.awaitRefusal(refusalGrace) || (l.refusing.Load() && l.awaitRefusal(refusalHeld)) {
			return l.dead()
		}
	}
	e := l.lostError(err)
	l.fail(e)
	return e
}
