package xpctest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/xpctest"
)

type weatherRequest struct {
	City string `xpc:"city"`
}

type forecast struct {
	City string `xpc:"city"`
	High int    `xpc:"high"`
}

var errNoSuchCity = &xpc.DomainError{Domain: "org.goxpc.xpctest.weather", Code: 1, Description: "no such city"}

// weather answers {"city": "Paris"} with a forecast, an unknown city with
// errNoSuchCity, "Later" with a reply deferred to another goroutine (sent
// when later is closed), "Mute" with nothing, and "Bad" with a reply that
// does not encode.
type weather struct{ later chan struct{} }

func (w *weather) HandleMessage(ctx context.Context, m *xpc.Message) {
	var req weatherRequest
	if err := m.Decode(&req); err != nil {
		m.ReplyError(ctx, xpc.ErrorObjectOf(err))
		return
	}
	switch req.City {
	case "Paris":
		m.ReplyValue(ctx, forecast{City: req.City, High: 21})
	case "Later":
		m.Defer()
		go func() {
			<-w.later
			m.ReplyValue(context.Background(), forecast{City: req.City, High: 5})
		}()
	case "Mute":
	case "Bad":
		// Deeper than any encoder allows.
		deep := xpc.NewDictionary(1)
		for range xpc.DefaultMaxDepth + 1 {
			deep = xpc.Dict("in", deep)
		}
		if err := m.Reply(ctx, deep); err == nil {
			panic("a reply too deep to encode was sent")
		}
	default:
		m.ReplyError(ctx, xpc.ErrorObjectOf(errNoSuchCity))
	}
}

func (w *weather) HandleEvent(error) {}

func TestRecorderReply(t *testing.T) {
	ctx := context.Background()
	m, rec := xpctest.NewMessage(t, weatherRequest{City: "Paris"})
	if _, err := rec.Result(); !errors.Is(err, xpctest.ErrNotAnswered) {
		t.Fatalf("before Handle: %v", err)
	}
	xpctest.Handle(ctx, &weather{}, m)
	var f forecast
	if err := rec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	if f != (forecast{"Paris", 21}) {
		t.Errorf("got %+v", f)
	}
	if m.Connection() != nil {
		t.Error("a local message has a connection")
	}
	if p := m.Peer(); p == nil || p.PID != os.Getpid() || p.UID != uint32(os.Getuid()) {
		t.Errorf("Peer() = %v, want this process", p)
	}
	select {
	case <-rec.Done():
	default:
		t.Error("Done not closed after the reply")
	}
}

func TestRecorderError(t *testing.T) {
	m, rec := xpctest.NewMessage(t, xpc.Dict("city", "Atlantis"))
	xpctest.Handle(context.Background(), &weather{}, m)
	_, err := rec.Result()
	var re *xpc.RemoteError
	if !errors.As(err, &re) || !errors.Is(err, errNoSuchCity) {
		t.Fatalf("got %v, want a RemoteError matching errNoSuchCity", err)
	}
	var de *xpc.DomainError
	if !errors.As(err, &de) || de.Code != 1 {
		t.Errorf("errors.As restored %+v", de)
	}
	if err := rec.Decode(&forecast{}); !errors.Is(err, errNoSuchCity) {
		t.Errorf("Decode: %v", err)
	}
}

func TestRecorderNoReply(t *testing.T) {
	m, rec := xpctest.NewMessage(t, weatherRequest{City: "Mute"})
	xpctest.Handle(context.Background(), &weather{}, m)
	if _, err := rec.Result(); !errors.Is(err, xpc.ErrNoReply) {
		t.Fatalf("got %v, want ErrNoReply", err)
	}
}

func TestRecorderReplyFailed(t *testing.T) {
	m, rec := xpctest.NewMessage(t, weatherRequest{City: "Bad"})
	xpctest.Handle(context.Background(), &weather{}, m)
	if _, err := rec.Result(); !errors.Is(err, xpc.ErrReplyFailed) {
		t.Fatalf("got %v, want ErrReplyFailed", err)
	}
}

func TestRecorderDeferred(t *testing.T) {
	w := &weather{later: make(chan struct{})}
	m, rec := xpctest.NewMessage(t, weatherRequest{City: "Later"})
	xpctest.Handle(context.Background(), w, m)
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := rec.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("before the deferred reply: %v", err)
	}
	close(w.later)
	ctx, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	r, err := rec.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if high, _ := r.Int64("high"); high != 5 {
		t.Errorf("deferred reply %s", xpc.Format(r))
	}
}

func TestRecorderOneWayAndPeer(t *testing.T) {
	var replyErr error
	var peer *xpc.Peer
	h := xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
		peer = m.Peer()
		replyErr = m.Reply(ctx, xpc.Dict())
	})
	m, rec := xpctest.NewMessage(t, xpc.Dict(), xpctest.OneWay(), xpctest.FromPeer(nil))
	xpctest.Handle(context.Background(), h, m)
	if !errors.Is(replyErr, xpc.ErrNoReplyWanted) {
		t.Errorf("Reply to a one-way message: %v", replyErr)
	}
	if _, err := rec.Result(); !errors.Is(err, xpctest.ErrNotAnswered) {
		t.Errorf("one-way: %v", err)
	}
	if peer != nil {
		t.Errorf("FromPeer(nil): Peer() = %v", peer)
	}
	if m.WantsReply() {
		t.Error("OneWay message wants a reply")
	}
}

func TestRecorderBadBody(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { recover() }()
		xpctest.NewMessage(ft, 42)
	}()
	if !strings.Contains(ft.msg, "not a dictionary") {
		t.Errorf("NewMessage(42) said %q", ft.msg)
	}
}

// fatalRecorder records Fatalf and stops the goroutine with a panic.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = strings.TrimSpace(fmtSprintf(format, args...))
	panic("fatal")
}

func (f *fatalRecorder) Helper() {}

var fmtSprintf = fmt.Sprintf
