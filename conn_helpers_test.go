package xpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Shared helpers for the connection tests (conn_*_test.go).

// testTimeout bounds every wait in the connection tests. It only keeps a
// broken test from hanging; nothing is expected to come near it.
const testTimeout = 10 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// openFDs lists this process's open descriptors and what they refer to.
func openFDs(t *testing.T) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[int]string, len(ents))
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // closed since: ReadDir's own descriptor, say
		}
		m[fd] = target
	}
	return m
}

// leakCheck records the goroutines and descriptors that exist now and, when
// the test ends (after every cleanup registered later has run), fails it if
// any goroutine or descriptor was added. Closes are asynchronous (a reader
// notices its socket closing, a dispatcher finishes its last event), so the
// descriptor check retries for a while.
func leakCheck(t *testing.T) {
	t.Helper()
	// The runtime's poller keeps two descriptors (an epoll instance and an
	// eventfd) from its first use on: have it made before counting, in
	// case this test is the first to use it.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before := openFDs(t)
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		goleak.VerifyNone(t, ignore)
		deadline := time.Now().Add(5 * time.Second)
		for {
			after := openFDs(t)
			var added []string
			for fd, target := range after {
				if old, ok := before[fd]; !ok || old != target {
					added = append(added, fmt.Sprintf("%d -> %s", fd, target))
				}
			}
			if len(added) == 0 {
				return
			}
			if time.Now().After(deadline) {
				sort.Strings(added)
				t.Errorf("descriptors leaked: %q", added)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// waitClosed waits for ch to close, failing the test after testTimeout.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatalf("%s: not done after %v", what, testTimeout)
	}
}

// testHandler is a Handler whose message function is optional and whose
// events are recorded in order.
type testHandler struct {
	msg    func(ctx context.Context, m *Message)
	events chan error
}

func newTestHandler(msg func(ctx context.Context, m *Message)) *testHandler {
	return &testHandler{msg: msg, events: make(chan error, 64)}
}

func (h *testHandler) HandleMessage(ctx context.Context, m *Message) {
	if h.msg != nil {
		h.msg(ctx, m)
	}
}

func (h *testHandler) HandleEvent(err error) {
	select {
	case h.events <- err:
	default:
		panic("testHandler: too many events")
	}
}

// nextEvent returns the next event, failing the test if none comes.
func (h *testHandler) nextEvent(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.events:
		return err
	case <-time.After(testTimeout):
		t.Fatal("no event")
		return nil
	}
}

// finalEvent skips to the event that ends the connection and checks that it
// matches every one of want.
func (h *testHandler) finalEvent(t *testing.T, want ...error) error {
	t.Helper()
	for {
		err := h.nextEvent(t)
		if !errors.Is(err, ErrInvalid) {
			continue
		}
		for _, w := range want {
			if !errors.Is(err, w) {
				t.Errorf("final event %v does not match %v", err, w)
			}
		}
		return err
	}
}

// serve starts an anonymous listener; each peer gets the handler mk makes
// for it and is activated. The listener and its remaining peers are
// cancelled when the test ends.
func serve(t *testing.T, mk func(p *Connection) Handler, opts ...Option) *Listener {
	t.Helper()
	l, err := NewListener(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, l, mk)
}

// serveOn activates l, handing each peer the handler mk makes; the
// listener and its peers are cancelled when the test ends.
func serveOn(t *testing.T, l *Listener, mk func(p *Connection) Handler) *Listener {
	t.Helper()
	l.SetHandler(func(p *Connection) {
		p.SetHandler(mk(p))
		p.Activate()
	})
	l.Activate()
	t.Cleanup(func() {
		l.Cancel()
		waitClosed(t, l.Done(), "listener")
		for _, p := range l.Peers() {
			p.Cancel()
			waitClosed(t, p.Done(), "peer connection")
		}
	})
	return l
}

// handlerFor adapts a message function to serve's handler maker.
func handlerFor(fn func(ctx context.Context, m *Message)) func(*Connection) Handler {
	return func(*Connection) Handler { return HandlerFunc(fn) }
}

// dial connects to l with a new, activated connection, cancelled when the
// test ends.
func dial(t *testing.T, l *Listener, h Handler, opts ...Option) *Connection {
	t.Helper()
	ep, err := l.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	c := dialEndpointT(t, ep, h, opts...)
	ep.Close()
	return c
}

func dialEndpointT(t *testing.T, ep *Endpoint, h Handler, opts ...Option) *Connection {
	t.Helper()
	c, err := NewEndpointConnection(ep, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if h != nil {
		c.SetHandler(h)
	}
	c.Activate()
	t.Cleanup(func() {
		c.Cancel()
		waitClosed(t, c.Done(), "connection")
	})
	return c
}

// echo replies to every request with its body.
func echo(ctx context.Context, m *Message) {
	if m.WantsReply() {
		m.Reply(ctx, m.Body)
	}
}

// mustInt64 reads an Int64 field, failing the test if it is missing.
func mustInt64(t *testing.T, d *Dictionary, key string) int64 {
	t.Helper()
	if d == nil {
		t.Fatalf("no dictionary to read %q from", key)
	}
	v, err := d.Int64(key)
	if err != nil {
		t.Fatalf("%q: %v", key, err)
	}
	return v
}

// wantConnErr checks that err matches every one of want and is a *ConnError.
func wantConnErr(t *testing.T, err error, want ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	var ce *ConnError
	if !errors.As(err, &ce) {
		t.Errorf("error %v (%T) is not a *ConnError", err, err)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("error %v does not match %v", err, w)
		}
	}
}

// gate is a channel-based latch a handler can wait on.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open()                 { g.once.Do(func() { close(g.ch) }) }
func (g *gate) wait()                 { <-g.ch }
func (g *gate) done() <-chan struct{} { return g.ch }
