package xpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// Named notifications through xpcd, in the manner of notify(3)
// (docs/XPCD.md, "Notifications"): a name, a 64-bit state per name, posts,
// and registrations told of each post. Names "user.uid.UID.…" are user
// UID's; every other name is the system's. A user may register for and
// read their own names and the system's, and post their own; posting a
// system name takes root or a grant in a system job's plist
// (docs/SECURITY.md, "Notifications").

// ErrNotifierClosed is the cause of a call on a Notifier after Close.
var ErrNotifierClosed = errors.New("notifier closed")

// PostNotification posts name through xpcd, on a connection of its own
// made for it: registrations of name are told, with its state unchanged.
// WithBootstrapSocket chooses the xpcd. It fails with ErrInterrupted when
// no xpcd answers, and with ErrDenied when xpcd refuses (the *ConnError's
// Reason.Rule names the rule: bootstrap's notify-name, notify-post or
// notify-limit).
func PostNotification(ctx context.Context, name string, opts ...Option) error {
	n, err := newNotifier(ctx, inPostNotification, opts)
	if err != nil {
		return err
	}
	defer n.Close()
	return n.Post(ctx, name)
}

// Notifier is one connection to xpcd for notifications: posting, reading
// states and registering. It is safe for concurrent use; Close ends its
// registrations.
//
// When its connection ends without Close (xpcd stopped, as a restart or an
// upgrade does), the Notifier reconnects by itself: it tries again, 20 ms
// after the loss and then at twice the wait each time, at most 1 s apart,
// until xpcd answers or Close; it then registers every live registration
// again and tells each one once (below). Meanwhile Post, PostState, State
// and Register fail at once with ErrInterrupted. Done is closed only by
// Close: a reconnection never gives up.
//
// After a reconnection, each registration's handler is called once with
// the name's state as the restarted xpcd has it (and Check reports a
// post), unless a post reached it since: a post made while the Notifier
// was disconnected cannot be known (xpcd keeps no states across a
// restart, and a post need not change one), so every reconnection counts
// as one. A handler so errs on one call too many, never on a post
// missed. A registration the restarted xpcd refuses ends: its Err says
// why, and SetReconnectHandler's function is given it.
//
// Ownership: mu guards the connection (conn, nil while disconnected, err
// then saying why), the registrations by name and the reconnection's
// state. Each connection's handler (notifierHandler) runs on that
// connection's dispatcher; the reconnection (reconnectLoop) runs on a
// goroutine of its own, counted in wg, which Close waits for.
type Notifier struct {
	cfg       config
	reconnect bool // PostNotification's does not
	ctx       context.Context
	cancel    context.CancelFunc // ends ctx, at Close
	done      chan struct{}
	wg        sync.WaitGroup

	mu           sync.Mutex
	conn         *Connection
	regs         map[string][]*NotifyRegistration // by name
	err          error                            // why there is no connection; nil while there is one
	reconnecting bool                             // a reconnectLoop runs
	onReconnect  func(refused []*NotifyRegistration)
	closed       bool
}

// NewNotifier connects to xpcd: the one WithBootstrapSocket names, or else
// the one the environment selects, as NewBootstrap does; WithBootstrapSocket
// is the only option it takes. It fails with ErrInterrupted when no xpcd
// answers.
func NewNotifier(ctx context.Context, opts ...Option) (*Notifier, error) {
	return newNotifier(ctx, inNewNotifier, opts)
}

func newNotifier(ctx context.Context, ctor constructor, opts []Option) (*Notifier, error) {
	cfg, err := configure(ctor, opts)
	if err != nil {
		return nil, err
	}
	n := &Notifier{cfg: cfg, reconnect: ctor == inNewNotifier, done: make(chan struct{}),
		regs: map[string][]*NotifyRegistration{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if _, _, err := n.dial(ctx); err != nil {
		n.cancel()
		return nil, err
	}
	return n, nil
}

// dial connects to xpcd and makes the connection n's current one (install)
// before it is activated: its end, however soon, is seen (lost), and
// notifications, which may come before the reply that registered for
// them, find n's handler. It returns the names registered for, and
// ErrNotifierClosed, the connection cancelled, if n was closed meanwhile.
func (n *Notifier) dial(ctx context.Context) (*Connection, []string, error) {
	var names []string
	installed := false
	c, err := dialBootstrap(ctx, n.cfg, func(c *Connection) Handler {
		names, installed = n.install(c)
		return notifierHandler{n, c}
	})
	if err != nil {
		return nil, nil, err
	}
	if !installed {
		c.Cancel()
		return nil, nil, fmt.Errorf("xpc: %w", ErrNotifierClosed)
	}
	return c, names, nil
}

// Post posts name: registrations of it are told, with its state unchanged.
func (n *Notifier) Post(ctx context.Context, name string) error {
	_, err := n.request(ctx, name, bootstrap.KeyOp, bootstrap.OpNotifyPost)
	return err
}

// PostState sets name's state and posts it.
func (n *Notifier) PostState(ctx context.Context, name string, state uint64) error {
	_, err := n.request(ctx, name, bootstrap.KeyOp, bootstrap.OpNotifyPost, bootstrap.KeyNotifyState, state)
	return err
}

// State returns name's state: what the last post that set one set, or 0.
func (n *Notifier) State(ctx context.Context, name string) (uint64, error) {
	reply, err := n.request(ctx, name, bootstrap.KeyOp, bootstrap.OpNotifyGet)
	if err != nil {
		return 0, err
	}
	return notifyState(reply, name)
}

func notifyState(reply *Dictionary, name string) (uint64, error) {
	state, err := reply.Uint64(bootstrap.KeyNotifyState)
	if err != nil {
		return 0, fmt.Errorf("xpc: state of notification %s: %w", name, err)
	}
	return state, nil
}

// request sends one request about name and waits for its answer.
func (n *Notifier) request(ctx context.Context, name string, kv ...any) (*Dictionary, error) {
	conn, err := n.current()
	if err != nil {
		return nil, err
	}
	return sendNotify(ctx, conn, name, kv...)
}

// sendNotify sends one request about name on conn and waits for its
// answer.
func sendNotify(ctx context.Context, conn *Connection, name string, kv ...any) (*Dictionary, error) {
	if name == "" || !validCString(name) {
		return nil, fmt.Errorf("xpc: notification %q: not a valid name", name)
	}
	reply, err := conn.SendWithReply(ctx, Dict(append(kv, bootstrap.KeyName, name)...))
	if err != nil {
		return nil, notifyError(err, name)
	}
	return reply, nil
}

// current returns n's connection, or why it has none.
func (n *Notifier) current() (*Connection, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return nil, fmt.Errorf("xpc: %w", ErrNotifierClosed)
	case n.err != nil:
		return nil, n.err
	}
	return n.conn, nil
}

// notifyError maps xpcd's refusals to the library's errors, as lookups'
// are: ErrDenied with the reason and its rule.
func notifyError(err error, name string) error {
	var re *RemoteError
	if errors.As(err, &re) {
		return refusalError(re.Object, "notification "+name)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return interruptedError(err, "notification %s", name)
}

// Register registers for name: handler is called with name and its state
// after each post, on a goroutine of its own, one call at a time; posts
// made while it runs are told in one later call, with the latest state.
// handler may be nil, for a registration read with Check.
func (n *Notifier) Register(ctx context.Context, name string, handler func(name string, state uint64)) (*NotifyRegistration, error) {
	if _, err := n.current(); err != nil {
		return nil, err
	}
	r := &NotifyRegistration{n: n, name: name, handler: handler}
	// In the table before xpcd is asked, so that no post after its
	// answer is missed.
	n.mu.Lock()
	first := len(n.regs[name]) == 0
	n.regs[name] = append(n.regs[name], r)
	n.mu.Unlock()
	if !first {
		return r, nil
	}
	if _, err := n.request(ctx, name, bootstrap.KeyOp, bootstrap.OpNotifyRegister); err != nil {
		n.remove(r)
		return nil, err
	}
	return r, nil
}

// remove takes r out of the table; it reports whether r was the last of
// its name.
func (n *Notifier) remove(r *NotifyRegistration) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	list := n.regs[r.name]
	for i, o := range list {
		if o == r {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(n.regs, r.name)
		return true
	}
	n.regs[r.name] = list
	return false
}

// Done is closed once Close has ended the Notifier. (Losing xpcd does not
// end it: it reconnects.)
func (n *Notifier) Done() <-chan struct{} { return n.done }

// Close ends the connection, a reconnection under way, and every
// registration; it waits for the reconnection to stop (a handler call
// under way completes on its own).
func (n *Notifier) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	regs, conn := n.regs, n.conn
	n.regs, n.conn = map[string][]*NotifyRegistration{}, nil
	n.mu.Unlock()
	for _, list := range regs {
		for _, r := range list {
			r.stop()
		}
	}
	n.cancel()
	if conn != nil {
		conn.Cancel()
	}
	n.wg.Wait()
	close(n.done)
	return nil
}

// notified delivers a post xpcd told of.
func (n *Notifier) notified(name string, state uint64) {
	for _, r := range n.registrations(name) {
		r.post(state)
	}
}

// registrations returns the registrations of name.
func (n *Notifier) registrations(name string) []*NotifyRegistration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.regs[name]
}

// notifierHandler reads what xpcd sends a Notifier on c.
type notifierHandler struct {
	n *Notifier
	c *Connection
}

func (h notifierHandler) HandleMessage(_ context.Context, m *Message) {
	if op, _ := m.Body.String(bootstrap.KeyOp); op != bootstrap.OpNotify {
		return
	}
	name, err1 := m.Body.String(bootstrap.KeyName)
	state, err2 := m.Body.Uint64(bootstrap.KeyNotifyState)
	if err1 == nil && err2 == nil {
		h.n.notified(name, state)
	}
}

func (h notifierHandler) HandleEvent(err error) {
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrInterrupted) {
		h.n.lost(h.c, err)
	}
}

// NotifyRegistration is one registration for a name (Notifier.Register).
type NotifyRegistration struct {
	n       *Notifier
	name    string
	handler func(name string, state uint64)

	mu       sync.Mutex
	posted   bool   // posted since the last Check
	latest   uint64 // the state of the latest post
	running  bool   // a goroutine is calling handler
	pending  bool   // posted while handler ran
	missed   bool   // may have missed a post while the Notifier reconnected
	canceled bool
	err      error // why xpcd ended it
}

// Name is the name registered for.
func (r *NotifyRegistration) Name() string { return r.name }

// Check reports whether the name was posted since the last Check (the
// first: since Register), as notify_check does, and clears that.
func (r *NotifyRegistration) Check() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.posted
	r.posted = false
	return p
}

// Err says why the registration ended, if xpcd ended it: a restarted
// xpcd that the Notifier reconnected to refused it (ErrDenied, the
// *ConnError's Reason.Rule naming the rule). It is nil while the
// registration lives, and after Cancel or the Notifier's Close.
func (r *NotifyRegistration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Cancel ends the registration: its handler is not called again (a call
// under way completes). It does not wait for xpcd.
func (r *NotifyRegistration) Cancel() {
	r.stop()
	if !r.n.remove(r) {
		return
	}
	// The last registration of the name: xpcd may stop telling of it.
	// If the request cannot go without waiting, xpcd goes on until the
	// Notifier closes, and its notifications are dropped here. Without
	// a connection there is nothing to tell: a reconnection registers
	// only the names still in the table.
	if conn, err := r.n.current(); err == nil {
		_ = conn.TrySend(Dict(bootstrap.KeyOp, bootstrap.OpNotifyCancel, bootstrap.KeyName, r.name))
	}
}

func (r *NotifyRegistration) stop() {
	r.mu.Lock()
	r.canceled = true
	r.mu.Unlock()
}

// post notes a post; the handler is called now, or after the call under
// way, with the latest state.
func (r *NotifyRegistration) post(state uint64) {
	r.mu.Lock()
	if r.canceled {
		r.mu.Unlock()
		return
	}
	r.posted, r.latest, r.missed = true, state, false
	if r.handler == nil || r.running {
		r.pending = r.handler != nil
		r.mu.Unlock()
		return
	}
	r.running = true
	r.mu.Unlock()
	go r.run(state)
}

// run calls the handler until no post is pending.
func (r *NotifyRegistration) run(state uint64) {
	for {
		r.handler(r.name, state)
		r.mu.Lock()
		if !r.pending || r.canceled {
			r.running, r.pending = false, false
			r.mu.Unlock()
			return
		}
		r.pending, state = false, r.latest
		r.mu.Unlock()
	}
}
