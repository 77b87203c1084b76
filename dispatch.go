package xpc

// The dispatcher role: delivering a connection's queued events (messages,
// and the events of its state) to its handler.
//
// Events are queued under c.mu by whoever produces them: a link's reader
// (messages, terminating), a link's last watcher (interruption, the end),
// invalidate (the end). At most one goroutine at a time holds the role
// (c.running): it takes the events off the queue in order and calls the
// handler with no lock held, so a handler may call back into the
// connection. The role is taken by claim, under c.mu, only while there is
// something to deliver, the connection is active and not suspended; the
// holder gives it up, under c.mu, when it finds the queue empty or the
// connection suspended. A link's watcher that reads a message while nobody
// holds the role takes it itself (enqueueInline) and runs the handler on
// its own goroutine; otherwise a dispatcher goroutine is started (kick).
// The final event is the last delivered: whatever is queued after it is
// dropped, and its deliverer finishes the connection.

// enqueue adds an event for the handler.
func (c *Connection) enqueue(ev event) {
	c.enqueueRun(ev, false)
}

// enqueueRun is enqueue; with inline, a dispatcher is not started: the
// caller is told to deliver instead (see claim).
func (c *Connection) enqueueRun(ev event, inline bool) (run bool) {
	c.mu.Lock()
	if c.state == stateFinal && !ev.final {
		c.mu.Unlock()
		if ev.msg != nil {
			ev.msg.drop()
		}
		return false
	}
	c.queue = append(c.queue, ev)
	if inline {
		run = c.claim()
	} else {
		c.kick()
	}
	c.mu.Unlock()
	return run
}

// enqueueInline queues a message read by a link's watcher. It returns true
// if the watcher is to deliver it itself (deliverQueued): the connection is
// active and not suspended, and nothing else is being delivered. The
// dispatcher role is then the watcher's.
func (c *Connection) enqueueInline(ev event) bool {
	c.mu.Lock()
	if c.state == stateFinal {
		c.mu.Unlock()
		ev.msg.drop()
		return false
	}
	c.queue = append(c.queue, ev)
	if c.running || c.suspended > 0 || c.state == stateInactive {
		c.mu.Unlock()
		return false
	}
	c.running = true
	c.mu.Unlock()
	return true
}

// kick starts a dispatcher if there is work and none runs; c.mu is held.
func (c *Connection) kick() {
	if c.claim() {
		go c.dispatch()
	}
}

// claim takes the dispatcher role if there is work and nobody holds it;
// c.mu is held. The caller must then run deliverQueued.
func (c *Connection) claim() bool {
	if c.running || c.suspended > 0 || c.state == stateInactive || len(c.queue) == c.qhead {
		return false
	}
	c.running = true
	return true
}

// dispatch is a dispatcher goroutine.
func (c *Connection) dispatch() {
	if c.deliverQueued() {
		c.finish()
	}
}

// deliverQueued delivers queued events one at a time until none is left
// (or the connection is suspended), holding no lock while the handler
// runs. The caller holds the dispatcher role (c.running), which this gives
// up. It reports whether it delivered the final event: the caller must then
// call c.finish, once it holds no count in c.workers.
func (c *Connection) deliverQueued() (final bool) {
	for {
		c.mu.Lock()
		if len(c.queue) == c.qhead || c.suspended > 0 {
			c.running = false
			c.mu.Unlock()
			return false
		}
		ev := c.queue[c.qhead]
		c.queue[c.qhead] = event{}
		c.qhead++
		if c.qhead == len(c.queue) {
			// Empty: reuse the array from its start.
			c.queue, c.qhead = c.queue[:0], 0
		}
		h := c.handler
		c.mu.Unlock()

		switch {
		case ev.msg != nil:
			ev.msg.dequeued()
			c.deliver(h, ev.msg)
		case ev.final:
			if h != nil {
				h.HandleEvent(ev.err)
			}
			c.mu.Lock()
			c.running = false
			// Messages that raced in after the end are dropped.
			rest := c.queue[c.qhead:]
			c.queue, c.qhead = nil, 0
			c.mu.Unlock()
			for _, e := range rest {
				if e.msg != nil {
					e.msg.drop()
				}
			}
			return true
		default:
			if h != nil {
				h.HandleEvent(ev.err)
			}
		}
	}
}

func (c *Connection) deliver(h Handler, m *Message) {
	if h != nil {
		h.HandleMessage(c.ctx, m)
	}
	m.handled(c.ctx)
}
