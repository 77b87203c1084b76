package xpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/goxpc/xpc/internal/wire"
)

var callPool = sync.Pool{New: func() any { return new(Call) }}

// Message is an incoming message: its body, and the means to reply.
//
// Body is the handler's. The other fields are set when the message is read
// and do not change, except state, which the handler, a deferred reply and
// the dispatcher race to move on (open, deferred, replied: atomic, so one
// reply wins), and txOpen, the open transaction, ended once.
type Message struct {
	// Body is the message's dictionary, owned by the handler. Out-of-band
	// objects in it own their descriptors (see CloseAttachments).
	Body *Dictionary

	conn       *Connection
	link       *link
	id         uint64
	wantsReply bool
	state      atomic.Uint32
	txOpen     atomic.Bool
	// size is the body's bytes, counted in link.queued until dequeued (a
	// body's u32 lengths keep it under 4 GiB). Placed last, it fits the
	// padding: Message stays in the same allocation size class.
	size uint32
}

const (
	msgOpen uint32 = iota
	msgDeferred
	msgReplied
)

// newMessage makes the message read from l, request id if it wants a reply,
// with size body bytes (counted in l's queue until dequeued). A request
// opens a transaction in c's count until it is answered.
func newMessage(c *Connection, l *link, body *Dictionary, id uint64, size int64, wantsReply bool) *Message {
	m := &Message{Body: body, conn: c, link: l, id: id, size: uint32(size), wantsReply: wantsReply}
	if wantsReply {
		m.txOpen.Store(true)
		c.Transactions().add(1)
	}
	return m
}

// WantsReply reports whether the sender waits for a reply.
func (m *Message) WantsReply() bool { return m.wantsReply }

// Connection returns the connection the message arrived on.
func (m *Message) Connection() *Connection { return m.conn }

// Peer returns the sender's kernel-attested identity.
func (m *Message) Peer() *Peer { return m.link.remotePeer() }

// Defer lets the handler return without replying: the reply will be sent
// later, from any goroutine, with Reply or ReplyError. The message stays an
// open transaction until then.
func (m *Message) Defer() {
	m.state.CompareAndSwap(msgOpen, msgDeferred)
}

// Reply sends reply to the message's sender and ends its transaction. If
// ctx ends before the reply could be sent (the sender is behind by a full
// socket buffer), Reply returns ctx's error and nothing was sent: the
// message stays unanswered, an open transaction, and may be answered again.
// A context that has already ended sends nothing: Reply returns its error
// (TryReply is the reply that never waits). A reply that travels out of
// line (over 64 KiB) and would take the bytes the peer has left unread
// over WithMaxUnreadBytes is not sent: the peer is cut off, and Reply
// returns ErrPeerOverLimit. A reply that cannot be sent as it is (it does
// not encode, is larger than WithMaxMessageSize or carries more than
// WithMaxFDs descriptors) is answered with an error instead, which the
// sender's SendWithReply returns as ErrReplyFailed (or ErrNoReply, if not
// even that fits), and Reply returns why.
func (m *Message) Reply(ctx context.Context, reply *Dictionary) error {
	if reply == nil {
		return fmt.Errorf("xpc: Reply: %w", ErrNilObject)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.reply(ctx, reply)
}

// ReplyError answers the message with an error object; the sender's
// SendWithReply returns it as a *RemoteError. Like Reply, it sends nothing
// given a context that has already ended.
func (m *Message) ReplyError(ctx context.Context, e *ErrorObject) error {
	if e == nil {
		return fmt.Errorf("xpc: ReplyError: %w", ErrNilObject)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.reply(ctx, e)
}

func (m *Message) reply(ctx context.Context, body Object) error {
	if !m.wantsReply {
		return errNoReplyWanted
	}
	prev := msgOpen
	if !m.state.CompareAndSwap(msgOpen, msgReplied) {
		if !m.state.CompareAndSwap(msgDeferred, msgReplied) {
			return errAlreadyReplied
		}
		prev = msgDeferred
	}
	if m.link.local != nil {
		return m.link.local.reply(body) // NewLocalMessage's (message_local.go)
	}
	err := m.link.sendMessage(ctx, wire.KindReply, m.id, body)
	if unsent := (*unsentError)(nil); errors.As(err, &unsent) {
		// The reply cannot be sent as it is (it does not encode, is too
		// large, carries too many descriptors): the requester is told so
		// at once rather than wait for a reply that will never come.
		if m.link.sendMessage(ctx, wire.KindReply, m.id, replyFailedObject(unsent.err)) != nil {
			// Not even that fits (a tiny WithMaxMessageSize): the
			// requester gets ErrNoReply.
			m.link.sendNoReply(ctx, m.id)
		}
		err = unsent.err
	}
	if err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// ctx ended before the frame left (a datagram goes whole or
		// not at all): the message can still be answered.
		m.state.Store(prev)
		return err
	}
	m.endTransaction()
	return err
}

func (m *Message) endTransaction() {
	if m.txOpen.CompareAndSwap(true, false) {
		m.conn.Transactions().add(-1)
	}
}

// dequeued is called as the dispatcher takes the message off the queue:
// its link may grant credit back.
func (m *Message) dequeued() { m.link.dequeued(int64(m.size)) }

// handled is called once the handler has returned: a request it neither
// answered nor deferred is answered with no reply (ErrNoReply at the
// sender).
func (m *Message) handled(ctx context.Context) {
	if m.wantsReply && m.state.CompareAndSwap(msgOpen, msgReplied) {
		m.link.sendNoReply(ctx, m.id)
		m.endTransaction()
	}
}

// drop releases a message that will never reach a handler. The connection
// is final, so no credit is granted for it.
func (m *Message) drop() {
	m.link.dropped(int64(m.size))
	m.endTransaction()
	_ = CloseAttachments(m.Body)
}

// Call is a request in flight, made by Connection.Go.
//
// link and id are set once the request is registered with its link
// (bind). reply and err are written once, by whoever finishes the call
// (the link's reader with the reply, a failed send, an abandoning Wait),
// and read only after finished says so; mu guards done.
type Call struct {
	finished atomic.Bool // reply and err are set
	reply    *Dictionary
	err      error
	link     *link
	id       uint64

	mu   sync.Mutex
	done chan struct{} // made when first asked for
}

// Done returns a channel closed when the reply (or the error) is in.
func (c *Call) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.finished.Load() {
			close(c.done)
		}
	}
	return c.done
}

// Result returns the reply or error; valid once Done is closed.
func (c *Call) Result() (*Dictionary, error) { return c.reply, c.err }

// Wait waits for the reply until ctx ends. If ctx ends first, the call is
// abandoned: it completes with ctx's error (unless its result came in at
// the same moment), and the reply, when it comes, is discarded.
func (c *Call) Wait(ctx context.Context) (*Dictionary, error) {
	if c.isDone() {
		return c.reply, c.err
	}
	if c.link != nil {
		// Read the reply here if nobody else is reading.
		c.link.awaitReply(ctx, c)
		if c.isDone() {
			return c.reply, c.err
		}
	}
	done := c.Done()
	select {
	case <-done:
		return c.reply, c.err
	case <-ctx.Done():
		if c.link != nil {
			// Either this abandons the call, finishing it with ctx's
			// error, or its result is being delivered right now.
			c.link.abandon(c.id, c, ctx.Err())
		}
		<-done
		return c.reply, c.err
	}
}

func (c *Call) isDone() bool { return c.finished.Load() }

// bind records that the call is request id on l.
func (c *Call) bind(l *link, id uint64) { c.link, c.id = l, id }

func (c *Call) finish(reply *Dictionary, err error) {
	c.reply, c.err = reply, err
	c.mu.Lock()
	c.finished.Store(true)
	if c.done != nil {
		close(c.done)
	}
	c.mu.Unlock()
}

// reset readies a finished call for reuse. Taking the lock waits for
// finish to be through with the call.
func (c *Call) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished.Store(false)
	c.reply, c.err, c.link, c.id = nil, nil, nil, 0
	c.done = nil
}
