package xpc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
)

// whyXPCD is a bootstrap server in this process that hands each looked-up
// socket to a service listener, also in this process (its hello carries
// this process's pid), and answers exit-reason with answer, after delay.
type whyXPCD struct {
	path    string
	svc     *serviceListener
	answer  *Dictionary
	delay   time.Duration
	asked   atomic.Int64
	mu      sync.Mutex
	request *Dictionary // the last exit-reason request
}

func newWhyXPCD(t *testing.T, answer *Dictionary, delay time.Duration) *whyXPCD {
	t.Helper()
	f := &whyXPCD{path: filepath.Join(t.TempDir(), "bootstrap.sock"), answer: answer, delay: delay}
	cfg, err := configure(inCheckIn, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = newServiceListener(cfg, func(*serviceListener) {})
	f.svc.l.SetHandler(func(p *Connection) {
		p.SetHandler(HandlerFunc(func(ctx context.Context, m *Message) {
			if hold, _ := m.Body.Bool("hold"); hold {
				m.Defer() // never answered
				return
			}
			echo(ctx, m)
		}))
		p.Activate()
	})
	f.svc.l.Activate()
	l, err := ListenUnix(f.path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	l.SetHandler(func(p *Connection) {
		p.SetHandler(HandlerFunc(f.handle))
		p.Activate()
	})
	l.Activate()
	t.Cleanup(func() {
		l.Cancel()
		waitClosed(t, l.Done(), "fake xpcd")
		for _, p := range append(l.Peers(), f.svc.l.Peers()...) {
			p.Cancel()
			waitClosed(t, p.Done(), "fake xpcd's connection")
		}
		f.svc.l.Cancel()
		waitClosed(t, f.svc.l.Done(), "service listener")
	})
	return f
}

func (f *whyXPCD) handle(ctx context.Context, m *Message) {
	defer CloseAttachments(m.Body)
	switch op, _ := m.Body.String(bootstrap.KeyOp); op {
	case bootstrap.OpLookup:
		if end, ok := m.Body.Get(bootstrap.KeySocket).(*FD); ok {
			if fd, err := dupFile(end.File()); err == nil {
				f.svc.deliver(fd)
			}
		}
	case bootstrap.OpExitReason:
		f.asked.Add(1)
		f.mu.Lock()
		f.request = m.Body
		f.mu.Unlock()
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
		}
		m.Reply(ctx, f.answer)
	default:
		m.ReplyError(ctx, NewErrorObject("unknown op"))
	}
}

// serviceSide returns the service's end of the one connection made to it.
func (f *whyXPCD) serviceSide(t *testing.T) *Connection {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		if ps := f.svc.l.Peers(); len(ps) == 1 {
			return ps[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("the service has no peer")
		}
		time.Sleep(time.Millisecond)
	}
}

// connectWhy returns a service connection through f that has reached the
// service, and its handler.
func connectWhy(t *testing.T, f *whyXPCD) (*Connection, *testHandler) {
	t.Helper()
	c, err := NewServiceConnection("org.goxpc.test.why", WithBootstrapSocket(f.path))
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(nil)
	c.SetHandler(h)
	c.Activate()
	t.Cleanup(func() { c.Cancel(); waitClosed(t, c.Done(), "service connection") })
	if _, err := c.SendWithReply(testCtx(t), Dict("x", 1)); err != nil {
		t.Fatal(err)
	}
	return c, h
}

// TestInterruptionAsksXPCD: a service connection that loses its service
// unannounced asks xpcd why, by name and by the pid of the service's
// hello, and its interruption (the event, the pending calls, Reason) says
// what xpcd answered.
func TestInterruptionAsksXPCD(t *testing.T) {
	leakCheck(t)
	f := newWhyXPCD(t, Dict(bootstrap.KeyReason, ReasonExited, bootstrap.KeyExitStatus, 3,
		bootstrap.KeyDescription, "org.goxpc.test.why (pid 1) exited with status 3"), 0)
	c, h := connectWhy(t, f)
	if n := f.asked.Load(); n != 0 {
		t.Fatalf("asked xpcd %d times while the service ran", n)
	}
	// A call the service never answers, pending when it goes.
	call := c.Go(testCtx(t), Dict("hold", true))
	svc := f.serviceSide(t)
	waitFor(t, "the held call", func() bool { return svc.Transactions().Count() == 1 })
	svc.Cancel()
	_, err := call.Wait(testCtx(t))
	for _, e := range []error{err, h.nextEvent(t)} {
		r := reasonOf(e)
		if !errors.Is(e, ErrInterrupted) || r == nil || r.Code != ReasonExited || r.ExitStatus != 3 ||
			!strings.Contains(e.Error(), "exited with status 3") {
			t.Errorf("%v (reason %+v), want interrupted: exited with status 3", e, r)
		}
	}
	if r := c.Reason(); r == nil || r.Code != ReasonExited {
		t.Errorf("Reason() = %+v", r)
	}
	f.mu.Lock()
	req := f.request
	f.mu.Unlock()
	name, _ := req.String(bootstrap.KeyName)
	pid, _ := req.Int64(bootstrap.KeyPID)
	if name != "org.goxpc.test.why" || pid != int64(os.Getpid()) {
		t.Errorf("asked about %q pid %d, want org.goxpc.test.why pid %d", name, pid, os.Getpid())
	}
}

func reasonOf(err error) *Reason {
	var ce *ConnError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return nil
}

// TestInterruptionXPCDSlow: an xpcd that does not answer in time leaves
// the reason unknown, and the interruption comes exitReasonWait late, not
// later.
func TestInterruptionXPCDSlow(t *testing.T) {
	f := newWhyXPCD(t, Dict(bootstrap.KeyReason, ReasonExited), testTimeout)
	_, h := connectWhy(t, f)
	start := time.Now()
	f.serviceSide(t).Cancel()
	ev := h.nextEvent(t)
	took := time.Since(start)
	if r := reasonOf(ev); !errors.Is(ev, ErrInterrupted) || r == nil || r.Code != ReasonUnknown {
		t.Errorf("event %v (reason %+v), want interrupted, reason unknown", ev, r)
	}
	if took < exitReasonWait || took > exitReasonWait+time.Second {
		t.Errorf("the interruption came after %v, want about %v", took, exitReasonWait)
	}
}

// TestInterruptionAnnounced: a service that says why it is about to exit
// (the terminating frame's id) has its clients hear
// ErrTerminationImminent with that reason, and then ErrInterrupted with the
// same, without asking xpcd. An id this package does not know is no
// reason.
func TestInterruptionAnnounced(t *testing.T) {
	leakCheck(t)
	f := newWhyXPCD(t, Dict(bootstrap.KeyReason, ReasonExited), 0)
	_, h := connectWhy(t, f)
	svc := f.serviceSide(t)
	announce(testCtx(t), []*Listener{f.svc.l}, wire.TermUpgrade)
	announce(testCtx(t), []*Listener{f.svc.l}, wire.TermIdleExit) // one event per link
	svc.Cancel()
	for _, want := range []error{ErrTerminationImminent, ErrInterrupted} {
		ev := h.nextEvent(t)
		if r := reasonOf(ev); !errors.Is(ev, want) || r == nil || r.Code != ReasonUpgrade {
			t.Errorf("event %v (reason %+v), want %v for an upgrade", ev, r, want)
		}
	}
	if n := f.asked.Load(); n != 0 {
		t.Errorf("asked xpcd %d times, having been told", n)
	}
	if r := terminationReason(99); r.Code != ReasonUnknown {
		t.Errorf("an unknown id: %+v", r)
	}
	for code, n := range map[string]uint64{ReasonIdleExit: wire.TermIdleExit, ReasonKilled: wire.TermKilled,
		ReasonMemoryPressure: wire.TermMemoryPressure, ReasonShuttingDown: wire.TermShuttingDown, "no-such": wire.TermUnspecified} {
		if got := terminationNumber(code); got != n {
			t.Errorf("terminationNumber(%s) = %d, want %d", code, got, n)
		}
	}
}

// connsRecorder is xpcd's end of a check-in channel that keeps the last
// open connection count the service reported.
type connsRecorder struct{ last atomic.Int64 }

func (r *connsRecorder) HandleMessage(ctx context.Context, m *Message) {
	if n, err := m.Body.Int64(bootstrap.KeyConnections); err == nil {
		r.last.Store(n)
	}
}

func (r *connsRecorder) HandleEvent(error) {}

// TestServiceTerminate: xpcd's terminate request is answered once the
// service's peers have been told why, and Terminating's channel closes
// after it. A termination's reason is not a refusal's: shutting-down is
// no ErrDenied there. The service reports its listeners' open peers.
func TestServiceTerminate(t *testing.T) {
	leakCheck(t)
	rec := &connsRecorder{}
	rec.last.Store(-1)
	s, xpcdEnd := newServiceXPCDEnd(t, rec)
	waitFor(t, "no peers reported", func() bool { return rec.last.Load() == 0 })
	sl := newServiceListener(s.cfg, func(*serviceListener) {})
	sl.l.SetHandler(func(p *Connection) { p.Activate() })
	sl.l.Activate()
	s.mu.Lock()
	s.listeners["org.goxpc.test.term"] = sl
	s.mu.Unlock()
	t.Cleanup(func() { sl.l.Cancel() })
	a, b, err := sock.Pair()
	if err != nil {
		t.Fatal(err)
	}
	sl.deliver(a)
	fb := os.NewFile(uintptr(b), "client")
	client, err := NewConnectionFromFile(fb)
	fb.Close()
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(nil)
	client.SetHandler(h)
	client.Activate()
	t.Cleanup(client.Cancel)
	waitFor(t, "one peer reported", func() bool { return rec.last.Load() == 1 })

	if _, err := xpcdEnd.SendWithReply(testCtx(t), Dict(bootstrap.KeyOp, bootstrap.OpTerminate, bootstrap.KeyReason, ReasonShuttingDown)); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	select {
	case <-s.Terminating():
	case <-time.After(testTimeout):
		t.Fatal("Terminating's channel did not close")
	}
	ev := h.nextEvent(t)
	if r := reasonOf(ev); !errors.Is(ev, ErrTerminationImminent) || errors.Is(ev, ErrDenied) || r == nil || r.Code != ReasonShuttingDown {
		t.Errorf("the peer heard %v (reason %+v), want ErrTerminationImminent, shutting-down, not ErrDenied", ev, r)
	}
	// Again (a second xpcd asking): answered, nobody told twice.
	if _, err := xpcdEnd.SendWithReply(testCtx(t), Dict(bootstrap.KeyOp, bootstrap.OpTerminate)); err != nil {
		t.Fatalf("second terminate: %v", err)
	}
	client.Cancel()
	waitFor(t, "the peer's end reported", func() bool { return rec.last.Load() == 0 })
}

// newServiceXPCDEnd returns a Service whose check-in channel's other end,
// xpcd's, is the connection returned, with handler h. Both end with the
// test.
func newServiceXPCDEnd(t *testing.T, h Handler) (*Service, *Connection) {
	t.Helper()
	a, b, err := sock.Pair()
	if err != nil {
		t.Fatal(err)
	}
	fa, fb := os.NewFile(uintptr(a), "svc"), os.NewFile(uintptr(b), "xpcd")
	defer fa.Close()
	defer fb.Close()
	xpcdEnd, err := NewConnectionFromFile(fb)
	if err != nil {
		t.Fatal(err)
	}
	xpcdEnd.SetHandler(h)
	xpcdEnd.Activate()
	ctl, err := NewConnectionFromFile(fa)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := configure(inCheckIn, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{cfg: cfg, tx: cfg.tx, listeners: map[string]*serviceListener{},
		terminating: make(chan struct{}), reported: -1, txKick: make(chan struct{}, 1)}
	s.cfg.onPeers = s.peersChanged
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.attach(ctl)
	s.wg.Add(1)
	go s.reportTransactions()
	t.Cleanup(func() {
		s.Close()
		xpcdEnd.Cancel()
		waitClosed(t, xpcdEnd.Done(), "xpcd end")
		waitClosed(t, ctl.Done(), "check-in channel")
	})
	return s, xpcdEnd
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
