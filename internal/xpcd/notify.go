package xpcd

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// Notifications (docs/XPCD.md, "Notifications"): named notifications in
// the manner of notify(3). A name has a 64-bit state; a post of it is sent
// to every connection registered for it.
//
// The registry is its own owner, not the supervisor's loop: one
// mutex-guarded type rather than a goroutine, because its state (names,
// their states, registrations) shares nothing with jobs and instances, and
// every step is a few map operations: a post is handled on the poster's
// session, which sends to each registered connection without waiting
// (channel.send), so a post costs neither a hop to the loop nor a
// goroutine's wake-up. Only reading the grants of a system name, which
// are in system jobs' definitions, asks the loop (notify_session.go).
// Nothing that may block runs under the mutex: messages are sent, and
// onPost called, after it is released.
//
// Coalescing: each registration has at most one notification per name
// queued in its connection's channel; posts made while it waits mark it
// dirty, and once it is written the latest state is sent in one more
// message. A client that stops reading so costs at most one message per
// registration.

// Limits of notifications. Root has none but maxNotifyRegsPerConn.
const (
	// maxNotifyStatesPerUser is the most names a user other than root
	// may give a state (bootstrap.RuleNotifyLimit): a state outlives its
	// poster's connection, until xpcd stops.
	maxNotifyStatesPerUser = 1024
	// maxNotifyRegsPerConn is the most names one connection may be
	// registered for.
	maxNotifyRegsPerConn = 512
	// maxNotifyRegsPerUser is the most registrations a user other than
	// root may have over all their connections.
	maxNotifyRegsPerUser = 4096
)

// notifyConfig is what the registry is told at its making.
type notifyConfig struct {
	// onPost is called after each successful post, on the poster's
	// session, outside the registry's lock. It must not block (the
	// supervisor's hook posts to its loop). nil: nothing is called.
	onPost func(name string, state uint64)
}

// notifyRegistry holds every name with a state or a registration.
type notifyRegistry struct {
	cfg notifyConfig

	mu      sync.Mutex
	names   map[string]*notifyName
	states  map[uint32]int // names given a state, by the bucket of who gave it; root not counted
	regs    map[uint32]int // registrations by bucket; root not counted
	clients map[*notifyClient]struct{}
	closed  bool
}

// notifyName is one name: its state and who is registered for it.
type notifyName struct {
	state    uint64
	hasState bool // a post gave it a state, which it keeps until xpcd stops
	regs     map[*notifyReg]struct{}
}

// notifyClient is one bootstrap connection's registrations, made at its
// first.
type notifyClient struct {
	ch     *channel
	bucket uint32
	root   bool
	regs   map[string]*notifyReg // guarded by the registry's mu
	closed bool                  // guarded by the registry's mu
}

// notifyReg is one name a connection is registered for.
type notifyReg struct {
	c      *notifyClient
	name   string
	queued bool // a notification is in c.ch, not written yet
	dirty  bool // posted again since that one was queued
}

func newNotifyRegistry(cfg notifyConfig) *notifyRegistry {
	return &notifyRegistry{cfg: cfg, names: map[string]*notifyName{}, states: map[uint32]int{},
		regs: map[uint32]int{}, clients: map[*notifyClient]struct{}{}}
}

func (r *notifyRegistry) name() string                { return "notify" }
func (r *notifyRegistry) start(context.Context) error { return nil }

// close ends every registration. Sessions have ended by then (the
// bootstrap server closes first); this only makes sure.
func (r *notifyRegistry) close(context.Context) error {
	r.mu.Lock()
	r.closed = true
	clients := slices.Collect(maps.Keys(r.clients))
	r.mu.Unlock()
	for _, c := range clients {
		r.drop(c)
	}
	return nil
}

// newClient makes the registrations of a connection, owned by its session.
func newNotifyClient(conn *xpc.Connection, bucket uint32, root bool) *notifyClient {
	// At most one message per registration is queued (and one
	// notification of overflow, which never comes).
	return &notifyClient{ch: newChannel(conn, maxNotifyRegsPerConn+1), bucket: bucket, root: root, regs: map[string]*notifyReg{}}
}

// post sets name's state to state if set, and sends the name and its
// state to every connection registered for it. bucket and root are the
// poster's, whose states are counted.
func (r *notifyRegistry) post(name string, state uint64, set bool, bucket uint32, root bool) *RuleError {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	n := r.names[name]
	if set && (n == nil || !n.hasState) {
		if !root && r.states[bucket] >= maxNotifyStatesPerUser {
			r.mu.Unlock()
			return refusedBy(bootstrap.RuleNotifyLimit, "%s has given %d notification names a state, the limit", bucketName(bucket), maxNotifyStatesPerUser)
		}
		if n == nil {
			n = &notifyName{}
			r.names[name] = n
		}
		n.hasState = true
		if !root {
			r.states[bucket]++
		}
	}
	var out []*notifyReg
	if n != nil {
		if set {
			n.state = state
		}
		state = n.state
		for reg := range n.regs {
			if reg.queued {
				reg.dirty = true
				continue
			}
			reg.queued = true
			out = append(out, reg)
		}
	} else {
		state = 0
	}
	r.mu.Unlock()
	for _, reg := range out {
		r.send(reg, state)
	}
	if r.cfg.onPost != nil {
		r.cfg.onPost(name, state)
	}
	return nil
}

// send queues reg's notification, reg.queued being set; unlocked.
func (r *notifyRegistry) send(reg *notifyReg, state uint64) {
	msg := xpc.Dict(bootstrap.KeyOp, bootstrap.OpNotify, bootstrap.KeyName, reg.name, bootstrap.KeyNotifyState, state)
	// Not sent (the channel closed): the connection is ending, and its
	// registrations with it.
	reg.c.ch.send(outItem{msg: msg, sent: func() { r.sent(reg) }})
}

// sent: reg's queued notification was written; if it was posted again
// meanwhile, the latest state goes in one more.
func (r *notifyRegistry) sent(reg *notifyReg) {
	r.mu.Lock()
	reg.queued = false
	if !reg.dirty || reg.c.closed || reg.c.regs[reg.name] != reg {
		r.mu.Unlock()
		return
	}
	reg.dirty, reg.queued = false, true
	var state uint64
	if n := r.names[reg.name]; n != nil {
		state = n.state
	}
	r.mu.Unlock()
	r.send(reg, state)
}

// get returns name's state (0 if it has none).
func (r *notifyRegistry) get(name string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := r.names[name]; n != nil {
		return n.state
	}
	return 0
}

// register registers c for name; registering again changes nothing.
func (r *notifyRegistry) register(c *notifyClient, name string) *RuleError {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.closed || r.closed {
		return nil
	}
	if c.regs[name] != nil {
		return nil
	}
	if len(c.regs) >= maxNotifyRegsPerConn {
		return refusedBy(bootstrap.RuleNotifyLimit, "this connection is registered for %d notification names, the limit", len(c.regs))
	}
	if !c.root && r.regs[c.bucket] >= maxNotifyRegsPerUser {
		return refusedBy(bootstrap.RuleNotifyLimit, "%s has %d notification registrations, the limit", bucketName(c.bucket), r.regs[c.bucket])
	}
	n := r.names[name]
	if n == nil {
		n = &notifyName{}
		r.names[name] = n
	}
	if n.regs == nil {
		n.regs = map[*notifyReg]struct{}{}
	}
	reg := &notifyReg{c: c, name: name}
	n.regs[reg] = struct{}{}
	c.regs[name] = reg
	r.clients[c] = struct{}{}
	if !c.root {
		r.regs[c.bucket]++
	}
	return nil
}

// cancel ends c's registration for name, if it has one.
func (r *notifyRegistry) cancel(c *notifyClient, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reg := c.regs[name]; reg != nil {
		r.removeLocked(reg)
	}
}

// removeLocked ends one registration; r.mu is held.
func (r *notifyRegistry) removeLocked(reg *notifyReg) {
	c := reg.c
	delete(c.regs, reg.name)
	if len(c.regs) == 0 {
		delete(r.clients, c)
	}
	if !c.root {
		if r.regs[c.bucket]--; r.regs[c.bucket] <= 0 {
			delete(r.regs, c.bucket)
		}
	}
	if n := r.names[reg.name]; n != nil {
		delete(n.regs, reg)
		if len(n.regs) == 0 && !n.hasState {
			delete(r.names, reg.name)
		}
	}
}

// drop ends every registration of c, whose connection has ended, and
// closes its channel.
func (r *notifyRegistry) drop(c *notifyClient) {
	r.mu.Lock()
	c.closed = true
	for _, reg := range c.regs {
		r.removeLocked(reg)
	}
	delete(r.clients, c)
	r.mu.Unlock()
	c.ch.close()
}

// counts says, for tests and print, how many names and registrations the
// registry holds.
func (r *notifyRegistry) counts() (names, regs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.names {
		regs += len(n.regs)
	}
	return len(r.names), regs
}
