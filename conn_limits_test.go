package xpc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/wire"
)

// The byte limits (WithMaxQueuedBytes, WithMaxUnreadBytes), lowered to
// 1 MiB so that the tests stay fast.
const testLimit = 1 << 20

func lowLimits() []Option {
	return []Option{WithMaxQueuedBytes(testLimit), WithMaxUnreadBytes(testLimit)}
}

// oolRequest is a request frame whose body travels out of line: a memfd
// holding a dictionary with size bytes of data.
func oolRequest(t *testing.T, id uint64, size int) ([]byte, int) {
	t.Helper()
	body := mustBody(t, Dict("b", Data(make([]byte, size))))
	return frameOf(wire.KindRequest, wire.FlagOutOfLine, 1, id, nil), memfdWith(t, body, true)
}

// waitErr waits for the connection to end.
func waitErr(t *testing.T, c *Connection) error {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for c.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the connection is still up")
		}
		time.Sleep(time.Millisecond)
	}
	return c.Err()
}

// TestConnHostileQueuedBytes: a peer that pushes more request bytes than
// WithMaxQueuedBytes allows into a connection whose handler is not taking
// them is cut off with ErrPeerOverLimit, and everything it sent is
// released.
func TestConnHostileQueuedBytes(t *testing.T) {
	leakCheck(t)
	c, h, raw := hostilePeer(t, nil, lowLimits()...)
	c.Suspend()
	for id := uint64(1); id <= 8; id++ {
		f, fd := oolRequest(t, id, 300<<10)
		if err := rawSend(t, raw, f, fd); err != nil {
			break // cut off already
		}
	}
	err := waitErr(t, c)
	c.Resume()
	wantConnErr(t, err, ErrInvalid, ErrPeerOverLimit)
	if !strings.Contains(err.Error(), "bytes of messages and requests queued, limit 1048576") {
		t.Errorf("error %q does not name the rule and the limit", err)
	}
	h.finalEvent(t, ErrInvalid, ErrPeerOverLimit)
	waitClosed(t, c.Done(), "connection")
	if !drainToEOF(raw) {
		t.Error("the connection's socket is still open")
	}
	if n := c.Transactions().Count(); n != 0 {
		t.Errorf("%d transactions still open", n)
	}
}

// TestConnQueuedBytesAlone: one message larger than WithMaxQueuedBytes is
// taken when nothing else is queued; the limit does not cap the size of a
// message.
func TestConnQueuedBytesAlone(t *testing.T) {
	leakCheck(t)
	got := make(chan int, 1)
	c, _, raw := hostilePeer(t, func(ctx context.Context, m *Message) {
		b, _ := m.Body.Get("b").(Data)
		got <- len(b)
		m.Reply(ctx, Dict())
	}, lowLimits()...)
	f, fd := oolRequest(t, 1, 3*testLimit/2)
	if err := rawSend(t, raw, f, fd); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n != 3*testLimit/2 {
			t.Fatalf("handler got %d bytes", n)
		}
	case <-time.After(testTimeout):
		t.Fatalf("not delivered; connection: %v", c.Err())
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestConnHostileUnreadReplies: a peer that sends requests and never reads
// the replies, which are large enough to travel out of line, is cut off
// once the replies it left unread would pass WithMaxUnreadBytes. Replies
// from the handler and deferred ones from other goroutines return
// ErrPeerOverLimit instead of blocking, and nothing is left behind.
func TestConnHostileUnreadReplies(t *testing.T) {
	leakCheck(t)
	big := Dict("b", Data(make([]byte, 200<<10)))
	results := make(chan error, 64)
	var deferred sync.WaitGroup
	c, h, raw := hostilePeer(t, func(ctx context.Context, m *Message) {
		if m.Body.Get("defer") == nil {
			results <- m.Reply(ctx, big)
			return
		}
		m.Defer()
		deferred.Add(1)
		go func() {
			defer deferred.Done()
			results <- m.Reply(context.Background(), big)
		}()
	}, lowLimits()...)
	const n = 24
	for id := uint64(1); id <= n; id++ {
		body := Dict("id", Int64(int64(id)))
		if id%2 == 0 {
			body.Set("defer", Bool(true))
		}
		if err := rawSend(t, raw, frameOf(wire.KindRequest, 0, 0, id, mustBody(t, body))); err != nil {
			break // cut off already
		}
	}
	err := waitErr(t, c)
	wantConnErr(t, err, ErrInvalid, ErrPeerOverLimit)
	if !strings.Contains(err.Error(), "bytes of out-of-line replies unread, limit 1048576") {
		t.Errorf("error %q does not name the rule and the limit", err)
	}
	h.finalEvent(t, ErrInvalid, ErrPeerOverLimit)
	waitClosed(t, c.Done(), "connection")
	done := make(chan struct{})
	go func() { deferred.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("a deferred reply is still blocked")
	}
	close(results)
	ok, over := 0, 0
	for err := range results {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrPeerOverLimit):
			over++
		default:
			t.Errorf("reply: %v", err)
		}
	}
	if over == 0 || ok*(200<<10) > testLimit {
		t.Errorf("%d replies sent, %d refused: want the ones past %d bytes refused", ok, over, testLimit)
	}
	if n := c.Transactions().Count(); n != 0 {
		t.Errorf("%d transactions still open", n)
	}
}

// TestConnLimitsWellBehaved: two goxpc peers under low byte limits
// exchanging many large messages, requests and replies (some deferred),
// with slow handlers on both sides, are never cut off: senders wait for
// credit instead.
func TestConnLimitsWellBehaved(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	const size = 200 << 10
	big := func(k string, v int) *Dictionary { return Dict(k, Int64(int64(v)), "b", Data(make([]byte, size))) }
	var serverGot, clientGot atomic.Int64
	var replies sync.WaitGroup
	l := serve(t, func(p *Connection) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) {
			time.Sleep(200 * time.Microsecond)
			switch {
			case m.Body.Get("msg") != nil:
				serverGot.Add(1)
				// Answer with a large message of its own.
				if err := p.Send(ctx, big("back", 1)); err != nil {
					t.Errorf("server Send: %v", err)
				}
			case m.Body.Get("defer") != nil:
				m.Defer()
				replies.Add(1)
				go func() {
					defer replies.Done()
					time.Sleep(time.Millisecond)
					if err := m.Reply(ctx, big("r", 1)); err != nil {
						t.Errorf("deferred Reply: %v", err)
					}
				}()
			default:
				if err := m.Reply(ctx, big("r", 1)); err != nil {
					t.Errorf("Reply: %v", err)
				}
			}
		})
	}, lowLimits()...)
	t.Cleanup(replies.Wait)
	c := dial(t, l, HandlerFunc(func(ctx context.Context, m *Message) {
		time.Sleep(200 * time.Microsecond)
		clientGot.Add(1)
	}), lowLimits()...)

	const msgs, calls = 40, 12
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range msgs {
			if err := c.Send(ctx, big("msg", i)); err != nil {
				errc <- err
				return
			}
		}
	}()
	for _, key := range []string{"call", "defer", "call"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				r, err := c.SendWithReply(ctx, big(key, i))
				if err != nil {
					errc <- err
					return
				}
				if b, _ := r.Get("b").(Data); len(b) != size {
					errc <- errors.New("short reply")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for serverGot.Load() != msgs || clientGot.Load() != msgs {
		if ctx.Err() != nil {
			t.Fatalf("server got %d messages, client %d, of %d", serverGot.Load(), clientGot.Load(), msgs)
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestConnLimitOptions: the byte limits reject values out of range, and a
// listener's peers take the listener's.
func TestConnLimitOptions(t *testing.T) {
	leakCheck(t)
	for _, opt := range []Option{
		WithMaxQueuedBytes(wire.InitialWindow - 1), WithMaxQueuedBytes(-1), WithMaxQueuedBytes(wire.MaxLimitBytes + 1),
		WithMaxUnreadBytes(0), WithMaxUnreadBytes(wire.InitialWindow - 1), WithMaxUnreadBytes(wire.MaxLimitBytes + 1),
	} {
		if l, err := NewListener(opt); err == nil {
			l.Cancel()
			t.Errorf("NewListener accepted a bad byte limit")
		}
	}
	cfg, err := newConfig(nil)
	if err != nil || cfg.maxQueued != DefaultMaxQueuedBytes || cfg.maxUnread != DefaultMaxUnreadBytes {
		t.Fatalf("defaults: %d, %d, %v", cfg.maxQueued, cfg.maxUnread, err)
	}
	peers := make(chan *Connection, 1)
	l := serve(t, func(p *Connection) Handler {
		peers <- p
		return HandlerFunc(echo)
	}, WithMaxQueuedBytes(3<<20), WithMaxUnreadBytes(5<<20))
	c := dial(t, l, nil)
	if _, err := c.SendWithReply(testCtx(t), Dict()); err != nil {
		t.Fatal(err)
	}
	p := <-peers
	if p.cfg.maxQueued != 3<<20 || p.cfg.maxUnread != 5<<20 {
		t.Errorf("peer limits %d, %d; want the listener's", p.cfg.maxQueued, p.cfg.maxUnread)
	}
	// The client heard the peer's window: min(3 MiB, its own 64 MiB).
	c.mu.Lock()
	lk := c.link
	c.mu.Unlock()
	lk.credits.mu.Lock()
	w := lk.credits.window
	lk.credits.mu.Unlock()
	if w != 3<<20 {
		t.Errorf("client's window %d, want the peer's 3 MiB", w)
	}
}

// One reply larger than WithMaxUnreadBytes goes when the peer has left
// nothing else unread: the limit bounds what piles up, not one reply's
// size.
func TestConnUnreadLimitLetsOneLargeReply(t *testing.T) {
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		m.Reply(ctx, Dict("d", Data(make([]byte, 2<<20))))
	}), WithMaxUnreadBytes(1<<20))
	c := dial(t, l, newTestHandler(nil))
	for i := range 3 {
		r, err := c.SendWithReply(testCtx(t), Dict())
		if err != nil {
			t.Fatalf("reply %d: %v", i+1, err)
		}
		if d, _ := r.Get("d").(Data); len(d) != 2<<20 {
			t.Fatalf("reply %d: %d bytes", i+1, len(d))
		}
	}
}
