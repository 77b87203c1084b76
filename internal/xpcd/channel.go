package xpcd

import (
	"context"
	"errors"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
)

// channel sends to one peer connection (a service's check-in channel, or an
// xpcctl watching) from its own goroutine, in order, so that the
// supervisor's loop never waits for a peer: the loop appends, the outbox
// goroutine sends. A send can block (the peer is behind by a full
// flow-control window); only this goroutine waits then.
type channel struct {
	conn  *xpc.Connection
	limit int // most items waiting; 0: no limit
	// probe, if not nil, is a duplicate of xpcd's end of the socket, to
	// ask the kernel whether the far end has closed (hup) before the
	// connection's reader has noticed. Closed with the channel, so that
	// the far end sees the channel end when it does.
	probe *os.File

	mu      sync.Mutex
	items   []outItem
	busy    bool // items taken from the queue are being sent
	closed  bool
	full    bool
	wake    chan struct{}
	done    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	started bool
}

// outItem is one thing to send: a message, or a reply to a message.
type outItem struct {
	msg      *xpc.Dictionary
	fd       *xpc.FD          // owned by the item; closed once sent
	reply    *xpc.Message     // msg (or replyErr) answers this message
	replyErr *xpc.ErrorObject // an error reply
	// failed is called, from the outbox goroutine, with an item that
	// could not be sent (the connection ended, or the channel was
	// closed first). It takes ownership of fd. nil: fd is closed.
	failed func(outItem)
	// answered, if set, makes msg a request: it is called, from a
	// goroutine of its own, once the peer has answered (err nil, or the
	// error it answered with) or the request failed (never sent, the
	// connection or the channel ended first).
	answered func(err error)
	// sent, if set, is called once msg is written, from the goroutine
	// that wrote it: the outbox's, or send's caller (who must not hold
	// a lock sent takes).
	sent func()
}

func newChannel(conn *xpc.Connection, limit int) *channel {
	ctx, cancel := context.WithCancel(context.Background())
	return &channel{conn: conn, limit: limit, wake: make(chan struct{}, 1), done: make(chan struct{}), ctx: ctx, cancel: cancel}
}

// send queues it. It returns false when the channel is closed or full; the
// caller keeps what it holds then.
func (c *channel) send(it outItem) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.full {
		return false
	}
	if c.limit > 0 && len(c.items) >= c.limit {
		// A watcher that does not read: tell it, then stop.
		c.full = true
		c.items = append(c.items, outItem{msg: xpc.Dict("overflow", true)})
		c.kick()
		return false
	}
	if len(c.items) == 0 && !c.busy && c.ctx.Err() == nil {
		// Nothing is queued or being sent: send it now if the socket
		// takes it without waiting, which spares the outbox goroutine a
		// wake-up (a lookup's connect message, a check-in's reply).
		// An attempt that would have to wait sends nothing (a reply
		// included: TryReply does not use it up then), and it is queued.
		c.busy = true
		c.mu.Unlock()
		err := it.tryDeliver(c.conn)
		c.mu.Lock()
		c.busy = false
		if err == nil {
			if it.fd != nil {
				it.fd.Close()
			}
			if len(c.items) > 0 {
				c.startLocked()
			}
			if it.sent != nil {
				c.mu.Unlock()
				it.sent()
				c.mu.Lock()
			}
			return true
		}
		if c.closed {
			return false
		}
	}
	c.items = append(c.items, it)
	c.startLocked()
	return true
}

// startLocked makes the outbox goroutine send what is queued; c.mu is held.
func (c *channel) startLocked() {
	if !c.started {
		c.started = true
		go c.run()
	}
	c.kick()
}

// hup reports whether the far end has certainly closed its end.
func (c *channel) hup() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.probe == nil || c.closed {
		return c.closed
	}
	// Not Fd(): it would make the descriptor blocking, and the
	// connection shares its open file description.
	return fileHungUp(c.probe)
}

// fileHungUp reports whether the far end of the socket f has certainly
// closed its end.
func fileHungUp(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	hup := false
	rc.Control(func(fd uintptr) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		n, err := unix.Poll(pfd, 0)
		hup = err == nil && n > 0 && pfd[0].Revents&(unix.POLLHUP|unix.POLLRDHUP|unix.POLLERR) != 0
	})
	return hup
}

// hungUp reports whether the client of a queued socket has gone.
func hungUp(fd *xpc.FD) bool { return fd.File() != nil && fileHungUp(fd.File()) }

func (c *channel) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// close stops the channel: what was not sent yet fails (see outItem.failed).
// It does not wait and does not cancel the connection.
func (c *channel) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.cancel()
	if c.probe != nil {
		c.probe.Close()
	}
	if !c.started {
		items := c.items
		c.items = nil
		close(c.done)
		c.mu.Unlock()
		for _, it := range items {
			it.fail()
		}
		return
	}
	c.kick()
	c.mu.Unlock()
}

func (c *channel) run() {
	defer close(c.done)
	for {
		c.mu.Lock()
		items := c.items
		c.items = nil
		closed := c.closed
		c.busy = len(items) > 0
		c.mu.Unlock()
		for _, it := range items {
			if closed || c.ctx.Err() != nil {
				it.fail()
				continue
			}
			if err := it.deliver(c.ctx, c.conn); err != nil {
				it.fail()
				continue
			}
			if it.fd != nil {
				it.fd.Close()
			}
			if it.sent != nil {
				it.sent()
			}
		}
		c.mu.Lock()
		c.busy = false
		c.mu.Unlock()
		if closed {
			return
		}
		if len(items) == 0 {
			select {
			case <-c.wake:
			case <-c.ctx.Done():
			}
		}
	}
}

func (it outItem) deliver(ctx context.Context, conn *xpc.Connection) error {
	switch {
	case it.reply != nil && it.replyErr != nil:
		return it.reply.ReplyError(ctx, it.replyErr)
	case it.reply != nil:
		return it.reply.Reply(ctx, it.msg)
	case it.answered != nil:
		// The answer is waited for beside the outbox, which goes on
		// sending; ctx, the channel's, ends the wait when it closes.
		call := conn.Go(ctx, it.msg)
		go func() {
			reply, err := call.Wait(ctx)
			if reply != nil {
				xpc.CloseAttachments(reply)
			}
			it.answered(err)
		}()
		return nil
	}
	return conn.Send(ctx, it.msg)
}

// tryDeliver is deliver if it can go without waiting; otherwise it sends
// nothing (a reply is not used up) and fails with xpc.ErrWouldBlock. A
// request always goes through the outbox.
func (it outItem) tryDeliver(conn *xpc.Connection) error {
	switch {
	case it.answered != nil:
		return xpc.ErrWouldBlock
	case it.reply != nil && it.replyErr != nil:
		return it.reply.TryReplyError(it.replyErr)
	case it.reply != nil:
		return it.reply.TryReply(it.msg)
	}
	return conn.TrySend(it.msg)
}

func (it outItem) fail() {
	if it.answered != nil {
		go it.answered(errChannelClosed)
	}
	if it.failed != nil {
		it.failed(it)
		return
	}
	if it.fd != nil {
		it.fd.Close()
	}
}

// errChannelClosed is what a request that was never sent is answered with.
var errChannelClosed = errors.New("the channel closed before the request was sent")
