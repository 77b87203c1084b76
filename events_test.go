package xpc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// eventsXPCD is xpcd's end of a check-in channel for the HandleEvents
// tests: it accepts every OpEventHandler and records the streams.
type eventsXPCD struct {
	mu       sync.Mutex
	declared []string
}

func (x *eventsXPCD) HandleMessage(ctx context.Context, m *Message) {
	if op, _ := m.Body.String(bootstrap.KeyOp); op == bootstrap.OpEventHandler {
		st, _ := m.Body.String(bootstrap.KeyStream)
		x.mu.Lock()
		x.declared = append(x.declared, st)
		x.mu.Unlock()
		m.Reply(ctx, Dict())
	}
}

func (x *eventsXPCD) HandleEvent(error) {}

func (x *eventsXPCD) streams() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.declared...)
}

// newEventsService returns a Service whose check-in channel ends at x,
// and xpcd's end of it.
func newEventsService(t *testing.T, x *eventsXPCD) (*Service, *Connection) {
	t.Helper()
	return newServiceXPCDEnd(t, x)
}

func eventRequest(stream string, id uint64) *Dictionary {
	d := Dict(bootstrap.KeyOp, bootstrap.OpEvent, bootstrap.KeyStream, stream, bootstrap.KeyEventName, "e",
		bootstrap.KeyPayload, Dict("ACTION", "change"))
	d.Set(bootstrap.KeyEventID, Uint64(id))
	return d
}

// TestHandleEventsDelivery: a stream's events reach its handler one at a
// time, in order; each is acknowledged (answered) only once the handler
// has returned; an event of a stream with no handler is refused.
func TestHandleEventsDelivery(t *testing.T) {
	leakCheck(t)
	x := &eventsXPCD{}
	s, xpcdEnd := newEventsService(t, x)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	release := make(chan struct{})
	var mu sync.Mutex
	var ids []uint64
	var running, overlap atomic.Int32
	err := s.HandleEvents(ctx, bootstrap.StreamIOKit, func(ctx context.Context, ev *Event) {
		if running.Add(1) > 1 {
			overlap.Store(1)
		}
		defer running.Add(-1)
		if a, _ := ev.Payload.String("ACTION"); a != "change" || ev.Stream != bootstrap.StreamUEvent || ev.Name != "e" {
			t.Errorf("event %+v", ev)
		}
		if s.tx.Count() == 0 {
			t.Error("no open transaction while the handler runs")
		}
		mu.Lock()
		ids = append(ids, ev.ID)
		mu.Unlock()
		if ev.ID == 1 {
			<-release
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := x.streams(); len(d) != 1 || d[0] != bootstrap.StreamUEvent {
		t.Errorf("declared %v", d)
	}
	calls := []*Call{}
	for id := uint64(1); id <= 3; id++ {
		calls = append(calls, xpcdEnd.Go(ctx, eventRequest(bootstrap.StreamUEvent, id)))
	}
	select {
	case <-calls[0].Done():
		t.Fatal("event 1 acknowledged before its handler returned")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	for i, c := range calls {
		if _, err := c.Wait(ctx); err != nil {
			t.Errorf("event %d: %v", i+1, err)
		}
	}
	mu.Lock()
	if len(ids) != 3 || ids[0] != 1 || ids[1] != 2 || ids[2] != 3 {
		t.Errorf("handled %v, want [1 2 3]", ids)
	}
	mu.Unlock()
	if overlap.Load() != 0 {
		t.Error("a stream's handler ran twice at once")
	}
	var re *RemoteError
	if _, err := xpcdEnd.SendWithReply(ctx, eventRequest(bootstrap.StreamNotify, 4)); !errors.As(err, &re) {
		t.Errorf("an event of a stream without a handler: %v, want an error reply", err)
	}
}

func TestHandleEventsErrors(t *testing.T) {
	ctx := context.Background()
	fn := func(context.Context, *Event) {}
	var none *Service
	if err := none.HandleEvents(ctx, bootstrap.StreamNotify, fn); !errors.Is(err, ErrNotLaunched) {
		t.Errorf("nil Service: %v", err)
	}
	x := &eventsXPCD{}
	s, _ := newEventsService(t, x)
	for _, st := range []string{"com.example.nope", bootstrap.StreamActivity, ""} {
		err := s.HandleEvents(ctx, st, fn)
		if !errors.Is(err, ErrUnknownStream) {
			t.Errorf("stream %q: %v", st, err)
		}
		// The error says what to use instead.
		want := bootstrap.StreamNotify
		if st == bootstrap.StreamActivity {
			want = "RegisterActivity"
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("stream %q: %v, want it to name %s", st, err, want)
		}
	}
	if err := s.HandleEvents(ctx, bootstrap.StreamNotify, nil); err == nil {
		t.Error("a nil handler was taken")
	}
	if err := s.HandleEvents(ctx, bootstrap.StreamNotify, fn); err != nil {
		t.Fatal(err)
	}
	if err := s.HandleEvents(ctx, bootstrap.StreamNotify, fn); err == nil {
		t.Error("a second handler for a stream was taken")
	}
	if d := x.streams(); len(d) != 1 {
		t.Errorf("declared %v", d)
	}
}
