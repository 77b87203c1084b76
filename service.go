package xpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// Errors of the service runtime.
var (
	// ErrNotLaunched: CheckIn in a process that xpcd did not start, so it
	// has no check-in channel.
	ErrNotLaunched = errors.New("xpc: this process was not launched by xpcd (no " + bootstrap.CheckinFDEnv + " check-in channel)")
	// ErrNotDeclared: Listen for a name the job's plist does not declare in
	// its MachServices.
	ErrNotDeclared = errors.New("xpc: the name is not in the job's MachServices")
)

// NewServiceConnection returns an inactive connection to the service named
// name, through xpcd. It looks the name up at its first send; xpcd starts
// the service if it is not running. When the service goes away (crash,
// idle exit, upgrade), pending replies fail with ErrInterrupted, the handler
// gets an ErrInterrupted event, and the next send looks the name up again.
// The lookup is pipelined: the send that makes it does not wait for xpcd,
// and the message goes out at once, to be read by the service when xpcd
// hands it over. A name xpcd does not know, or may not give this caller,
// makes the connection invalid (ErrNotFound, ErrDenied, ...) when xpcd's
// answer arrives: pending replies fail with that error and the handler
// gets it as its last event; a one-way Send made before then has already
// returned nil, as in XPC. If no xpcd answers at all, the send fails with
// ErrInterrupted and the connection stays usable.
//
// Peer is the service's identity as the kernel stamped it on the service's
// first frame (SO_PASSCRED and SO_PASSPIDFD: pid, uid, gid and a pidfd,
// never the service's own word). It is known by the time the first reply
// arrives, and nil before that and between an interruption and the next
// exchange.
func NewServiceConnection(name string, opts ...Option) (*Connection, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if name == "" || !validCString(name) {
		return nil, fmt.Errorf("xpc: NewServiceConnection(%q): not a valid service name", name)
	}
	if cfg.boot != nil && cfg.bootstrap != nil {
		return nil, errors.New("xpc: NewServiceConnection: WithBootstrap and WithBootstrapSocket together (give the socket to NewBootstrap)")
	}
	c := newConnection(cfg)
	c.reconnect = true
	c.dial = func(ctx context.Context) (linkEnd, error) { return lookupService(ctx, cfg, name) }
	return c, nil
}

func bootstrapSockets(cfg config) []string {
	if cfg.bootstrap != nil {
		return cfg.bootstrap
	}
	return bootstrap.ClientSockets()
}

// dialBootstrap connects to the first bootstrap socket that answers.
func dialBootstrap(ctx context.Context, cfg config) (*Connection, error) {
	var errs []error
	for _, path := range bootstrapSockets(cfg) {
		c, err := DialUnix(ctx, path)
		if err == nil {
			c.Activate()
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, interruptedError(errors.Join(errs...), "no bootstrap server (xpcd) answers")
}

// ErrBootstrapClosed is the cause of a lookup through a Bootstrap that was
// closed.
var ErrBootstrapClosed = errors.New("xpc: the Bootstrap was closed")

// Bootstrap keeps one connection to xpcd open for service lookups, shared
// by every connection made with WithBootstrap(b). Without one, each lookup
// connects to xpcd and disconnects again; a process that connects to
// services often saves that, as an http.Transport saves connecting for
// each request. When xpcd restarts, the next lookup connects again. A
// Bootstrap is safe for concurrent use; close it when done.
type Bootstrap struct {
	cfg config

	mu     sync.Mutex
	conn   *Connection // nil until the first lookup, and after Close
	closed bool
}

// NewBootstrap returns a Bootstrap that connects, at its first lookup, to
// the xpcd that WithBootstrapSocket names, or else to the one the
// environment selects, as NewServiceConnection does.
func NewBootstrap(opts ...Option) (*Bootstrap, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.boot != nil {
		return nil, errors.New("xpc: NewBootstrap: WithBootstrap makes no sense here")
	}
	return &Bootstrap{cfg: cfg}, nil
}

// get returns the live connection to xpcd, connecting if there is none.
func (b *Bootstrap) get(ctx context.Context) (*Connection, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrBootstrapClosed
	}
	if b.conn != nil && b.conn.Err() == nil {
		return b.conn, nil
	}
	if b.conn != nil {
		b.conn.Cancel()
		b.conn = nil
	}
	c, err := dialBootstrap(ctx, b.cfg)
	if err != nil {
		return nil, err
	}
	// Wait for xpcd's hello, once per connection: an xpcd that turns the
	// connection away (too many connections) says why in its place, and
	// the lookup fails with that reason rather than with the lookup
	// socket closed unread, which would look like an interruption.
	if err := c.awaitHello(ctx); err != nil {
		c.Cancel()
		return nil, err
	}
	b.conn = c
	return c, nil
}

// drop forgets c if it is still the current connection and cancels it.
func (b *Bootstrap) drop(c *Connection) {
	b.mu.Lock()
	if b.conn == c {
		b.conn = nil
	}
	b.mu.Unlock()
	c.Cancel()
}

// Close closes the connection to xpcd. Lookups through b fail from then on
// (ErrInvalid, ErrCanceled and ErrBootstrapClosed); service connections
// that have looked their service up already are not affected until they
// need to look it up again.
func (b *Bootstrap) Close() error {
	b.mu.Lock()
	c := b.conn
	b.conn = nil
	b.closed = true
	b.mu.Unlock()
	if c != nil {
		c.Cancel()
	}
	return nil
}

// lookupService asks xpcd for name, handing it one end of a new socket
// pair for the service; the other end becomes the link. The lookup is
// pipelined: it is a one-way message, and the caller may send on its end
// at once, ahead of the service. xpcd answers only a lookup it cannot
// serve, with a refused frame on the socket itself (link.readRefusal).
func lookupService(ctx context.Context, cfg config, name string) (linkEnd, error) {
	mine, theirs, err := sock.Pair()
	if err != nil {
		return linkEnd{}, err
	}
	end := os.NewFile(uintptr(theirs), "xpc-service-end")
	defer end.Close()
	// Stamping must be on before anyone else holds the other end: xpcd's
	// refusal and the service's first frame (hello) carry their senders'
	// identities. The link turns it off once it has the service's.
	if err := sock.SetPassCred(mine, true); err != nil {
		unix.Close(mine)
		return linkEnd{}, fmt.Errorf("xpc: SO_PASSCRED: %w", err)
	}
	ref, err := sendLookup(ctx, cfg, name, end)
	if err != nil {
		unix.Close(mine)
		return linkEnd{}, err
	}
	s, err := sock.New(mine, "xpc-service")
	if err != nil {
		return linkEnd{}, err
	}
	return linkEnd{s: s, lookup: ref}, nil
}

// lookupRef is what a client end of a pipelined lookup remembers: the name
// and the identity the kernel gave for the xpcd that got the request.
type lookupRef struct {
	name string
	pid  int32
	uid  uint32
}

// lookupRequest is the request: {"op":"lookup","name":N,"domain":D?,
// "socket":FD}. end stays the caller's.
func lookupRequest(cfg config, name string, end *os.File) *Dictionary {
	req := NewDictionary(4)
	req.Set(bootstrap.KeyOp, String(bootstrap.OpLookup))
	req.Set(bootstrap.KeyName, String(name))
	if cfg.domain != "" {
		req.Set(bootstrap.KeyDomain, String(cfg.domain))
	}
	req.Set(bootstrap.KeySocket, NewFD(end))
	return req
}

// sendLookup sends the lookup of name, with a duplicate of end, to xpcd:
// on the Bootstrap's shared connection, or on a connection made for it and
// closed at once.
func sendLookup(ctx context.Context, cfg config, name string, end *os.File) (*lookupRef, error) {
	req := lookupRequest(cfg, name, end)
	if cfg.boot == nil {
		return sendLookupOnce(ctx, cfg, name, req)
	}
	for attempt := 0; ; attempt++ {
		bc, err := cfg.boot.get(ctx)
		if err != nil {
			if errors.Is(err, ErrBootstrapClosed) {
				return nil, invalidError(ErrCanceled, err, "lookup of %s", name)
			}
			return nil, err
		}
		p := bc.Peer()
		if p == nil {
			cfg.boot.drop(bc)
			return nil, interruptedError(nil, "lookup of %s: xpcd's identity is unknown", name)
		}
		err = bc.Send(ctx, req)
		if err == nil {
			return &lookupRef{name: name, pid: int32(p.PID), uid: p.UID}, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		// The shared connection failed (xpcd restarted): once more, on
		// a new one.
		cfg.boot.drop(bc)
		if attempt > 0 {
			return nil, interruptedError(err, "lookup of %s", name)
		}
	}
}

// sendLookupOnce connects to the first bootstrap socket that answers,
// sends req as a one-way message and closes: no goroutine, no reply.
func sendLookupOnce(ctx context.Context, cfg config, name string, req *Dictionary) (*lookupRef, error) {
	var w writer
	frame, fds, err := buildFrame(&w, wire.KindMessage, 0, req, cfg.maxMessageSize, cfg.maxFDs)
	if err != nil {
		return nil, err
	}
	defer closeRawFDs(fds)
	var errs []error
	for _, path := range bootstrapSockets(cfg) {
		ref, err := sendFrameTo(ctx, path, frame, fds)
		if err == nil {
			ref.name = name
			return ref, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, interruptedError(errors.Join(errs...), "no bootstrap server (xpcd) answers")
}

// sendFrameTo connects to the listener at path, sends one frame without
// waiting for anything, and closes. It returns the listener's identity as
// the kernel recorded it at connect. The listener's hello is never read;
// the frame, in its queue, is read all the same.
func sendFrameTo(ctx context.Context, path string, frame []byte, fds []int) (*lookupRef, error) {
	if len(path) > maxSunPath {
		return nil, fmt.Errorf("xpc: connect %s: %w", path, ErrPathTooLong)
	}
	fd, err := sock.Connect(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("xpc: connect %s: %w", path, err)
	}
	defer unix.Close(fd)
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return nil, fmt.Errorf("xpc: SO_PEERCRED: %w", err)
	}
	// A new connection's queue is empty: a small frame never waits.
	if err := wire.SendNow(fd, frame, fds); err != nil {
		return nil, fmt.Errorf("xpc: send to %s: %w", path, err)
	}
	return &lookupRef{pid: cred.Pid, uid: cred.Uid}, nil
}

// bootstrapError maps xpcd's error replies to the library's error values.
func bootstrapError(err error, name string) error {
	var re *RemoteError
	if !errors.As(err, &re) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return interruptedError(err, "lookup of %s", name)
	}
	return refusalError(re.Object, name)
}

// refusalError maps the error object of a refusal (xpcd's error replies,
// a refused frame) to the library's error values by its "reason" key;
// what names what was refused when the object has no description.
func refusalError(eo *ErrorObject, what string) error {
	desc := eo.Description()
	if desc == "" {
		desc = what
	}
	reason, _ := eo.String(bootstrap.KeyReason)
	switch reason {
	case bootstrap.ReasonNotFound, bootstrap.ReasonWrongDomain:
		return invalidError(ErrNotFound, nil, "%s", desc)
	case bootstrap.ReasonDenied:
		return invalidError(ErrDenied, nil, "%s", desc)
	case bootstrap.ReasonNotApproved:
		return invalidError(ErrNotApproved, nil, "%s", desc)
	case "":
		return invalidError(ErrDenied, nil, "%s", desc)
	}
	return invalidError(ErrDenied, nil, "%s (%s)", desc, reason)
}

// Service is a service's side of xpcd: its check-in channel, its
// listeners, and the transaction count xpcd's idle exit reads. A process
// started by xpcd gets one from CheckIn.
type Service struct {
	cfg   config
	label string
	tx    *Transactions

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	ctl         *Connection
	listeners   map[string]*serviceListener
	terminating chan struct{}
	termOnce    sync.Once
	reported    int // last transaction count sent, -1 to force a report
	txKick      chan struct{}
	txLooks     atomic.Int64 // times the reporter looked at the count (tests)
}

type serviceListener struct {
	l     *Listener
	mu    sync.Mutex
	queue []int
	wake  chan struct{}
	stop  chan struct{}
}

// CheckIn connects a process xpcd launched to xpcd, through the check-in
// channel xpcd gave it. It returns ErrNotLaunched in any other process.
// The service then calls Listen for each name it serves.
func CheckIn(ctx context.Context, opts ...Option) (*Service, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	fdText := os.Getenv(bootstrap.CheckinFDEnv)
	if fdText == "" {
		return nil, ErrNotLaunched
	}
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("%w: %s=%q is not a descriptor", ErrNotLaunched, bootstrap.CheckinFDEnv, fdText)
	}
	f := os.NewFile(uintptr(fd), "xpcd-checkin")
	ctl, err := NewConnectionFromFile(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotLaunched, err)
	}
	// The channel is not passed on to our own children.
	os.Unsetenv(bootstrap.CheckinFDEnv)
	s := &Service{
		cfg: cfg, label: os.Getenv(bootstrap.LabelEnv), tx: cfg.tx,
		listeners: make(map[string]*serviceListener), terminating: make(chan struct{}), reported: -1,
		txKick: make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.attach(ctl)
	s.wg.Add(1)
	go s.reportTransactions()
	return s, nil
}

// Label returns the job's label, as xpcd named it.
func (s *Service) Label() string { return s.label }

// Transactions returns the count xpcd reads for idle exit. Requests to the
// service's listeners are counted in it; Begin counts other work.
func (s *Service) Transactions() *Transactions { return s.tx }

// Terminating returns a channel closed when xpcd has said the service is
// about to be stopped (idle exit, bootout, upgrade). The service's peers
// have been told (ErrTerminationImminent); SIGTERM follows.
func (s *Service) Terminating() <-chan struct{} { return s.terminating }

// Listen checks in for name and returns an inactive listener that receives
// the clients xpcd connects for it. It fails with ErrNotDeclared if the
// job's plist does not list name in MachServices. The listener's handler
// runs on the goroutine that delivers xpcd's messages to the service: like
// any listener handler, it should set the connection up and return.
func (s *Service) Listen(ctx context.Context, name string) (*Listener, error) {
	s.mu.Lock()
	if _, dup := s.listeners[name]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("xpc: Listen(%q): already listening", name)
	}
	cfg := s.cfg
	l := &Listener{cfg: cfg, epFD: -1, peers: make(map[*Connection]struct{}), done: make(chan struct{})}
	sl := &serviceListener{l: l, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	l.run = sl.run
	l.stop = func() {
		close(sl.stop)
		s.mu.Lock()
		if s.listeners[name] == sl {
			delete(s.listeners, name)
		}
		s.mu.Unlock()
	}
	s.listeners[name] = sl
	ctl := s.ctl
	s.mu.Unlock()
	if err := checkin(ctx, ctl, name); err != nil {
		l.Cancel()
		sl.closeQueued()
		return nil, err
	}
	return l, nil
}

func checkin(ctx context.Context, ctl *Connection, name string) error {
	if ctl == nil {
		return interruptedError(nil, "no check-in channel to xpcd")
	}
	_, err := ctl.SendWithReply(ctx, Dict(bootstrap.KeyOp, bootstrap.OpCheckin, bootstrap.KeyName, name))
	var re *RemoteError
	if errors.As(err, &re) {
		if reason, _ := re.Object.String(bootstrap.KeyReason); reason == bootstrap.ReasonNotDeclared {
			return fmt.Errorf("%w: %s", ErrNotDeclared, re.Object.Description())
		}
		return fmt.Errorf("xpc: check in for %s: %s", name, re.Object.Description())
	}
	if err != nil {
		return fmt.Errorf("xpc: check in for %s: %w", name, err)
	}
	return nil
}

// run delivers queued clients to the listener's handler until it stops.
func (sl *serviceListener) run() {
	for {
		select {
		case <-sl.stop:
			sl.closeQueued()
			return
		case <-sl.wake:
		}
		for {
			sl.mu.Lock()
			if len(sl.queue) == 0 {
				sl.mu.Unlock()
				break
			}
			fd := sl.queue[0]
			sl.queue = sl.queue[1:]
			sl.mu.Unlock()
			sl.l.admit(fd)
		}
	}
}

// deliver hands a client's socket to the listener: at once, on this
// goroutine (the one delivering xpcd's messages), when the listener is
// active and has nothing queued, which spares a goroutine switch per
// connection; otherwise through the queue.
func (sl *serviceListener) deliver(fd int) {
	sl.mu.Lock()
	direct := len(sl.queue) == 0 && sl.l.isActive()
	sl.mu.Unlock()
	if direct {
		sl.l.admit(fd)
		return
	}
	sl.push(fd)
}

func (sl *serviceListener) push(fd int) {
	sl.mu.Lock()
	sl.queue = append(sl.queue, fd)
	sl.mu.Unlock()
	select {
	case sl.wake <- struct{}{}:
	default:
	}
}

func (sl *serviceListener) closeQueued() {
	sl.mu.Lock()
	q := sl.queue
	sl.queue = nil
	sl.mu.Unlock()
	closeRawFDs(q)
}

// attach makes ctl the check-in channel.
func (s *Service) attach(ctl *Connection) {
	ctl.SetHandler(&controlHandler{s: s, ctl: ctl})
	s.mu.Lock()
	s.ctl = ctl
	s.reported = -1
	s.mu.Unlock()
	ctl.Activate()
	s.kickReporter() // to send the count on the new channel
}

func (s *Service) kickReporter() {
	select {
	case s.txKick <- struct{}{}:
	default:
	}
}

type controlHandler struct {
	s   *Service
	ctl *Connection
}

func (h *controlHandler) HandleMessage(ctx context.Context, m *Message) {
	s := h.s
	op, _ := m.Body.String(bootstrap.KeyOp)
	switch op {
	case bootstrap.OpConnect:
		name, _ := m.Body.String(bootstrap.KeyName)
		end, _ := m.Body.Get(bootstrap.KeySocket).(*FD)
		if end == nil {
			break
		}
		s.mu.Lock()
		sl := s.listeners[name]
		s.mu.Unlock()
		if sl != nil {
			if fd, err := dupFile(end.File()); err == nil {
				sl.deliver(fd)
			}
		}
	case bootstrap.OpTerminate:
		s.termOnce.Do(func() {
			s.mu.Lock()
			ls := make([]*Listener, 0, len(s.listeners))
			for _, sl := range s.listeners {
				ls = append(ls, sl.l)
			}
			s.mu.Unlock()
			for _, l := range ls {
				_ = l.AnnounceTermination(ctx)
			}
			close(s.terminating)
		})
	}
	_ = CloseAttachments(m.Body)
}

func (h *controlHandler) HandleEvent(err error) {
	if !errors.Is(err, ErrInvalid) {
		return
	}
	s := h.s
	s.mu.Lock()
	current := s.ctl == h.ctl
	if current {
		s.ctl = nil
	}
	s.mu.Unlock()
	if current && s.ctx.Err() == nil {
		// xpcd went away (restart, crash): check in again once it is back.
		s.wg.Add(1)
		go s.readopt()
	}
}

// readopt reconnects to xpcd after it restarted, asks to be adopted, and
// checks in again for every name.
func (s *Service) readopt() {
	defer s.wg.Done()
	delay := 20 * time.Millisecond
	for s.ctx.Err() == nil {
		if err := s.tryAdopt(); err == nil {
			return
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

func (s *Service) tryAdopt() error {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	ctl, err := dialBootstrap(ctx, s.cfg)
	if err != nil {
		return err
	}
	if _, err := ctl.SendWithReply(ctx, Dict(bootstrap.KeyOp, bootstrap.OpAdopt, bootstrap.KeyLabel, s.label)); err != nil {
		ctl.Cancel()
		return err
	}
	// Re-home the connection: the bootstrap connection becomes the
	// check-in channel. Its handler is replaced by the control handler.
	ctl.mu.Lock()
	ctl.handler = &controlHandler{s: s, ctl: ctl}
	ctl.mu.Unlock()
	s.mu.Lock()
	s.ctl = ctl
	s.reported = -1
	names := make([]string, 0, len(s.listeners))
	for n := range s.listeners {
		names = append(names, n)
	}
	s.mu.Unlock()
	for _, n := range names {
		if err := checkin(ctx, ctl, n); err != nil {
			return err
		}
	}
	s.kickReporter()
	return nil
}

// txSettle is how often the transaction count is reported to xpcd at most
// while it is not zero, and how long after it has fallen to zero the zero
// is reported.
const txSettle = 100 * time.Millisecond

// txChurnGap is the least time between two looks woken by the count
// leaving zero when the first found it back at zero: transactions that
// open and close faster than the reporter looks would otherwise wake it
// once each. A count that stays above zero is reported at most this late.
const txChurnGap = time.Millisecond

// reportTransactions tells xpcd the transaction count. xpcd must never
// believe a busy service clean, so a count that leaves zero is reported at
// once; the rest can wait: other changes are reported at most once per
// txSettle, so a service answering a stream of requests (each one a
// transaction that opens and closes) sends no report per request, and
// its reporter sleeps between looks instead of waking at each change.
// xpcd then sees the service clean up to txSettle late, which delays an
// idle exit (seconds long) by as much.
func (s *Service) reportTransactions() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var sent time.Time
	// churned: when a look woken by the count leaving zero found it at
	// zero again (see txChurnGap).
	var churned time.Time
	wokeBusy := false
	for {
		s.txLooks.Add(1)
		s.mu.Lock()
		ctl, last := s.ctl, s.reported
		s.mu.Unlock()
		// Only a count that leaves a reported zero needs waking for.
		var busy <-chan struct{}
		var n int
		if last == 0 {
			busy, n = s.tx.armBusy()
		} else {
			n = s.tx.Count()
		}
		if wokeBusy && last == 0 && n == 0 {
			churned = time.Now()
		}
		wokeBusy = false
		due := ctl != nil && n != last &&
			(last < 0 || (last == 0 && n > 0) || time.Since(sent) >= txSettle)
		if due {
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			err := ctl.Send(ctx, Dict(bootstrap.KeyOp, bootstrap.OpTransactions, bootstrap.KeyCount, n))
			cancel()
			if err == nil {
				s.mu.Lock()
				if s.ctl == ctl {
					s.reported = n
				}
				s.mu.Unlock()
			}
			sent = time.Now()
			if err == nil {
				continue
			}
		}
		// Look again when the count leaves zero, when a new channel
		// comes, and, while anything but zero was reported or a change
		// waits, after txSettle.
		var tick <-chan time.Time
		switch {
		case ctl != nil && n != last:
			// A change waits for its turn.
			timer.Reset(max(txSettle-time.Since(sent), time.Millisecond))
			tick = timer.C
		case ctl != nil && last != 0:
			// Busy, and reported: look again later.
			timer.Reset(txSettle)
			tick = timer.C
		}
		select {
		case <-busy:
			wokeBusy = true
		case <-tick:
		case <-s.txKick:
		case <-s.ctx.Done():
			timer.Stop()
			return
		}
		timer.Stop()
		if d := txChurnGap - time.Since(churned); wokeBusy && d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-s.ctx.Done():
				timer.Stop()
				return
			}
		}
	}
}

// Close stops the runtime: the check-in channel and every listener.
// Peer connections already made live on.
func (s *Service) Close() error {
	s.cancel()
	s.mu.Lock()
	ctl := s.ctl
	s.ctl = nil
	ls := make([]*Listener, 0, len(s.listeners))
	for _, sl := range s.listeners {
		ls = append(ls, sl.l)
	}
	s.mu.Unlock()
	for _, l := range ls {
		l.Cancel()
	}
	if ctl != nil {
		ctl.Cancel()
	}
	s.wg.Wait()
	return nil
}
