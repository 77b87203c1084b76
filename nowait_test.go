package xpc

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// endedCtx returns a context that has already ended.
func endedCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	return ctx
}

// TestEndedContextSendsNothing: Send, SendWithReply and Go given a
// context that has already ended send nothing and return its error; the
// peer receives only what was sent after them.
func TestEndedContextSendsNothing(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	var mu sync.Mutex
	var got []int64
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		n, _ := m.Body.Int64("n")
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
		echo(ctx, m)
	}))
	c := dial(t, l, newTestHandler(nil))
	if _, err := c.SendWithReply(ctx, Dict("n", Int64(1))); err != nil {
		t.Fatal(err)
	}
	ended := endedCtx(t)
	if err := c.Send(ended, Dict("n", Int64(2))); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with an ended context: %v, want context.Canceled", err)
	}
	if _, err := c.SendWithReply(ended, Dict("n", Int64(3))); !errors.Is(err, context.Canceled) {
		t.Errorf("SendWithReply with an ended context: %v, want context.Canceled", err)
	}
	if _, err := c.Go(ended, Dict("n", Int64(4))).Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Go with an ended context: %v, want context.Canceled", err)
	}
	if _, err := c.SendWithReply(ctx, Dict("n", Int64(5))); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []int64{1, 5}) {
		t.Errorf("the peer received %v, want [1 5]", got)
	}
}

// TestEndedContextRepliesNothing: Reply and ReplyError given a context
// that has already ended send nothing and return its error; the message
// can still be answered.
func TestEndedContextRepliesNothing(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	ended := endedCtx(t)
	errs := make(chan error, 2)
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		errs <- m.Reply(ended, Dict("r", "ended"))
		errs <- m.ReplyError(ended, NewErrorObject("ended"))
		m.Reply(ctx, Dict("r", "live"))
	}))
	c := dial(t, l, newTestHandler(nil))
	reply, err := c.SendWithReply(ctx, Dict())
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := reply.String("r"); r != "live" {
		t.Errorf("reply %v, want the one made with a live context", reply)
	}
	for _, what := range []string{"Reply", "ReplyError"} {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("%s with an ended context: %v, want context.Canceled", what, err)
		}
	}
}

// TestEndedContextAnnouncesNothing: AnnounceTermination given a context
// that has already ended tells no peer.
func TestEndedContextAnnouncesNothing(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	l := serve(t, handlerFor(echo))
	markers := make(chan struct{}, 2)
	h := newTestHandler(func(ctx context.Context, m *Message) { markers <- struct{}{} })
	c := dial(t, l, h)
	if _, err := c.SendWithReply(ctx, Dict()); err != nil {
		t.Fatal(err)
	}
	// A marker sent after the announcement reaches the handler after any
	// event the announcement made.
	marker := func() {
		t.Helper()
		for _, p := range l.Peers() {
			if err := p.Send(ctx, Dict("marker", true)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-markers:
		case <-ctx.Done():
			t.Fatal("the marker did not arrive")
		}
	}
	if err := l.AnnounceTermination(endedCtx(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("AnnounceTermination with an ended context: %v, want context.Canceled", err)
	}
	marker()
	if n := len(h.events); n != 0 {
		t.Fatalf("%d events after an announcement with an ended context (%v)", n, <-h.events)
	}
	if err := l.AnnounceTermination(ctx); err != nil {
		t.Fatal(err)
	}
	marker()
	if ev := h.nextEvent(t); !errors.Is(ev, ErrTerminationImminent) {
		t.Fatalf("event %v, want ErrTerminationImminent", ev)
	}
}

// rawFrames reads every frame waiting on the raw peer's socket.
func rawFrames(t *testing.T, raw int) (frames []wire.Header, sizes []int) {
	t.Helper()
	b := make([]byte, wire.InlineMax+wire.HeaderSize)
	for {
		n, _, _, _, err := unix.Recvmsg(raw, b, nil, unix.MSG_DONTWAIT)
		if err != nil {
			return frames, sizes
		}
		h, err := wire.ParseHeader(b[:n])
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, h)
		sizes = append(sizes, n)
	}
}

// within runs fn, failing the test if it does not return in time: a send
// that must not wait must not hang the test when it does.
func within(t *testing.T, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(testTimeout):
		t.Fatalf("%s waited", what)
		return nil
	}
}

// TestTrySend: TrySend sends when the socket has room and, when it is
// full, sends nothing and returns ErrWouldBlock; it sends again once the
// peer has read.
func TestTrySend(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	c, _, raw := hostilePeer(t, nil)
	small := Dict("n", Int64(1))
	messages := func() (n int, smalls int) {
		frames, sizes := rawFrames(t, raw)
		for i, h := range frames {
			if h.Kind == wire.KindMessage {
				n++
				if sizes[i] < 1024 {
					smalls++
				}
			}
		}
		return n, smalls
	}
	if err := within(t, "TrySend", func() error { return c.TrySend(small) }); err != nil {
		t.Fatalf("TrySend with room: %v", err)
	}
	if n, smalls := messages(); n != 1 || smalls != 1 {
		t.Fatalf("the peer received %d messages, want the one TrySend sent", n)
	}
	sent := fillSocket(t, ctx, c)
	for range 2 {
		if err := within(t, "TrySend", func() error { return c.TrySend(small) }); !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("TrySend on a full socket: %v, want ErrWouldBlock", err)
		}
	}
	if n, smalls := messages(); n != sent || smalls != 0 {
		t.Fatalf("the peer received %d messages (%d small), want the %d that filled the socket", n, smalls, sent)
	}
	if err := within(t, "TrySend", func() error { return c.TrySend(small) }); err != nil {
		t.Fatalf("TrySend once the peer has read: %v", err)
	}
	if n, smalls := messages(); n != 1 || smalls != 1 {
		t.Fatalf("the peer received %d messages, want the one TrySend sent", n)
	}
}

// TestTryReply: TryReply and TryReplyError on a full socket send nothing,
// return ErrWouldBlock and leave the message open; with room, they send
// the reply, once.
func TestTryReply(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	msgs := make(chan *Message, 2)
	c, _, raw := hostilePeer(t, func(ctx context.Context, m *Message) {
		m.Defer()
		msgs <- m
	})
	var m [2]*Message
	for i := range m {
		rawSend(t, raw, frameOf(wire.KindRequest, 0, 0, uint64(7+i), mustBody(t, Dict())))
		select {
		case m[i] = <-msgs:
		case <-ctx.Done():
			t.Fatal("the request was not delivered")
		}
	}
	replies := func() (ids []uint64) {
		frames, _ := rawFrames(t, raw)
		for _, h := range frames {
			if h.Kind == wire.KindReply {
				ids = append(ids, h.ID)
			}
		}
		return ids
	}
	fillSocket(t, ctx, c)
	tx := c.Transactions().Count()
	for range 2 {
		if err := within(t, "TryReply", func() error { return m[0].TryReply(Dict("a", Int64(2))) }); !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("TryReply on a full socket: %v, want ErrWouldBlock", err)
		}
		if err := within(t, "TryReplyError", func() error { return m[1].TryReplyError(NewErrorObject("e")) }); !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("TryReplyError on a full socket: %v, want ErrWouldBlock", err)
		}
	}
	if n := c.Transactions().Count(); n != tx || n != 2 {
		t.Errorf("transactions %d after the replies that would block, want 2 (still open)", n)
	}
	if ids := replies(); len(ids) != 0 {
		t.Fatalf("replies %v sent on a full socket", ids)
	}
	if err := m[0].TryReply(Dict("a", Int64(2))); err != nil {
		t.Fatalf("TryReply with room: %v", err)
	}
	if err := m[1].TryReplyError(NewErrorObject("e")); err != nil {
		t.Fatalf("TryReplyError with room: %v", err)
	}
	if err := m[0].TryReply(Dict("a", Int64(3))); !errors.Is(err, ErrAlreadyReplied) {
		t.Fatalf("second TryReply: %v, want ErrAlreadyReplied", err)
	}
	if ids := replies(); !slices.Equal(ids, []uint64{7, 8}) {
		t.Errorf("replies %v, want [7 8]", ids)
	}
	if n := c.Transactions().Count(); n != 0 {
		t.Errorf("transactions %d after the replies, want 0", n)
	}
}

// TestTrySendDoesNotConnect: a connection that has no link yet does not
// dial for TrySend, which would have to wait for it.
func TestTrySendDoesNotConnect(t *testing.T) {
	leakCheck(t)
	c, err := NewServiceConnection("com.example.trysend", WithBootstrapSocket(t.TempDir()+"/xpcd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetHandler(newTestHandler(nil))
	c.Activate()
	defer func() {
		c.Cancel()
		waitClosed(t, c.Done(), "connection")
	}()
	if err := c.TrySend(Dict()); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("TrySend on a connection with no link: %v, want ErrWouldBlock", err)
	}
	if err := c.Send(testCtx(t), Dict()); !errors.Is(err, ErrNoBootstrap) {
		t.Fatalf("Send with no xpcd: %v, want ErrNoBootstrap", err)
	}
}
