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
)

// Errors of the service runtime.
var (
	// ErrNotLaunched: CheckIn in a process that xpcd did not start, so it
	// has no check-in channel.
	ErrNotLaunched = errors.New("not launched by xpcd")
	// ErrNotDeclared: Listen for a name the job's plist does not declare in
	// its MachServices.
	ErrNotDeclared = errors.New("name not in the job's MachServices")
)

// Service is a service's side of xpcd: its check-in channel, its
// listeners, and the transaction count xpcd's idle exit reads. A process
// started by xpcd gets one from CheckIn.
//
// Ownership: cfg, label, tx, ctx and the channels are set by CheckIn; mu
// guards the check-in channel (ctl, replaced when xpcd restarts and the
// service is adopted again), the listeners by name and the counts last
// reported. The check-in channel's handler (controlHandler) runs on that
// connection's dispatcher; the reporter (reportTransactions) and a
// re-adoption (readopt) run on goroutines of their own, counted in wg.
type Service struct {
	cfg   config
	label string
	tx    *Transactions

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	ctl         *Connection
	readopting  bool // a readopt loop runs
	listeners   map[string]*serviceListener
	terminating chan struct{}
	termOnce    sync.Once
	reported    int // last transaction count sent, -1 to force a report
	// reportedPeers is the open peer count last sent, -1 to force a
	// report; peersDirty is set by a change of the count not reported
	// yet, which has woken the reporter (and need not wake it again).
	reportedPeers int
	peersDirty    atomic.Bool
	txKick        chan struct{}
	txLooks       atomic.Int64  // times the reporter looked at the count (tests)
	acts          activityTable // RegisterActivity's registrations (activity.go)

	// events are the launch-event handlers by stream (events.go).
	events map[string]*eventStream
	mirror mirror // the monitors xpcd attached (mirror.go)
}

// serviceListener is a listener xpcd hands clients to: they arrive on the
// check-in channel and are admitted at once, or queued (mu) for the
// listener's own goroutine (run) while it is busy or not yet active.
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
	cfg, err := configure(inCheckIn, opts)
	if err != nil {
		return nil, err
	}
	fdText := os.Getenv(bootstrap.CheckinFDEnv)
	if fdText == "" {
		return nil, fmt.Errorf("xpc: %w: no %s check-in channel; xpcd starts a service from its job plist "+
			"(xpcctl kickstart DOMAIN/LABEL starts it by hand)", ErrNotLaunched, bootstrap.CheckinFDEnv)
	}
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("xpc: %w: %s=%q is not a descriptor", ErrNotLaunched, bootstrap.CheckinFDEnv, fdText)
	}
	f := os.NewFile(uintptr(fd), "xpcd-checkin")
	ctl, err := NewConnectionFromFile(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("xpc: %w: %s", ErrNotLaunched, causeText(err))
	}
	// The channel is not passed on to our own children.
	os.Unsetenv(bootstrap.CheckinFDEnv)
	return startService(cfg, ctl, os.Getenv(bootstrap.LabelEnv)), nil
}

// startService runs the service runtime of job label over ctl, its
// check-in channel (CheckIn's, CheckInFile's).
func startService(cfg config, ctl *Connection, label string) *Service {
	s := &Service{
		cfg: cfg, label: label, tx: cfg.tx,
		listeners: make(map[string]*serviceListener), terminating: make(chan struct{}), reported: -1,
		reportedPeers: -1, txKick: make(chan struct{}, 1),
	}
	// Its listeners tell it when their peers come and go.
	s.cfg.onPeers = s.peersChanged
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.attach(ctl)
	s.wg.Add(1)
	go s.reportTransactions()
	return s
}

// Label returns the job's label, as xpcd named it.
func (s *Service) Label() string { return s.label }

// Transactions returns the count xpcd reads for idle exit. Requests to the
// service's listeners are counted in it; Begin counts other work.
func (s *Service) Transactions() *Transactions { return s.tx }

// Terminating returns a channel closed when xpcd has said the service is
// about to be stopped (idle exit, bootout, upgrade). The service's peers
// have been told (ErrTerminationImminent, with the reason xpcd gave), and
// xpcd has had its answer; SIGTERM follows.
func (s *Service) Terminating() <-chan struct{} { return s.terminating }

// Listen checks in for name and returns an inactive listener that receives
// the clients xpcd connects for it. It fails with ErrNotDeclared if the
// job's plist does not list name in MachServices. The listener's handler
// runs on the goroutine that delivers xpcd's messages to the service: like
// any listener handler, it should set the connection up and return.
//
// The listener is configured as CheckIn's options say, and then by opts,
// of which WithPeerRequirement applies: the clients of this name must meet
// it (xpcd's own check of who may look the name up, the job's plist
// Requirement, comes before).
func (s *Service) Listen(ctx context.Context, name string, opts ...Option) (*Listener, error) {
	cfg := s.cfg
	if err := cfg.apply(inListen, opts); err != nil {
		return nil, err
	}
	cfg.mirror = &s.mirror
	s.mu.Lock()
	if _, dup := s.listeners[name]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("xpc: Listen(%q): already listening", name)
	}
	sl := newServiceListener(cfg, func(sl *serviceListener) { s.forget(name, sl) })
	s.listeners[name] = sl
	ctl := s.ctl
	s.mu.Unlock()
	if err := checkin(ctx, ctl, name); err != nil {
		sl.l.Cancel()
		sl.closeQueued()
		return nil, err
	}
	return sl.l, nil
}

// forget removes sl, which has stopped, from the listeners if it is still
// the one for name.
func (s *Service) forget(name string, sl *serviceListener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listeners[name] == sl {
		delete(s.listeners, name)
	}
}

// newServiceListener returns a serviceListener with its inactive
// listener; stopped is called with it when the listener is cancelled.
func newServiceListener(cfg config, stopped func(*serviceListener)) *serviceListener {
	sl := &serviceListener{wake: make(chan struct{}, 1), stop: make(chan struct{})}
	sl.l = newListener(cfg, func(*Listener) { sl.run() }, func() {
		sl.close()
		stopped(sl)
	})
	return sl
}

// close stops run, which closes the clients still queued.
func (sl *serviceListener) close() { close(sl.stop) }

func checkin(ctx context.Context, ctl *Connection, name string) error {
	if ctl == nil {
		return interruptedError(nil, "no check-in channel to xpcd")
	}
	_, err := ctl.SendWithReply(ctx, Dict(bootstrap.KeyOp, bootstrap.OpCheckin, bootstrap.KeyName, name))
	var re *RemoteError
	if errors.As(err, &re) {
		if reason, _ := re.Object.String(bootstrap.KeyReason); reason == bootstrap.ReasonNotDeclared {
			return fmt.Errorf("xpc: %w: %s", ErrNotDeclared, re.Object.Description())
		}
		return fmt.Errorf("xpc: check in for %s: %s", name, re.Object.Description())
	}
	if err != nil {
		return wrapf(err, "check in for %s", name)
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
	s.reported, s.reportedPeers = -1, -1
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
	op, _ := m.Body.String(bootstrap.KeyOp)
	switch op {
	case bootstrap.OpConnect:
		name, _ := m.Body.String(bootstrap.KeyName)
		if end, _ := m.Body.Get(bootstrap.KeySocket).(*FD); end != nil {
			h.s.connectClient(name, end)
		}
	case bootstrap.OpTerminate:
		h.s.terminate(ctx, m)
	case bootstrap.OpEvent:
		h.s.event(ctx, m)
	case bootstrap.OpActivity, bootstrap.OpActivityShouldDefer:
		h.s.activityMessage(op, m.Body)
	case bootstrap.OpMonitor:
		h.s.mirror.attach(m.Body.Get(bootstrap.KeySocket))
	}
	_ = CloseAttachments(m.Body)
}

func (h *controlHandler) HandleEvent(err error) {
	if errors.Is(err, ErrInvalid) {
		h.s.channelLost(h.ctl)
	}
}

// connectClient hands a client xpcd connected for name, end (which stays
// the caller's), to the listener for name, if there is one.
func (s *Service) connectClient(name string, end *FD) {
	s.mu.Lock()
	sl := s.listeners[name]
	s.mu.Unlock()
	if sl != nil {
		if fd, err := dupFile(end.File()); err == nil {
			sl.deliver(fd)
		}
	}
}

// announceWait bounds how long the service spends telling its peers that
// it is about to be stopped: a peer that does not read its socket is not
// told, rather than hold up the others and xpcd's answer. (xpcd waits
// for the answer longer than this.)
const announceWait = 500 * time.Millisecond

// terminate handles xpcd's terminate, m: the first tells every listener's
// peers why the service is about to be stopped, then xpcd (if it asked
// for an answer: an older xpcd does not), and then closes Terminating's
// channel; xpcd sends SIGTERM once it has the answer.
func (s *Service) terminate(ctx context.Context, m *Message) {
	code, _ := m.Body.String(bootstrap.KeyReason)
	first := false
	s.termOnce.Do(func() {
		first = true
		actx, cancel := context.WithTimeout(ctx, announceWait)
		announce(actx, s.currentListeners(), terminationNumber(code))
		cancel()
	})
	if m.WantsReply() {
		_ = m.Reply(ctx, Dict())
	}
	if first {
		close(s.terminating)
	}
}

// announce tells the peers of ls that this process is about to exit, and
// why: first each one whose socket takes it at once, then, until ctx
// ends, those whose socket was full.
func announce(ctx context.Context, ls []*Listener, why uint64) {
	var behind []*Connection
	for _, l := range ls {
		for _, c := range l.Peers() {
			if err := c.announceTermination(noWait{}, why); errors.Is(wouldBlock(err), ErrWouldBlock) {
				behind = append(behind, c)
			}
		}
	}
	for _, c := range behind {
		_ = c.announceTermination(ctx, why)
	}
}

// currentListeners returns the service's listeners.
func (s *Service) currentListeners() []*Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := make([]*Listener, 0, len(s.listeners))
	for _, sl := range s.listeners {
		ls = append(ls, sl.l)
	}
	return ls
}

// channelLost is told that the check-in channel ctl has ended: if it is
// the current one, xpcd went away (restart, crash), and the service
// checks in again once it is back.
// One re-adoption runs at a time: a channel lost while it checks in is
// left to it.
func (s *Service) channelLost(ctl *Connection) {
	s.mu.Lock()
	current := s.ctl == ctl
	if current {
		s.ctl = nil
	}
	start := current && !s.readopting && s.ctx.Err() == nil
	if start {
		s.readopting = true
	}
	s.mu.Unlock()
	if start {
		s.wg.Add(1)
		go s.readopt()
	}
}

// readopt reconnects to xpcd after it restarted, asks to be adopted, and
// checks in again for every name, until it has a channel.
func (s *Service) readopt() {
	defer s.wg.Done()
	delay := 20 * time.Millisecond
	for s.ctx.Err() == nil {
		if err := s.tryAdopt(); err == nil && s.readopted() {
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
	// The bootstrap connection becomes the check-in channel: it has the
	// control handler from the start, so that what xpcd sends as soon as
	// it has adopted the service finds it.
	ctl, err := dialBootstrap(ctx, s.cfg, func(c *Connection) Handler {
		return &controlHandler{s: s, ctl: c}
	})
	if err != nil {
		return err
	}
	if _, err := ctl.SendWithReply(ctx, Dict(bootstrap.KeyOp, bootstrap.OpAdopt, bootstrap.KeyLabel, s.label)); err != nil {
		ctl.Cancel()
		return err
	}
	s.mu.Lock()
	s.ctl = ctl
	s.reported, s.reportedPeers = -1, -1
	names := make([]string, 0, len(s.listeners))
	for n := range s.listeners {
		names = append(names, n)
	}
	s.mu.Unlock()
	for _, n := range names {
		if err := checkin(ctx, ctl, n); err != nil {
			s.dropChannel(ctl)
			return err
		}
	}
	if err := s.declareHandlers(ctx, ctl); err != nil {
		s.dropChannel(ctl)
		return err
	}
	s.reregisterActivities(ctx, ctl)
	s.kickReporter()
	return nil
}

// readopted ends a re-adoption if the channel it made is still current;
// one lost meanwhile (channelLost cleared it) is tried again.
func (s *Service) readopted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctl == nil {
		return false
	}
	s.readopting = false
	return true
}

// dropChannel cancels ctl, a check-in channel that failed, after making
// it no longer the current one: its end is not taken for xpcd's going
// away, and the caller tries again with a new one.
func (s *Service) dropChannel(ctl *Connection) { dropCurrent(&s.mu, &s.ctl, ctl) }

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
	s.mirror.close()
	s.wg.Wait()
	return nil
}
