package xpc

import (
	"context"
	"errors"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// A Notifier's reconnection to xpcd (see Notifier): when its connection
// ends without Close, lost starts reconnectLoop, which dials again with a
// bounded backoff, makes the new connection current, registers every name
// again and tells each registration once (resume) unless a post reached it
// meanwhile.

// SetReconnectHandler sets fn, called on a goroutine of its own after each
// reconnection to xpcd, once every registration has been registered again,
// with those the restarted xpcd refused (ended: their Err says why); nil
// calls nothing. fn should return soon: a later reconnection's call may
// come while it runs.
func (n *Notifier) SetReconnectHandler(fn func(refused []*NotifyRegistration)) {
	n.mu.Lock()
	n.onReconnect = fn
	n.mu.Unlock()
}

// lost is told that c has ended: if it is the current connection, n has
// none until a reconnection (reconnectLoop) makes one. One reconnection
// runs at a time: a connection lost while it registers again is left to
// it.
func (n *Notifier) lost(c *Connection, err error) {
	n.mu.Lock()
	if n.conn != c || n.closed {
		n.mu.Unlock()
		return
	}
	n.conn = nil
	if !n.reconnect {
		n.err = interruptedError(err, "notifications: the connection to xpcd ended")
		n.mu.Unlock()
		return
	}
	n.err = interruptedError(err, "notifications: the connection to xpcd ended; reconnecting")
	start := !n.reconnecting
	if start {
		n.reconnecting = true
		n.wg.Add(1)
	}
	n.mu.Unlock()
	if start {
		go n.reconnectLoop()
	}
}

// reconnectLoop connects to xpcd again and registers every registration
// again, until that is done on a connection that still lives, or Close.
// Registrations refused on the way are given to the reconnect handler.
func (n *Notifier) reconnectLoop() {
	defer n.wg.Done()
	var refused []*NotifyRegistration
	delay := 20 * time.Millisecond
	for {
		t := time.NewTimer(delay)
		select {
		case <-n.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, time.Second)
		r, err := n.tryReconnect()
		refused = append(refused, r...)
		if err != nil {
			continue
		}
		if fn, ok := n.reconnected(); ok {
			if fn != nil {
				go fn(refused)
			}
			return
		}
	}
}

// tryReconnect makes a connection to xpcd, the current one from the
// start (dial; requests made meanwhile use it), and registers on it every name
// registered for, each name's registrations then told once (resume). It
// returns the registrations xpcd refused, which it has ended.
func (n *Notifier) tryReconnect() ([]*NotifyRegistration, error) {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	c, names, err := n.dial(ctx)
	if err != nil {
		return nil, err
	}
	var refused []*NotifyRegistration
	for _, name := range names {
		state, err := reregister(ctx, c, name)
		if err != nil && !errors.Is(err, ErrInterrupted) && ctx.Err() == nil {
			// xpcd's answer: a refusal.
			refused = append(refused, n.refused(name, err)...)
			continue
		}
		if err != nil {
			n.lost(c, err)
			c.Cancel()
			return refused, err
		}
		n.resume(name, state)
	}
	return refused, nil
}

// install makes c the current connection, unless n is closed, and returns
// the names registered for, whose registrations are marked as having
// perhaps missed a post.
func (n *Notifier) install(c *Connection) ([]string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, false
	}
	n.conn, n.err = c, nil
	names := make([]string, 0, len(n.regs))
	for name, list := range n.regs {
		names = append(names, name)
		for _, r := range list {
			r.markMissed()
		}
	}
	return names, true
}

// reregister registers for name on c and returns name's state.
func reregister(ctx context.Context, c *Connection, name string) (uint64, error) {
	if _, err := sendNotify(ctx, c, name, bootstrap.KeyOp, bootstrap.OpNotifyRegister); err != nil {
		return 0, err
	}
	reply, err := sendNotify(ctx, c, name, bootstrap.KeyOp, bootstrap.OpNotifyGet)
	if err != nil {
		return 0, err
	}
	return notifyState(reply, name)
}

// refused ends the registrations of name, which xpcd refused with err, and
// returns them.
func (n *Notifier) refused(name string, err error) []*NotifyRegistration {
	n.mu.Lock()
	list := n.regs[name]
	delete(n.regs, name)
	n.mu.Unlock()
	for _, r := range list {
		r.mu.Lock()
		r.err, r.canceled = err, true
		r.mu.Unlock()
	}
	return list
}

// resume tells the registrations of name that may have missed a post of
// it, with its state.
func (n *Notifier) resume(name string, state uint64) {
	for _, r := range n.registrations(name) {
		r.resume(state)
	}
}

// reconnected ends a reconnection if the connection it made is still
// current, and returns the reconnect handler; one lost meanwhile (lost
// cleared it) is tried again.
func (n *Notifier) reconnected() (func([]*NotifyRegistration), bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		return nil, false
	}
	n.reconnecting = false
	return n.onReconnect, true
}

// markMissed notes that r may miss posts: its Notifier is registering it
// again.
func (r *NotifyRegistration) markMissed() {
	r.mu.Lock()
	r.missed = true
	r.mu.Unlock()
}

// resume tells r, once registered again, of a post it may have missed, as
// a post with the name's state, unless a post came since markMissed.
func (r *NotifyRegistration) resume(state uint64) {
	r.mu.Lock()
	missed := r.missed
	r.mu.Unlock()
	if missed {
		r.post(state)
	}
}
