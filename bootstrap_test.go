package xpc

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// fakeXPCD is a bootstrap server in this process: it answers lookups for
// any name by serving the socket it is handed with an echo handler, and
// counts the connections made to it.
type fakeXPCD struct {
	path     string
	l        *Listener
	accepted atomic.Int64
	lookups  atomic.Int64
	// hold, if set, receives each lookup's socket end, unanswered.
	hold     chan *FD
	mu       sync.Mutex
	services []*Connection
}

// newFakeXPCD starts a fake xpcd. With hold, it answers no lookup: each
// lookup's socket end goes to hold instead.
func newFakeXPCD(t *testing.T, hold chan *FD) *fakeXPCD {
	t.Helper()
	f := &fakeXPCD{path: filepath.Join(t.TempDir(), "bootstrap.sock"), hold: hold}
	l, err := ListenUnix(f.path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.l = l
	l.SetHandler(func(p *Connection) {
		f.accepted.Add(1)
		p.SetHandler(HandlerFunc(f.handle))
		p.Activate()
	})
	l.Activate()
	t.Cleanup(func() {
		l.Cancel()
		waitClosed(t, l.Done(), "fake xpcd")
		for _, p := range l.Peers() {
			p.Cancel()
			waitClosed(t, p.Done(), "fake xpcd session")
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, s := range f.services {
			s.Cancel()
			waitClosed(t, s.Done(), "fake service")
		}
	})
	return f
}

func (f *fakeXPCD) handle(ctx context.Context, m *Message) {
	defer CloseAttachments(m.Body)
	if op, _ := m.Body.String(bootstrap.KeyOp); op != bootstrap.OpLookup {
		m.ReplyError(ctx, NewErrorObject("unknown op"))
		return
	}
	fd, ok := m.Body.Get(bootstrap.KeySocket).(*FD)
	if !ok {
		m.ReplyError(ctx, NewErrorObject("no socket"))
		return
	}
	f.lookups.Add(1)
	if f.hold != nil {
		m.Body.Delete(bootstrap.KeySocket)
		f.hold <- fd
		return
	}
	s, err := NewConnectionFromFile(fd.File())
	if err != nil {
		m.ReplyError(ctx, NewErrorObject(err.Error()))
		return
	}
	s.SetHandler(HandlerFunc(echo))
	s.Activate()
	f.mu.Lock()
	f.services = append(f.services, s)
	f.mu.Unlock()
	m.Reply(ctx, Dict())
}

// dropSessions ends every connection made to the fake xpcd, as a restart
// of xpcd would.
func (f *fakeXPCD) dropSessions(t *testing.T) {
	for _, p := range f.l.Peers() {
		p.Cancel()
		waitClosed(t, p.Done(), "fake xpcd session")
	}
}

// TestBootstrapShared: service connections made with one Bootstrap look
// their services up over one connection to xpcd, which is made again after
// xpcd drops it; after Close, lookups fail with ErrBootstrapClosed.
func TestBootstrapShared(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	f := newFakeXPCD(t, nil)
	b, err := NewBootstrap(WithBootstrapSocket(f.path))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	call := func(name string) error {
		c, err := NewServiceConnection(name, WithBootstrap(b))
		if err != nil {
			t.Fatal(err)
		}
		c.Activate()
		defer func() {
			c.Cancel()
			waitClosed(t, c.Done(), "service connection")
		}()
		r, err := c.SendWithReply(ctx, Dict("n", Int64(7)))
		if err == nil && mustInt64(t, r, "n") != 7 {
			t.Fatalf("reply %v", r)
		}
		return err
	}
	for i := range 5 {
		if err := call("org.goxpc.test.shared"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n, a := f.lookups.Load(), f.accepted.Load(); n != 5 || a != 1 {
		t.Fatalf("%d lookups over %d connections to xpcd, want 5 over 1", n, a)
	}

	// Without a Bootstrap, each lookup connects on its own.
	c, err := NewServiceConnection("org.goxpc.test.own", WithBootstrapSocket(f.path))
	if err != nil {
		t.Fatal(err)
	}
	c.Activate()
	if _, err := c.SendWithReply(ctx, Dict()); err != nil {
		t.Fatal(err)
	}
	c.Cancel()
	waitClosed(t, c.Done(), "service connection")
	if a := f.accepted.Load(); a != 2 {
		t.Fatalf("%d connections to xpcd, want 2", a)
	}

	// xpcd drops the shared connection: the next lookup connects again.
	f.dropSessions(t)
	if err := call("org.goxpc.test.after"); err != nil {
		t.Fatalf("after xpcd dropped the connection: %v", err)
	}
	if a := f.accepted.Load(); a != 3 {
		t.Fatalf("%d connections to xpcd, want 3", a)
	}

	b.Close()
	err = call("org.goxpc.test.closed")
	if !errors.Is(err, ErrBootstrapClosed) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("lookup through a closed Bootstrap: %v", err)
	}
}

// TestBootstrapOptions: WithBootstrap does not go with WithBootstrapSocket
// on a connection, nor on a Bootstrap.
func TestBootstrapOptions(t *testing.T) {
	b, err := NewBootstrap()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := NewServiceConnection("org.goxpc.x", WithBootstrap(b), WithBootstrapSocket("/x")); err == nil {
		t.Error("WithBootstrap and WithBootstrapSocket together were accepted")
	}
	if _, err := NewBootstrap(WithBootstrap(b)); err == nil {
		t.Error("NewBootstrap(WithBootstrap(b)) was accepted")
	}
	if _, err := NewServiceConnection("org.goxpc.x", WithBootstrap(nil)); err == nil {
		t.Error("WithBootstrap(nil) was accepted")
	}
}

// TestBootstrapWaitBounded: while one lookup dials an xpcd that accepts but
// never says hello, a second lookup through the same Bootstrap waits no
// longer than its own context allows; Close ends the first.
func TestBootstrapWaitBounded(t *testing.T) {
	leakCheck(t)
	path := filepath.Join(t.TempDir(), "mute.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := NewBootstrap(WithBootstrapSocket(path))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	first := make(chan error, 1)
	go func() {
		_, err := b.get(ctx)
		first <- err
	}()
	// Wait until the first lookup is dialing.
	for {
		b.mu.Lock()
		dialing := b.dialing != nil
		b.mu.Unlock()
		if dialing {
			break
		}
		select {
		case err := <-first:
			t.Fatalf("first lookup ended: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	_, err = b.get(short)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lookup: %v, want its deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second lookup took %v", d)
	}
	cancel()
	if err := <-first; err == nil {
		t.Fatal("first lookup succeeded without a hello")
	}
	b.Close()
}
