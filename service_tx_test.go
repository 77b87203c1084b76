package xpc

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// txRecorder is xpcd's end of a check-in channel: it records the
// transaction counts the service reports.
type txRecorder struct {
	mu     sync.Mutex
	counts []int64
	at     []time.Time
}

func (r *txRecorder) HandleMessage(ctx context.Context, m *Message) {
	if op, _ := m.Body.String(bootstrap.KeyOp); op == bootstrap.OpTransactions {
		n, _ := m.Body.Int64(bootstrap.KeyCount)
		r.mu.Lock()
		r.counts = append(r.counts, n)
		r.at = append(r.at, time.Now())
		r.mu.Unlock()
	}
}

func (r *txRecorder) HandleEvent(error) {}

func (r *txRecorder) snapshot() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.counts...)
}

// waitLast waits until the last count reported is want.
func (r *txRecorder) waitLast(t *testing.T, want int64) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		c := r.snapshot()
		if len(c) > 0 && c[len(c)-1] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reported %v, never %d last", c, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// newTestService returns a Service whose check-in channel ends at rec.
func newTestService(t *testing.T, rec *txRecorder) *Service {
	t.Helper()
	s, _ := newServiceXPCDEnd(t, rec)
	return s
}

// TestServiceTransactionReports: the count is reported when the channel
// comes, a count that leaves zero at once, and a stream of transactions
// that open and close costs a report per txSettle at most, not one per
// transaction; the final zero follows.
func TestServiceTransactionReports(t *testing.T) {
	leakCheck(t)
	rec := &txRecorder{}
	s := newTestService(t, rec)
	rec.waitLast(t, 0) // the count on a new channel

	end := s.tx.Begin()
	rec.waitLast(t, 1) // busy: reported without waiting for txSettle
	end()
	rec.waitLast(t, 0)

	before := len(rec.snapshot())
	looks := s.txLooks.Load()
	start := time.Now()
	for range 5000 {
		s.tx.add(1)
		s.tx.add(-1)
	}
	churn := time.Since(start)
	hold := s.tx.Begin() // and keep one open a while
	time.Sleep(3 * txSettle)
	hold()
	elapsed := time.Since(start)
	rec.waitLast(t, 0)
	got := rec.snapshot()[before:]
	// One report when the count left zero, then at most one per txSettle
	// while it moved, and the zero at the end.
	if limit := 2 + int(elapsed/txSettle) + 1; len(got) > limit {
		t.Errorf("%d reports for 5,001 transactions in %v, want at most %d: %v", len(got), elapsed, limit, got)
	}
	// Nor does the reporter wake for each transaction: twice per txSettle
	// while the count is reported busy, and while transactions came and
	// went faster than it looked, once per txChurnGap.
	if n, limit := s.txLooks.Load()-looks, 2*(3+int(elapsed/txSettle))+2+int(churn/txChurnGap); n > int64(limit) {
		t.Errorf("the reporter looked %d times for 5,001 transactions in %v (%v of them coming and going), want at most %d", n, elapsed, churn, limit)
	}
	if got[0] != 1 {
		t.Errorf("first report %d, want 1", got[0])
	}
}

// adoptXPCD is a restarted xpcd that adopts a service, telling it at once
// (before its reply) that it is about to be stopped, and refuses its
// check-ins.
func adoptXPCD(ctx context.Context, m *Message) {
	switch op, _ := m.Body.String(bootstrap.KeyOp); op {
	case bootstrap.OpAdopt:
		_ = m.Connection().Send(ctx, Dict(bootstrap.KeyOp, bootstrap.OpTerminate))
		// Time for the message to be delivered before the reply.
		time.Sleep(50 * time.Millisecond)
		m.Reply(ctx, Dict())
	case bootstrap.OpCheckin:
		m.ReplyError(ctx, NewErrorObject("refused"))
	}
}

// serviceWithFakeXPCD returns a Service serving one name, whose xpcd is a
// listener answering with xpcd; each of its connections goes to peers, if
// not nil. Both end with the test.
func serviceWithFakeXPCD(t *testing.T, xpcd HandlerFunc, peers chan<- *Connection) *Service {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bootstrap.sock")
	l, err := ListenUnix(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	l.SetHandler(func(p *Connection) {
		p.SetHandler(xpcd)
		p.Activate()
		if peers != nil {
			peers <- p
		}
	})
	l.Activate()
	t.Cleanup(func() { l.Cancel(); waitClosed(t, l.Done(), "fake xpcd") })

	s := &Service{cfg: config{bootstrap: []string{path}}, tx: &Transactions{},
		listeners: map[string]*serviceListener{"org.goxpc.test.x": newServiceListener(config{}, func(*serviceListener) {})}, terminating: make(chan struct{}),
		reported: -1, txKick: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() { s.Close() })
	return s
}

// TestServiceReadoptFails: a check-in that fails after xpcd adopted the
// service again ends the new channel, which is not left as the service's;
// what xpcd sends before its adopt reply reaches the control handler.
func TestServiceReadoptFails(t *testing.T) {
	leakCheck(t)
	peers := make(chan *Connection, 1)
	s := serviceWithFakeXPCD(t, adoptXPCD, peers)
	if err := s.tryAdopt(); err == nil {
		t.Fatal("adopted with a refused check-in")
	}
	s.mu.Lock()
	ctl := s.ctl
	s.mu.Unlock()
	if ctl != nil {
		t.Error("the failed channel is still the service's")
	}
	p := <-peers
	waitClosed(t, p.Done(), "xpcd's end of the failed channel")
	select {
	case <-s.Terminating():
	default:
		t.Error("the message xpcd sent before its adopt reply was not handled")
	}
}

// TestServiceReadoptOnce: when xpcd's end of a new check-in channel goes
// while the service checks in on it, the channel's end and the failed
// check-in are one failure: one re-adoption goes on trying, backing off,
// rather than each failure starting another beside it.
func TestServiceReadoptOnce(t *testing.T) {
	var adopts atomic.Int32
	s := serviceWithFakeXPCD(t, func(ctx context.Context, m *Message) {
		switch op, _ := m.Body.String(bootstrap.KeyOp); op {
		case bootstrap.OpAdopt:
			adopts.Add(1)
			m.Reply(ctx, Dict())
		case bootstrap.OpCheckin:
			// xpcd goes away in the middle of the check-ins.
			m.Connection().Cancel()
		}
	}, nil)
	// The channel xpcd gave at launch is lost: re-adoption starts.
	lost := &Connection{}
	s.ctl = lost
	s.channelLost(lost)
	// One loop backs off 20, 40, 80, 160 ms...: at most 5 attempts in
	// 350 ms, however fast the machine. Loops that multiply make dozens.
	time.Sleep(350 * time.Millisecond)
	if n := adopts.Load(); n > 6 || n == 0 {
		t.Errorf("%d adopt requests in 350 ms, want 1 to 6: one re-adoption at a time", n)
	}
}
