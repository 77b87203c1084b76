package xpc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// Flow control (docs/PROTOCOL.md §7, "Flow control", "Byte flow
// control", "Unread replies"): what the reader counts as it queues
// messages, what the dispatcher grants back as it dequeues them, and the
// credits a sender takes before it sends.

// enqueued counts a received message of size body bytes against the
// message window and the queued-bytes limit. A message larger than the
// limit is taken only when nothing else is queued: a sender may send one
// when it has nothing outstanding (credits.acquire).
func (l *link) enqueued(size int64) error {
	if size > math.MaxUint32 {
		return l.protocolError("message body of %d bytes", size) // Message.size holds 32 bits
	}
	if n := l.outstanding.Add(1); n > wire.CreditWindow {
		return l.protocolError("peer sent more than %d messages without credit", wire.CreditWindow)
	}
	if q, limit := l.queued.Add(size), l.cfg.maxQueued; q > limit && q > size {
		return l.overLimit("%d bytes of messages and requests queued, limit %d", q, limit)
	}
	return nil
}

// overLimit is the error for a peer over one of the byte limits.
func (l *link) overLimit(format string, args ...any) error {
	return invalidError(ErrPeerOverLimit, nil, "peer %s: %s", peerName(l.peer.Load()), fmt.Sprintf(format, args...))
}

// dequeued is called as the dispatcher takes a message of size body bytes
// off the queue: it grants credit back to the peer in batches of messages
// or bytes, or at once if the peer has said it is stalled.
func (l *link) dequeued(size int64) {
	l.outstanding.Add(-1)
	l.queued.Add(-size)
	n := l.ungranted.Add(1)
	b := l.ungrantedBytes.Add(size)
	if n >= wire.CreditWindow/4 || b >= grantBytes || (l.grantWanted.Load() && l.grantWanted.CompareAndSwap(true, false)) {
		l.grant()
	}
}

// dropped releases a message of size body bytes that will never be
// dequeued (its connection is final): no credit is granted for it.
func (l *link) dropped(size int64) {
	l.outstanding.Add(-1)
	l.queued.Add(-size)
}

// grant grants back every message and byte dequeued and not yet granted,
// in one credit frame. It grants nothing on a dead link.
func (l *link) grant() {
	if l.dead() != nil {
		return
	}
	n, b := l.ungranted.Swap(0), l.ungrantedBytes.Swap(0)
	if n == 0 && b == 0 {
		return
	}
	l.sendControl(wire.KindCredit, uint64(n)|uint64(b)<<wire.CreditBytesShift)
}

// ack acknowledges n bytes of an out-of-line reply read. It is called by
// the holder of the read role, which must not wait for buffer space (the
// peer may be waiting for us to read): if the frame cannot go at once, a
// goroutine sends it, with whatever else is due by then.
func (l *link) ack(n int64) {
	l.ackDue.Add(n)
	if !l.acking.CompareAndSwap(false, true) {
		return // the goroutine sending acknowledgements takes this one too
	}
	n = l.ackDue.Swap(0)
	var b [wire.HeaderSize]byte
	wire.PutHeader(b[:], wire.Header{Kind: wire.KindAck, ID: uint64(n)})
	err := l.sendNow(b[:])
	if errors.Is(err, unix.EAGAIN) {
		l.ackDue.Add(n)
		go l.sendAcks()
		return
	}
	l.acking.Store(false)
	if err != nil {
		l.sendFailed(err)
	}
}

// sendAcks sends the acknowledgements due until none is, waiting for buffer
// space; it holds l.acking.
func (l *link) sendAcks() {
	for {
		n := l.ackDue.Swap(0)
		if n == 0 {
			l.acking.Store(false)
			if l.ackDue.Load() == 0 || !l.acking.CompareAndSwap(false, true) {
				return
			}
			continue
		}
		if err := l.sendHeader(l.ctx, wire.Header{Kind: wire.KindAck, ID: uint64(n)}); err != nil {
			l.sendFailed(err)
			return
		}
	}
}

// sendStalled tells the peer that a send waits for byte credit while
// bytes are outstanding, which the peer may be holding back in a batch not
// yet full.
func (l *link) sendStalled(ctx context.Context) error {
	if err := l.sendHeader(ctx, wire.Header{Kind: wire.KindStalled}); err != nil {
		return l.sendFailed(err)
	}
	return nil
}

// reserveUnread counts an out-of-line reply of size bytes about to be sent.
// A peer that has left so many unread that this one would take the count
// over the limit is cut off instead.
func (l *link) reserveUnread(size int64) error {
	limit := l.cfg.maxUnread
	n := l.unread.Add(size)
	if n <= limit || n == size {
		// Within the limit, or alone: one reply larger than the limit
		// goes when the peer has read everything else, so the limit
		// never caps the size of a reply (WithMaxMessageSize does).
		return nil
	}
	l.unread.Add(-size)
	l.fail(l.overLimit("%d bytes of out-of-line replies unread, limit %d", n, limit))
	return l.dead()
}

// credits is the send side of flow control: the messages, and the body
// bytes, that may be sent before the peer grants more. Every field is
// guarded by mu; any goroutine that sends takes credit (acquire), the
// link's reader adds the peer's grants and window.
type credits struct {
	mu sync.Mutex
	n  int // messages and requests we may still send
	// bytes is the body bytes of messages and requests sent and not yet
	// granted back; more may be sent while it stays within window, or
	// when it is zero (one message larger than the window, alone).
	bytes  int64
	window int64 // min(the peer's queued-bytes limit as announced, limit)
	limit  int64 // our own limit on bytes the peer leaves unread
	// windowed: the peer has announced its window. asked: a stalled
	// frame was sent since the last grant.
	windowed, asked bool
	wake            chan struct{}
	err             error
	// onWait is told when acquire starts (+1) and stops (-1) waiting.
	onWait func(delta int)
	// stall sends a stalled frame, for a sender waiting for bytes.
	stall func(ctx context.Context) error
}

// init readies the credits of a new link: the full message window, and
// the initial byte window, within limit, our own limit on what the peer
// leaves unread. onWait and stall are as in credits.
func (c *credits) init(limit int64, onWait func(delta int), stall func(ctx context.Context) error) {
	c.n = wire.CreditWindow
	c.limit = limit
	c.window = min(wire.InitialWindow, limit)
	c.onWait = onWait
	c.stall = stall
}

// acquire takes the credit for one message of size body bytes, waiting
// for it until ctx ends.
func (c *credits) acquire(ctx context.Context, size int64) error {
	waited := false
	defer func() {
		if waited && c.onWait != nil {
			c.onWait(-1)
		}
	}()
	for {
		c.mu.Lock()
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return err
		}
		if c.n > 0 && (c.bytes == 0 || c.bytes+size <= c.window) {
			c.n--
			c.bytes += size
			c.mu.Unlock()
			return nil
		}
		// Waiting for bytes: the peer may hold back a grant of less
		// than a batch; a stalled frame asks it not to.
		ask := c.n > 0 && !c.asked && c.stall != nil
		c.asked = c.asked || ask
		if c.wake == nil {
			c.wake = make(chan struct{})
		}
		w := c.wake
		c.mu.Unlock()
		if !waited && c.onWait != nil {
			waited = true
			c.onWait(1)
		}
		if ask {
			if err := c.stall(ctx); err != nil {
				c.mu.Lock()
				c.asked = false
				c.mu.Unlock()
				return err
			}
		}
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives back the credit of a message of size bytes that never left.
func (c *credits) release(size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	c.bytes -= size
	c.wakeLocked()
}

// grant adds the peer's grant of msgs messages and bytes body bytes; false
// if it grants what was never sent.
func (c *credits) grant(msgs int, bytes int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n+msgs > wire.CreditWindow || bytes > c.bytes {
		return false
	}
	c.n += msgs
	c.bytes -= bytes
	c.asked = false
	c.wakeLocked()
	return true
}

// setWindow takes the peer's announced queued-bytes limit; false if it was
// announced before.
func (c *credits) setWindow(w int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.windowed {
		return false
	}
	c.windowed = true
	c.window = min(w, c.limit)
	c.wakeLocked()
	return true
}

func (c *credits) wakeLocked() {
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
}

func (c *credits) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
	c.wakeLocked()
}

// grantBytes is how many dequeued body bytes a receiver lets gather before
// it grants them back without waiting for a batch of messages.
const grantBytes = 256 << 10
