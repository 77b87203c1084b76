package xpc

import (
	"context"
	"runtime/metrics"
	"testing"
)

func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestConnGoroutineBudget: the goroutines a connection's whole life costs,
// client and server side together: connect through an endpoint, one
// request, the client's Cancel, the server's peer hearing of it. Each
// goroutine started is a thread woken on an idle processor, which is most
// of what a short connection costs; the budget is what the design needs:
// one watcher on each side, and one dispatcher for the client's Cancel
// (delivered to its handler from its own goroutine, never from Cancel's
// caller). The peer's last event is delivered by its watcher.
func TestConnGoroutineBudget(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	gone := make(chan struct{}, 1)
	l := serve(t, func(p *Connection) Handler {
		return &eventHandler{msg: echo, event: func(err error) {
			if err != nil {
				gone <- struct{}{}
			}
		}}
	})
	ep, err := l.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	one := func() {
		c, err := NewEndpointConnection(ep)
		if err != nil {
			t.Fatal(err)
		}
		c.SetHandler(newTestHandler(nil))
		c.Activate()
		if _, err := c.SendWithReply(ctx, Dict("n", Int64(1))); err != nil {
			t.Fatal(err)
		}
		c.Cancel()
		<-c.Done()
		<-gone
	}
	one() // warm up
	const n = 50
	before := goroutinesCreated()
	for range n {
		one()
	}
	per := float64(goroutinesCreated()-before) / n
	t.Logf("%.2f goroutines created per connection", per)
	if per > 3.2 {
		t.Fatalf("%.2f goroutines created per connection, budget 3", per)
	}
}

type eventHandler struct {
	msg   func(context.Context, *Message)
	event func(error)
}

func (h *eventHandler) HandleMessage(ctx context.Context, m *Message) { h.msg(ctx, m) }
func (h *eventHandler) HandleEvent(err error)                         { h.event(err) }
