package xpc

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/wire"
)

// Tests of who reads a link (read.go): handlers run on the goroutine that
// read their message, callers read their own replies, and whatever waits
// for the peer's frames always has a reader.

// TestConnHandlerWaitsOnCallDone: a handler that makes a request on its own
// connection with Go and waits on the call's Done channel (not Wait, which
// would read for itself) still gets its reply, at both ends.
func TestConnHandlerWaitsOnCallDone(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	ask := func(ctx context.Context, m *Message) {
		if !m.WantsReply() {
			return
		}
		if q, _ := m.Body.String("q"); q != "" {
			m.Reply(ctx, Dict("a", String("answer to "+q)))
			return
		}
		call := m.Connection().Go(ctx, Dict("q", String("back")))
		select {
		case <-call.Done():
		case <-ctx.Done():
			m.ReplyError(ctx, NewErrorObject("no reply"))
			return
		}
		r, err := call.Result()
		if err != nil {
			m.ReplyError(ctx, NewErrorObject(err.Error()))
			return
		}
		a, _ := r.String("a")
		m.Reply(ctx, Dict("via", String(a)))
	}
	l := serve(t, handlerFor(ask))
	c := dial(t, l, newTestHandler(ask))
	for range 3 {
		r, err := c.SendWithReply(ctx, Dict())
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := r.String("via"); v != "answer to back" {
			t.Fatalf("reply %v", r)
		}
	}
	// And the other way round, from the server's peer connection.
	p := l.Peers()[0]
	r, err := p.SendWithReply(ctx, Dict())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := r.String("via"); v != "answer to back" {
		t.Fatalf("reply %v", r)
	}
}

// TestConnHandlerSendsPastTheWindow: a handler that sends more one-way
// messages on its own connection than the flow-control window holds waits
// for credit, which only the peer's frames bring: they are read although
// the handler holds the goroutine that read its message.
func TestConnHandlerSendsPastTheWindow(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	const n = 3 * wire.CreditWindow
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		for i := range n {
			if err := m.Connection().Send(ctx, Dict("i", Int64(int64(i)))); err != nil {
				m.ReplyError(ctx, NewErrorObject(err.Error()))
				return
			}
		}
		m.Reply(ctx, Dict("sent", Int64(n)))
	}))
	got := &numbered{}
	c := dial(t, l, newTestHandler(got.record))
	r, err := c.SendWithReply(ctx, Dict())
	if err != nil {
		t.Fatal(err)
	}
	if mustInt64(t, r, "sent") != n {
		t.Fatalf("reply %v", r)
	}
	// The messages were sent before the reply, so they have been read
	// before it; their delivery may still be under way.
	got.wait(t, n)
}

// TestConnCallersAndMessagesInterleave: while several callers read their own
// replies, the peer's one-way messages arrive among them; every message
// reaches the handler, in order, and every reply its caller.
func TestConnCallersAndMessagesInterleave(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	const msgs = 2000
	start := make(chan struct{})
	l := serve(t, func(p *Connection) Handler {
		go func() {
			<-start
			for i := range msgs {
				if err := p.Send(ctx, Dict("i", Int64(int64(i)))); err != nil {
					return
				}
			}
		}()
		return HandlerFunc(echo)
	})
	got := &numbered{}
	c := dial(t, l, newTestHandler(got.record))
	if _, err := c.SendWithReply(ctx, Dict()); err != nil { // the peer exists now
		t.Fatal(err)
	}
	close(start)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				id := int64(g*1000 + i)
				r, err := c.SendWithReply(ctx, Dict("id", Int64(id)))
				if err == nil && mustInt64(t, r, "id") != id {
					err = errors.New("reply for another request")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got.wait(t, msgs)
}

// TestConnReadingCallerGivesUp: a caller reading its own reply whose context
// ends returns the context's error; a call made meanwhile by another
// goroutine still gets its reply, the late reply is discarded, and the
// connection carries on.
func TestConnReadingCallerGivesUp(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	release := newGate()
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		if op, _ := m.Body.String("op"); op == "slow" {
			m.Defer()
			go func() {
				release.wait()
				m.Reply(ctx, Dict("op", String("slow")))
			}()
			return
		}
		echo(ctx, m)
	}))
	t.Cleanup(release.open)
	c := dial(t, l, nil)
	if _, err := c.SendWithReply(ctx, Dict()); err != nil {
		t.Fatal(err)
	}
	// A pending call whose owner does not wait in Wait.
	other := c.Go(ctx, Dict("op", String("slow")))
	sctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	_, err := c.SendWithReply(sctx, Dict("op", String("slow")))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("gave up with %v", err)
	}
	release.open()
	select {
	case <-other.Done():
	case <-ctx.Done():
		t.Fatal("the other call never completed")
	}
	if _, err := other.Result(); err != nil {
		t.Fatal(err)
	}
	r, err := c.SendWithReply(ctx, Dict("x", Int64(5)))
	if err != nil {
		t.Fatal(err)
	}
	if mustInt64(t, r, "x") != 5 {
		t.Fatalf("reply %v", r)
	}
}

// TestConnPeerGoneDuringHandler: a handler runs on the goroutine that read
// its message, so the peer's exit is noticed when it returns (documented on
// Handler); the connection then ends with ErrPeerGone and nothing leaks.
func TestConnPeerGoneDuringHandler(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	entered := newGate()
	release := newGate()
	h := newTestHandler(func(ctx context.Context, m *Message) {
		entered.open()
		release.wait()
	})
	var peer *Connection
	peers := make(chan *Connection, 1)
	l := serve(t, func(p *Connection) Handler { peers <- p; return h })
	t.Cleanup(release.open)
	c := dial(t, l, nil)
	if err := c.Send(ctx, Dict()); err != nil {
		t.Fatal(err)
	}
	peer = <-peers
	waitClosed(t, entered.done(), "handler")
	c.Cancel()
	waitClosed(t, c.Done(), "client connection")
	release.open()
	h.finalEvent(t, ErrInvalid, ErrPeerGone)
	waitClosed(t, peer.Done(), "peer connection")
}

// numbered records the "i" of each message a handler receives.
type numbered struct {
	mu  sync.Mutex
	got []int64
}

func (n *numbered) record(ctx context.Context, m *Message) {
	i, _ := m.Body.Int64("i")
	n.mu.Lock()
	n.got = append(n.got, i)
	n.mu.Unlock()
}

// wait waits until want messages have come and checks that they came
// numbered 0, 1, 2, ... in order.
func (n *numbered) wait(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		n.mu.Lock()
		k := len(n.got)
		n.mu.Unlock()
		if k == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages delivered", k, want)
		}
		time.Sleep(time.Millisecond)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, v := range n.got {
		if v != int64(i) {
			t.Fatalf("message %d delivered as number %d", v, i)
		}
	}
}

// TestConnFirstCallReadsItself: a connection dialed by SendWithReply gets
// no watcher until that call is done: the caller reads its own reply from
// the start instead of waiting for a watcher goroutine to hand it over.
// One dialed by Send or Go starts its watcher at once.
func TestConnFirstCallReadsItself(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	entered, release := newGate(), newGate()
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		if op, _ := m.Body.String("op"); op == "hold" {
			entered.open()
			release.wait()
		}
		echo(ctx, m)
	}))
	t.Cleanup(release.open)
	linkState := func(c *Connection) (watchers int, deferred, reading bool) {
		c.mu.Lock()
		lk := c.link
		c.mu.Unlock()
		lk.mu.Lock()
		defer lk.mu.Unlock()
		return lk.rd.watchers, lk.rd.deferred, lk.rd.held
	}

	c := dial(t, l, nil)
	done := make(chan error, 1)
	go func() {
		_, err := c.SendWithReply(ctx, Dict("op", String("hold")))
		done <- err
	}()
	waitClosed(t, entered.done(), "handler")
	// The caller may still be on its way from sending to reading.
	deadline := time.Now().Add(testTimeout)
	for {
		w, d, r := linkState(c)
		if w != 0 || !d {
			t.Fatalf("during the first call: %d watchers, deferred %v; want 0, true", w, d)
		}
		if r {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the caller never read its reply itself")
		}
		time.Sleep(time.Millisecond)
	}
	release.open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w, d, _ := linkState(c); w != 1 || d {
		t.Errorf("after the first call: %d watchers, deferred %v; want 1, false", w, d)
	}
	// The connection goes on as any other.
	if r, err := c.SendWithReply(ctx, Dict("x", Int64(3))); err != nil || mustInt64(t, r, "x") != 3 {
		t.Fatalf("second call: %v %v", r, err)
	}

	c2 := dial(t, l, nil)
	if err := c2.Send(ctx, Dict()); err != nil {
		t.Fatal(err)
	}
	if w, d, _ := linkState(c2); w != 1 || d {
		t.Errorf("after a first Send: %d watchers, deferred %v; want 1, false", w, d)
	}
}
