package xpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// In-process connection tests: both ends in this process, over real
// sockets. The multi-process ones are in conn_multiproc_test.go, the
// hostile-peer ones in conn_hostile_test.go.

func TestConnRoundTrip(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		n := mustInt64(t, m.Body, "n")
		m.Reply(ctx, Dict("n", Int64(n+1), "pid", Int64(int64(m.Peer().PID))))
	}))
	h := newTestHandler(nil)
	c := dial(t, l, h)
	if c.Peer() != nil {
		t.Error("Peer() before the first send is not nil")
	}
	for i := range 100 {
		r, err := c.SendWithReply(ctx, Dict("n", Int64(int64(i))))
		if err != nil {
			t.Fatal(err)
		}
		if n := mustInt64(t, r, "n"); n != int64(i+1) {
			t.Fatalf("reply %d to %d", n, i)
		}
		if pid := mustInt64(t, r, "pid"); pid != int64(os.Getpid()) {
			t.Fatalf("server saw pid %d, want %d", pid, os.Getpid())
		}
	}
	p := c.Peer()
	if p == nil || p.PID != os.Getpid() || !p.Alive() {
		t.Fatalf("Peer() = %v, want this process, alive", p)
	}
	if c.Err() != nil {
		t.Fatalf("Err() = %v on a live connection", c.Err())
	}
	c.Cancel()
	h.finalEvent(t, ErrInvalid, ErrCanceled)
	waitClosed(t, c.Done(), "connection")
	wantConnErr(t, c.Err(), ErrInvalid, ErrCanceled)
	if p.Alive() {
		t.Error("Peer.Alive() is true after the connection ended")
	}
	// Final: sends fail with the same error.
	if err := c.Send(ctx, Dict()); !errors.Is(err, ErrCanceled) {
		t.Errorf("Send after Cancel: %v", err)
	}
	if _, err := c.SendWithReply(ctx, Dict()); !errors.Is(err, ErrCanceled) {
		t.Errorf("SendWithReply after Cancel: %v", err)
	}
}

// TestConnOrder: one-way messages arrive in order, never two at a time.
func TestConnOrder(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	const n = 1000
	var (
		mu       sync.Mutex
		got      []int64
		bodies   []*Dictionary
		inside   atomic.Int32
		overlaps atomic.Int32
	)
	all := newGate()
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		if inside.Add(1) != 1 {
			overlaps.Add(1)
		}
		defer inside.Add(-1)
		// Give a concurrent delivery, if there were one, time to show.
		if len(got)%100 == 0 {
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		got = append(got, mustInt64(t, m.Body, "seq"))
		bodies = append(bodies, m.Body)
		if len(got) == n {
			all.open()
		}
		mu.Unlock()
	}))
	c := dial(t, l, nil)
	for i := range n {
		body := Dict("seq", Int64(int64(i)), "data", Data(fmt.Sprintf("data %d", i)),
			"s", String(fmt.Sprintf("string %d", i)))
		if err := c.Send(ctx, body); err != nil {
			t.Fatal(err)
		}
	}
	waitClosed(t, all.done(), "all messages")
	if k := overlaps.Load(); k != 0 {
		t.Errorf("%d messages were delivered while another was being handled", k)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, s := range got {
		if s != int64(i) {
			t.Fatalf("message %d has seq %d", i, s)
		}
	}
	// Bodies stay intact after the receive buffers they came in are
	// reused for later messages.
	for i, b := range bodies {
		d, _ := b.Data("data")
		s, _ := b.String("s")
		if string(d) != fmt.Sprintf("data %d", i) || s != fmt.Sprintf("string %d", i) {
			t.Fatalf("message %d changed after delivery: %q %q", i, d, s)
		}
	}
}

// TestConnHandlerMakesBlockingRequests: a handler may wait for a reply from
// the peer it is serving, over the same connection, and from another
// connection, before it replies.
func TestConnHandlerMakesBlockingRequests(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	other := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		m.Reply(ctx, Dict("other", String("yes")))
	}))
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		// Back to the client, on the connection this request came on.
		back, err := m.Connection().SendWithReply(ctx, Dict("q", String("who are you?")))
		if err != nil {
			m.ReplyError(ctx, NewErrorObject("back: "+err.Error()))
			return
		}
		// And to a third party, over a connection made right here.
		oc := dialEndpointT(t, mustEndpoint(t, other), nil)
		defer oc.Cancel()
		o, err := oc.SendWithReply(ctx, Dict())
		if err != nil {
			m.ReplyError(ctx, NewErrorObject("other: "+err.Error()))
			return
		}
		a, _ := back.String("a")
		s, _ := o.String("other")
		m.Reply(ctx, Dict("a", String(a), "other", String(s)))
	}))
	c := dial(t, l, newTestHandler(func(ctx context.Context, m *Message) {
		m.Reply(ctx, Dict("a", String("the client")))
	}))
	for range 3 {
		r, err := c.SendWithReply(ctx, Dict("q", String("R")))
		if err != nil {
			t.Fatal(err)
		}
		if a, _ := r.String("a"); a != "the client" {
			t.Errorf("a = %q", a)
		}
		if o, _ := r.String("other"); o != "yes" {
			t.Errorf("other = %q", o)
		}
	}
}

func mustEndpoint(t *testing.T, l *Listener) *Endpoint {
	t.Helper()
	ep, err := l.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// TestConnFlowControl: a receiver whose handler is stuck holds at most one
// window of messages; the sender's Send then waits and returns its ctx's
// error; releasing the handler drains everything.
func TestConnFlowControl(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	release := newGate()
	var handled atomic.Int64
	peers := make(chan *Connection, 1)
	l := serve(t, func(p *Connection) Handler {
		peers <- p
		return HandlerFunc(func(ctx context.Context, m *Message) {
			release.wait()
			handled.Add(1)
		})
	})
	t.Cleanup(release.open) // before the connections are cancelled
	c := dial(t, l, nil)
	sent := 0
	for {
		sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		err := c.Send(sctx, Dict("i", Int64(int64(sent)), "pad", Data(make([]byte, 100))))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && creditsLeft(c) == 0 {
			break
		}
		if errors.Is(err, context.DeadlineExceeded) {
			continue // a slow machine: the socket, not the window
		}
		if err != nil {
			t.Fatal(err)
		}
		sent++
		if sent > 10*wire.CreditWindow {
			t.Fatal("Send never blocked")
		}
	}
	if sent != wire.CreditWindow {
		t.Errorf("Send blocked after %d messages, want the window of %d", sent, wire.CreditWindow)
	}
	p := <-peers
	queued := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.queue)
	}
	// More attempts change nothing on either side.
	for range 5 {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		if err := c.Send(sctx, Dict()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send on a full window: %v", err)
		}
		if _, err := c.SendWithReply(sctx, Dict()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SendWithReply on a full window: %v", err)
		}
		cancel()
	}
	if q := queued(); q > wire.CreditWindow {
		t.Errorf("receiver queued %d messages, more than the window", q)
	}
	release.open()
	// Everything drains, and the window keeps turning.
	for i := range 4 * wire.CreditWindow {
		if err := c.Send(ctx, Dict("i", Int64(int64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	want := int64(sent + 4*wire.CreditWindow)
	for handled.Load() != want {
		if ctx.Err() != nil {
			t.Fatalf("handled %d of %d", handled.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	if q := queued(); q != 0 {
		t.Errorf("%d messages still queued", q)
	}
}

// creditsLeft returns how many more messages c may send before the peer
// grants more.
func creditsLeft(c *Connection) int {
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	l.credits.mu.Lock()
	defer l.credits.mu.Unlock()
	return l.credits.n
}

// TestConnSlowHandlerDoesNotStallReplies: replies are delivered by the
// reader, not the dispatcher, so a handler that is stuck on one message does
// not stop replies from reaching waiting callers, in either direction.
func TestConnSlowHandlerDoesNotStallReplies(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	serverStuck := newGate()
	serverRelease := newGate()
	peers := make(chan *Connection, 1)
	l := serve(t, func(p *Connection) Handler {
		peers <- p
		return HandlerFunc(func(ctx context.Context, m *Message) {
			if op, _ := m.Body.String("op"); op == "block" {
				serverStuck.open()
				serverRelease.wait()
				return
			}
			echo(ctx, m)
		})
	})
	t.Cleanup(serverRelease.open)
	clientStuck := newGate()
	clientRelease := newGate()
	c := dial(t, l, newTestHandler(func(ctx context.Context, m *Message) {
		if op, _ := m.Body.String("op"); op == "block" {
			clientStuck.open()
			clientRelease.wait()
			return
		}
		echo(ctx, m)
	}))
	t.Cleanup(clientRelease.open)

	// The server's handler is stuck; a request from server to client
	// still completes.
	if err := c.Send(ctx, Dict("op", String("block"))); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, serverStuck.done(), "server handler")
	p := <-peers
	r, err := p.SendWithReply(ctx, Dict("x", Int64(7)))
	if err != nil {
		t.Fatal(err)
	}
	if mustInt64(t, r, "x") != 7 {
		t.Fatal("wrong reply")
	}
	serverRelease.open()

	// The client's handler is stuck; a request from client to server still
	// completes.
	if err := p.Send(ctx, Dict("op", String("block"))); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, clientStuck.done(), "client handler")
	r, err = c.SendWithReply(ctx, Dict("x", Int64(8)))
	if err != nil {
		t.Fatal(err)
	}
	if mustInt64(t, r, "x") != 8 {
		t.Fatal("wrong reply")
	}
	clientRelease.open()
}

// TestConnTransactions: a request is an open transaction from its arrival
// to its reply, also when the reply is deferred, and when the handler
// returns without replying.
func TestConnTransactions(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	held := make(chan *Message, 1)
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		switch op, _ := m.Body.String("op"); op {
		case "defer":
			m.Defer()
			held <- m
		case "none":
			// Return without replying.
		case "oneway":
		}
	}))
	c := dial(t, l, nil)
	tx := l.Transactions()
	if tx.Count() != 0 {
		t.Fatalf("count %d before anything", tx.Count())
	}

	call := c.Go(ctx, Dict("op", String("defer")))
	m := <-held
	if n := tx.Count(); n != 1 {
		t.Errorf("count %d while a deferred request is held, want 1", n)
	}
	changed := tx.Changed()
	if err := m.Reply(ctx, Dict("ok", Bool(true))); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, changed, "transaction count change")
	if n := tx.Count(); n != 0 {
		t.Errorf("count %d after the reply, want 0", n)
	}
	if _, err := call.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Reply(ctx, Dict()); !errors.Is(err, ErrAlreadyReplied) {
		t.Errorf("second Reply: %v, want ErrAlreadyReplied", err)
	}
	if n := tx.Count(); n != 0 {
		t.Errorf("count %d after a second reply, want 0", n)
	}

	_, err := c.SendWithReply(ctx, Dict("op", String("none")))
	if !errors.Is(err, ErrNoReply) {
		t.Errorf("handler without reply: %v, want ErrNoReply", err)
	}
	// The transaction ends just after the no-reply frame is out.
	waitTxCount(t, tx, 0)

	// One-way messages are not transactions; the connection still works.
	if err := c.Send(ctx, Dict("op", String("oneway"))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendWithReply(ctx, Dict("op", String("none"))); !errors.Is(err, ErrNoReply) {
		t.Errorf("%v", err)
	}
	waitTxCount(t, tx, 0)
}

// waitTxCount waits for tx to count n.
func waitTxCount(t *testing.T, tx *Transactions, n int) {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		ch := tx.Changed()
		if got := tx.Count(); got == n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("transaction count %d, want %d", tx.Count(), n)
		}
	}
}

// TestConnTransactionEndsWithConnection: a deferred request whose
// connection dies is no longer counted once it is answered (the answer
// fails).
func TestConnTransactionEndsWithConnection(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	held := make(chan *Message, 1)
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		m.Defer()
		held <- m
	}))
	c := dial(t, l, nil)
	call := c.Go(ctx, Dict())
	m := <-held
	if n := l.Transactions().Count(); n != 1 {
		t.Fatalf("count %d, want 1", n)
	}
	c.Cancel()
	if _, err := call.Wait(ctx); !errors.Is(err, ErrCanceled) {
		t.Fatalf("pending call after Cancel: %v", err)
	}
	waitClosed(t, m.Connection().Done(), "server peer")
	if err := m.Reply(ctx, Dict()); err == nil {
		t.Error("Reply on a dead connection succeeded")
	}
	waitTxCount(t, l.Transactions(), 0)
}

func TestConnRemoteError(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		m.ReplyError(ctx, NewErrorObject("no such thing"))
	}))
	c := dial(t, l, nil)
	_, err := c.SendWithReply(ctx, Dict())
	var re *RemoteError
	if !errors.As(err, &re) || re.Object.Description() != "no such thing" {
		t.Fatalf("got %v, want a RemoteError", err)
	}
	// A per-call error: the connection lives on.
	if err := c.Send(ctx, Dict()); err != nil {
		t.Fatal(err)
	}
}

func TestConnNotActivated(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	l := serve(t, handlerFor(echo))
	ep := mustEndpoint(t, l)
	c, err := NewEndpointConnection(ep)
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(nil)
	c.SetHandler(h)
	if err := c.Send(ctx, Dict()); !errors.Is(err, ErrNotActivated) {
		t.Errorf("Send before Activate: %v", err)
	}
	if _, err := c.SendWithReply(ctx, Dict()); !errors.Is(err, ErrNotActivated) {
		t.Errorf("SendWithReply before Activate: %v", err)
	}
	// Cancelled without ever being activated: Done still closes, and the
	// handler, never started, hears nothing.
	c.Cancel()
	waitClosed(t, c.Done(), "never-activated connection")
	wantConnErr(t, c.Err(), ErrInvalid, ErrCanceled)
	c.Activate()    // does nothing now
	c.SetHandler(h) // nor does this, nor panics
	if err := c.Send(ctx, Dict()); !errors.Is(err, ErrCanceled) {
		t.Errorf("Send after Cancel: %v", err)
	}
	select {
	case ev := <-h.events:
		t.Errorf("never-activated handler got event %v", ev)
	default:
	}
}

// TestConnCancelPending: the owner's Cancel fails pending calls with
// ErrCanceled and ends with a final ErrCanceled event; the other side sees
// the peer gone, which is a different reason.
func TestConnCancelPending(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	held := make(chan *Message, 8)
	serverEvents := make(chan *testHandler, 1)
	l := serve(t, func(p *Connection) Handler {
		h := newTestHandler(func(ctx context.Context, m *Message) {
			m.Defer()
			held <- m
		})
		serverEvents <- h
		return h
	})
	h := newTestHandler(nil)
	c := dial(t, l, h)
	var calls []*Call
	for range 5 {
		calls = append(calls, c.Go(ctx, Dict()))
	}
	for range 5 {
		<-held
	}
	c.Cancel()
	for i, call := range calls {
		_, err := call.Wait(ctx)
		wantConnErr(t, err, ErrInvalid, ErrCanceled)
		if errors.Is(err, ErrPeerGone) {
			t.Errorf("call %d: cancel reported as peer gone: %v", i, err)
		}
	}
	h.finalEvent(t, ErrInvalid, ErrCanceled)
	sh := <-serverEvents
	err := sh.finalEvent(t, ErrInvalid, ErrPeerGone)
	if errors.Is(err, ErrCanceled) {
		t.Errorf("the server saw %v, not the peer going", err)
	}
	select {
	case ev := <-h.events:
		t.Errorf("event after the final one: %v", ev)
	default:
	}
}

// TestConnCancelFromHandler: a handler may cancel its own connection; it
// then gets the final event after it returns, and Done closes.
func TestConnCancelFromHandler(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	var sh *testHandler
	ready := make(chan struct{})
	l := serve(t, func(p *Connection) Handler {
		sh = newTestHandler(func(ctx context.Context, m *Message) {
			m.Connection().Cancel()
			if ctx.Err() == nil {
				t.Error("handler ctx not done after Cancel")
			}
			if err := m.Reply(context.Background(), Dict()); err == nil {
				t.Error("Reply after Cancel succeeded")
			}
		})
		close(ready)
		return sh
	})
	c := dial(t, l, nil)
	_, err := c.SendWithReply(ctx, Dict())
	wantConnErr(t, err, ErrInvalid, ErrPeerGone)
	<-ready
	sh.finalEvent(t, ErrInvalid, ErrCanceled)
}

// TestConnAbandonedCall: a call whose Wait gives up completes with the ctx
// error; its late reply is discarded without harming the connection.
func TestConnAbandonedCall(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	held := make(chan *Message, 1)
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		if op, _ := m.Body.String("op"); op == "hold" {
			m.Defer()
			held <- m
			return
		}
		echo(ctx, m)
	}))
	h := newTestHandler(nil)
	c := dial(t, l, h)
	call := c.Go(ctx, Dict("op", String("hold")))
	m := <-held
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err := call.Wait(wctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v", err)
	}
	waitClosed(t, call.Done(), "abandoned call")
	if _, err := call.Result(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Result: %v", err)
	}
	// The late reply (with a descriptor, which must be closed) is dropped.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := m.Reply(ctx, Dict("fd", NewFD(r))); err != nil {
		t.Fatal(err)
	}
	r.Close()
	rep, err := c.SendWithReply(ctx, Dict("op", String("echo"), "x", Int64(3)))
	if err != nil {
		t.Fatalf("connection broken by a late reply: %v", err)
	}
	if mustInt64(t, rep, "x") != 3 {
		t.Fatal("wrong reply")
	}
	select {
	case ev := <-h.events:
		t.Errorf("unexpected event %v", ev)
	default:
	}
}

// TestConnFD: a descriptor crosses in a message; the receiver reads through
// its own copy, and the sender keeps its own.
func TestConnFD(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		fd, ok := m.Body.Get("r").(*FD)
		if !ok {
			m.ReplyError(ctx, NewErrorObject("no fd"))
			return
		}
		defer fd.Close()
		b, err := io.ReadAll(fd.File())
		if err != nil {
			m.ReplyError(ctx, NewErrorObject(err.Error()))
			return
		}
		m.Reply(ctx, Dict("data", Data(b)))
	}))
	c := dial(t, l, nil)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fdObj := NewFD(r)
	defer fdObj.Close()
	go func() {
		w.Write([]byte("through the pipe"))
		w.Close()
	}()
	rep, err := c.SendWithReply(ctx, Dict("r", fdObj))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := rep.Data("data"); string(d) != "through the pipe" {
		t.Errorf("receiver read %q", d)
	}
	// The sender's object still owns a working descriptor.
	if _, err := unix.FcntlInt(fdObj.File().Fd(), unix.F_GETFD, 0); err != nil {
		t.Errorf("sender's fd after sending: %v", err)
	}
}

// TestConnManyFDs: the most descriptors one message may carry get through;
// one more fails that message only.
func TestConnManyFDs(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		a, _ := m.Body.Array("fds")
		n := 0
		for _, o := range a {
			if f, ok := o.(*FD); ok && f.File() != nil {
				n++
			}
		}
		CloseAttachments(m.Body)
		m.Reply(ctx, Dict("n", Int64(int64(n))))
	}))
	c := dial(t, l, nil)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	arr := make(Array, wire.MaxFDs-1)
	for i := range arr {
		arr[i] = NewFD(r) // the same file: sending dups it
	}
	rep, err := c.SendWithReply(ctx, Dict("fds", arr))
	if err != nil {
		t.Fatal(err)
	}
	if n := mustInt64(t, rep, "n"); n != wire.MaxFDs-1 {
		t.Errorf("receiver got %d descriptors", n)
	}
	arr = append(arr, NewFD(r))
	if _, err := c.SendWithReply(ctx, Dict("fds", arr)); !errors.Is(err, ErrTooManyFDs) {
		t.Errorf("one descriptor too many: %v", err)
	}
	// Large body and many descriptors together: the out-of-line memfd
	// takes one of the 253 places.
	arr = arr[:wire.MaxFDs-1]
	rep, err = c.SendWithReply(ctx, Dict("fds", arr, "big", Data(make([]byte, 2*wire.InlineMax))))
	if err != nil {
		t.Fatal(err)
	}
	if n := mustInt64(t, rep, "n"); n != wire.MaxFDs-1 {
		t.Errorf("receiver got %d descriptors", n)
	}
}

// TestConnSharedMemory: a sealed region arrives sealed with its contents; an
// unsealed one maps writable and writes are seen by both sides.
func TestConnSharedMemory(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		shm, ok := m.Body.Get("shm").(*SharedMemory)
		if !ok {
			m.ReplyError(ctx, NewErrorObject("no shmem"))
			return
		}
		defer shm.Close()
		b, err := shm.Bytes()
		if err != nil {
			m.ReplyError(ctx, NewErrorObject(err.Error()))
			return
		}
		out := Dict("sealed", Bool(shm.Sealed()), "size", Int64(int64(shm.Size())),
			"head", Data(bytes.Clone(b[:16])))
		if !shm.Sealed() {
			copy(b, "written by peer!")
		}
		m.Reply(ctx, out)
	}))
	c := dial(t, l, nil)

	const size = 1 << 20
	sealed, err := NewSharedMemory("sealed", size)
	if err != nil {
		t.Fatal(err)
	}
	defer sealed.Close()
	if _, err := sealed.File().WriteAt([]byte("sealed contents!"), 0); err != nil {
		t.Fatal(err)
	}
	if err := sealed.Seal(); err != nil {
		t.Fatal(err)
	}
	rep, err := c.SendWithReply(ctx, Dict("shm", sealed))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := rep.Bool("sealed"); !s {
		t.Error("receiver does not see the region sealed")
	}
	if n := mustInt64(t, rep, "size"); n != size {
		t.Errorf("receiver sees size %d", n)
	}
	if h, _ := rep.Data("head"); string(h) != "sealed contents!" {
		t.Errorf("receiver read %q", h)
	}

	open, err := NewSharedMemory("open", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	mine, err := open.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	copy(mine, "written by me...")
	rep, err = c.SendWithReply(ctx, Dict("shm", open))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := rep.Bool("sealed"); s {
		t.Error("an unsealed region arrived sealed")
	}
	if h, _ := rep.Data("head"); string(h) != "written by me..." {
		t.Errorf("receiver read %q", h)
	}
	if string(mine[:16]) != "written by peer!" {
		t.Errorf("the peer's write is not visible: %q", mine[:16])
	}
}

// TestConnEndpointInMessage: a listener's endpoint travels in a reply; the
// receiver connects to it; after that listener is cancelled, a new
// connection through the endpoint fails as invalid, peer gone.
func TestConnEndpointInMessage(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	inner := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		m.Reply(ctx, Dict("from", String("inner")))
	}))
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		ep, err := inner.Endpoint()
		if err != nil {
			m.ReplyError(ctx, NewErrorObject(err.Error()))
			return
		}
		defer ep.Close()
		m.Reply(ctx, Dict("ep", ep))
	}))
	c := dial(t, l, nil)
	rep, err := c.SendWithReply(ctx, Dict())
	if err != nil {
		t.Fatal(err)
	}
	ep, ok := rep.Get("ep").(*Endpoint)
	if !ok {
		t.Fatalf("reply holds %v", rep.Get("ep"))
	}
	defer ep.Close()
	ic := dialEndpointT(t, ep, nil)
	r, err := ic.SendWithReply(ctx, Dict())
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.String("from"); s != "inner" {
		t.Fatalf("from %q", s)
	}

	inner.Cancel()
	waitClosed(t, inner.Done(), "inner listener")
	if _, err := inner.Endpoint(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Endpoint() of a cancelled listener: %v", err)
	}
	// The connection made before lives on.
	if _, err := ic.SendWithReply(ctx, Dict()); err != nil {
		t.Errorf("existing connection after the listener's cancel: %v", err)
	}
	h := newTestHandler(nil)
	late := dialEndpointT(t, ep, h)
	_, err = late.SendWithReply(ctx, Dict())
	wantConnErr(t, err, ErrInvalid, ErrPeerGone)
	h.finalEvent(t, ErrInvalid, ErrPeerGone)
	wantConnErr(t, late.Err(), ErrInvalid, ErrPeerGone)
}

// TestConnLargeMessages: bodies beyond one datagram go out of line and
// arrive whole.
func TestConnLargeMessages(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	l := serve(t, handlerFor(echo))
	c := dial(t, l, nil)
	for _, size := range []int{wire.InlineMax - 100, wire.InlineMax, 1 << 20, 32 << 20} {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i * 7 >> 3)
		}
		rep, err := c.SendWithReply(ctx, Dict("blob", Data(b), "size", Int64(int64(size))))
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		got, _ := rep.Data("blob")
		if !bytes.Equal(got, b) {
			t.Fatalf("%d bytes: came back different (%d bytes)", size, len(got))
		}
	}
}

// TestConnMaxMessageSize: a message over the sender's limit fails alone; a
// message over the receiver's limit is a protocol error that ends the
// connection, and only it.
func TestConnMaxMessageSize(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	l := serve(t, handlerFor(echo))
	c := dial(t, l, nil, WithMaxMessageSize(1<<20))
	_, err := c.SendWithReply(ctx, Dict("blob", Data(make([]byte, 2<<20))))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if err := c.Send(ctx, Dict("blob", Data(make([]byte, 2<<20)))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit, one-way: %v", err)
	}
	if _, err := c.SendWithReply(ctx, Dict("blob", Data(make([]byte, 512<<10)))); err != nil {
		t.Fatalf("after a message too large: %v", err)
	}

	for _, tc := range []struct {
		name  string
		limit int
		size  int
	}{
		{"inline", 1000, 4000},
		{"out-of-line", 1 << 20, 2 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			var sh *testHandler
			got := make(chan struct{})
			small := serve(t, func(*Connection) Handler {
				sh = newTestHandler(echo)
				close(got)
				return sh
			}, WithMaxMessageSize(tc.limit))
			h := newTestHandler(nil)
			c := dial(t, small, h)
			if _, err := c.SendWithReply(ctx, Dict("blob", Data(make([]byte, tc.limit/2)))); err != nil {
				t.Fatalf("under the limit: %v", err)
			}
			_, err := c.SendWithReply(ctx, Dict("blob", Data(make([]byte, tc.size))))
			wantConnErr(t, err, ErrInvalid, ErrPeerGone)
			h.finalEvent(t, ErrInvalid, ErrPeerGone)
			<-got
			sh.finalEvent(t, ErrInvalid, ErrProtocol)
		})
	}
}

// TestConnListenerTurnsAway: a peer the listener's handler leaves
// inactive is cancelled, with nothing leaked; the client sees the peer gone.
func TestConnListenerTurnsAway(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	l, err := NewListener()
	if err != nil {
		t.Fatal(err)
	}
	turned := make(chan *Connection, 2)
	l.SetHandler(func(p *Connection) { turned <- p })
	l.Activate()
	defer func() { l.Cancel(); waitClosed(t, l.Done(), "listener") }()
	c := dial(t, l, nil)
	_, err = c.SendWithReply(ctx, Dict())
	wantConnErr(t, err, ErrInvalid, ErrPeerGone)
	p := <-turned
	waitClosed(t, p.Done(), "turned-away peer")
	wantConnErr(t, p.Err(), ErrInvalid, ErrDenied)
	if n := len(l.Peers()); n != 0 {
		t.Errorf("listener still lists %d peers", n)
	}
}

// TestListenerCancel: Done closes whether or not the listener was activated,
// and the listener's descriptors are released.
func TestListenerCancel(t *testing.T) {
	leakCheck(t)
	for _, activate := range []bool{false, true} {
		l, err := NewListener()
		if err != nil {
			t.Fatal(err)
		}
		l.SetHandler(func(p *Connection) { p.Cancel() })
		if activate {
			l.Activate()
		}
		ep, err := l.Endpoint()
		if err != nil {
			t.Fatal(err)
		}
		l.Cancel()
		l.Cancel()
		waitClosed(t, l.Done(), "listener")
		ep.Close()
	}
}

// TestListenerPeerCancelledAsAdmitted: a peer cancelled through Peers
// while the listener is still admitting it (sending its hello) is no
// harm: the listener reads the peer's link under the peer's lock, so the
// race detector finds nothing, and a peer cancelled first gets no hello.
func TestListenerPeerCancelledAsAdmitted(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	l, err := NewListener()
	if err != nil {
		t.Fatal(err)
	}
	// The handler touches nothing of the peer's, so that only the
	// listener's own admission orders its reads against Cancel.
	admitted := make(chan struct{}, 1)
	l.SetHandler(func(p *Connection) {
		time.Sleep(5 * time.Millisecond)
		admitted <- struct{}{}
	})
	l.Activate()
	defer func() { l.Cancel(); waitClosed(t, l.Done(), "listener") }()
	stop := make(chan struct{})
	canceller := make(chan struct{})
	defer func() { close(stop); <-canceller }()
	go func() {
		defer close(canceller)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, p := range l.Peers() {
				p.Cancel()
			}
			runtime.Gosched()
		}
	}()
	for range 20 {
		c := dial(t, l, nil)
		// It connects; whether the message is read before the peer is
		// cancelled is the canceller's luck.
		_ = c.Send(ctx, Dict())
		select {
		case <-admitted:
		case <-ctx.Done():
			t.Fatal("the listener did not admit the peer")
		}
	}
}

// TestConnTerminationImminent: AnnounceTermination reaches each peer's
// handler as an event that does not end the connection.
func TestConnTerminationImminent(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	l := serve(t, handlerFor(echo))
	h := newTestHandler(nil)
	c := dial(t, l, h)
	if _, err := c.SendWithReply(ctx, Dict()); err != nil {
		t.Fatal(err)
	}
	if err := l.AnnounceTermination(ctx); err != nil {
		t.Fatal(err)
	}
	ev := h.nextEvent(t)
	if !errors.Is(ev, ErrTerminationImminent) || errors.Is(ev, ErrInvalid) {
		t.Fatalf("event %v, want ErrTerminationImminent", ev)
	}
	if _, err := c.SendWithReply(ctx, Dict()); err != nil {
		t.Fatalf("after the announcement: %v", err)
	}
}

// TestConnInterrupted: a connection that can redial (as a named service's
// does) is interrupted, not invalidated, when its link dies: pending calls
// fail with ErrInterrupted, the handler hears it, and the next send goes
// over a new link.
func TestConnInterrupted(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	cfg, err := newConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		listeners []*Listener
	)
	held := make(chan *Message, 4)
	c := newConnection(cfg)
	c.reconnect = true
	c.dial = func(ctx context.Context) (linkEnd, error) {
		mu.Lock()
		gen := len(listeners)
		mu.Unlock()
		l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
			if op, _ := m.Body.String("op"); op == "hold" {
				m.Defer()
				held <- m
				return
			}
			m.Reply(ctx, Dict("gen", Int64(int64(gen))))
		}))
		mu.Lock()
		listeners = append(listeners, l)
		mu.Unlock()
		ep, err := l.Endpoint()
		if err != nil {
			return linkEnd{}, err
		}
		defer ep.Close()
		fd, err := dupFile(ep.File())
		if err != nil {
			return linkEnd{}, err
		}
		defer closeRaw(fd)
		return dialEndpoint(ctx, fd)
	}
	h := newTestHandler(nil)
	c.SetHandler(h)
	c.Activate()
	t.Cleanup(func() { c.Cancel(); waitClosed(t, c.Done(), "connection") })

	rep, err := c.SendWithReply(ctx, Dict())
	if err != nil {
		t.Fatal(err)
	}
	if g := mustInt64(t, rep, "gen"); g != 0 {
		t.Fatalf("first link went to listener %d", g)
	}
	call := c.Go(ctx, Dict("op", String("hold")))
	m := <-held
	// Kill the server's end of the first link.
	m.Connection().Cancel()
	_, err = call.Wait(ctx)
	wantConnErr(t, err, ErrInterrupted)
	if errors.Is(err, ErrInvalid) {
		t.Errorf("interruption reported as invalid: %v", err)
	}
	ev := h.nextEvent(t)
	if !errors.Is(ev, ErrInterrupted) || errors.Is(ev, ErrInvalid) {
		t.Fatalf("event %v, want ErrInterrupted", ev)
	}
	if c.Err() != nil {
		t.Fatalf("Err() = %v after an interruption", c.Err())
	}
	rep, err = c.SendWithReply(ctx, Dict())
	if err != nil {
		t.Fatalf("send after the interruption: %v", err)
	}
	if g := mustInt64(t, rep, "gen"); g != 1 {
		t.Fatalf("second link went to listener %d", g)
	}
	c.Cancel()
	h.finalEvent(t, ErrInvalid, ErrCanceled)
}

// TestConnSuspendResume: nothing is delivered while suspended; everything,
// in order, after Resume.
func TestConnSuspendResume(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	var got []int64
	var mu sync.Mutex
	peers := make(chan *Connection, 1)
	l := serve(t, func(p *Connection) Handler {
		p.Suspend()
		peers <- p
		return HandlerFunc(func(ctx context.Context, m *Message) {
			mu.Lock()
			got = append(got, mustInt64(t, m.Body, "i"))
			mu.Unlock()
			echo(ctx, m)
		})
	})
	c := dial(t, l, nil)
	for i := range 10 {
		if err := c.Send(ctx, Dict("i", Int64(int64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	p := <-peers
	call := c.Go(ctx, Dict("i", Int64(10)))
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	n := len(got)
	mu.Unlock()
	if n != 0 {
		t.Fatalf("%d messages delivered while suspended", n)
	}
	p.Resume()
	if _, err := call.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range got {
		if v != int64(i) {
			t.Fatalf("message %d is %d", i, v)
		}
	}
	if len(got) != 11 {
		t.Fatalf("got %d messages", len(got))
	}
}

// TestConnCancelWhileDialing: Cancel stops a dial that waits for a listener
// whose queue of connect requests is full; the waiting send fails with
// ErrCanceled, and Done closes only once the dial has let go of the
// endpoint's descriptor.
func TestConnCancelWhileDialing(t *testing.T) {
	leakCheck(t)
	l, err := NewListener() // never activated: connect requests pile up
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Cancel(); waitClosed(t, l.Done(), "listener") }()
	ep := mustEndpoint(t, l)
	epfd, err := dupFile(ep.File())
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	a, b, err := sock.Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(a)
	defer unix.Close(b)
	connect := frameOf(wire.KindConnect, 0, 1, 0, nil)
	for i := 0; ; i++ {
		err := unix.Sendmsg(epfd, connect, unix.UnixRights(a), nil, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i > 100000 {
			t.Fatal("the endpoint never filled")
		}
	}
	c, err := NewEndpointConnection(ep)
	if err != nil {
		t.Fatal(err)
	}
	c.Activate()
	errc := make(chan error, 1)
	go func() { errc <- c.Send(context.Background(), Dict()) }()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("Send to a full endpoint returned %v", err)
	default:
	}
	c.Cancel()
	select {
	case err := <-errc:
		wantConnErr(t, err, ErrInvalid, ErrCanceled)
	case <-time.After(testTimeout):
		t.Fatal("Cancel did not stop the dial")
	}
	waitClosed(t, c.Done(), "connection")
}
