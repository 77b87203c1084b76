package xpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goxpc/xpc/internal/wire"
)

// Sends that never wait. A blocking send given a context that has already
// ended sends nothing; a caller that must not wait, and would rather queue
// what does not go at once (xpcd's channels to services and watchers do),
// uses these instead.

// ErrWouldBlock is returned by TrySend, TryReply and TryReplyError when the
// send would have to wait. Nothing was sent then.
var ErrWouldBlock = errors.New("send would have to wait")

var errWouldBlock = fmt.Errorf("xpc: %w", ErrWouldBlock)

// TrySend sends msg as Send does if it can go out without waiting. If it
// cannot, it sends nothing and returns ErrWouldBlock: when the peer is
// behind by a full flow-control window, when the socket buffer is full or
// another send holds the socket, and when the connection has no link to
// its peer (a service or endpoint connection before its first send, or
// after an interruption: TrySend does not connect). Its other errors are
// Send's.
func (c *Connection) TrySend(msg *Dictionary) error {
	l, err := c.getLink(noWait{}, false)
	if err == nil {
		err = l.sendMessage(noWait{}, wire.KindMessage, 0, msg)
	}
	return wouldBlock(err)
}

// TryReply replies as Reply does if the reply can go out without waiting.
// If it cannot (the socket buffer is full, or another send holds the
// socket), it sends nothing and returns ErrWouldBlock; the message stays
// unanswered, an open transaction, and may be answered again. Its other
// errors are Reply's.
func (m *Message) TryReply(reply *Dictionary) error {
	if reply == nil {
		return fmt.Errorf("xpc: TryReply: %w", ErrNilObject)
	}
	return wouldBlock(m.reply(noWait{}, reply))
}

// TryReplyError answers the message with an error object as ReplyError
// does, if it can go out without waiting; otherwise it is TryReply's
// ErrWouldBlock.
func (m *Message) TryReplyError(e *ErrorObject) error {
	if e == nil {
		return fmt.Errorf("xpc: TryReplyError: %w", ErrNilObject)
	}
	return wouldBlock(m.reply(noWait{}, e))
}

// wouldBlock turns the error of a send given noWait into the Try sends':
// noWait's context.Canceled, which only noWait can cause there, means a
// step would have waited.
func wouldBlock(err error) error {
	if errors.Is(err, context.Canceled) {
		return errWouldBlock
	}
	return err
}

// noWait is the context the Try sends pass down to the link and the
// socket, and never beyond: it has always ended, so each step of the send
// that would wait (for a link, for flow-control credit, for the socket)
// gives up at once with context.Canceled, and each step that need not
// wait goes ahead.
type noWait struct{}

func (noWait) Deadline() (time.Time, bool) { return time.Time{}, false }
func (noWait) Done() <-chan struct{}       { return closedChan }
func (noWait) Err() error                  { return context.Canceled }
func (noWait) Value(any) any               { return nil }

// closedChan is noWait's Done: closed from the start, so never changed.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()
