package xpc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A reply the handler makes but that cannot be sent (it does not encode,
// or is larger than the replier's WithMaxMessageSize) fails its Reply, and
// the requester is told at once with ErrReplyFailed instead of waiting for
// a reply that never comes. The connection goes on.
func TestReplyThatCannotBeSent(t *testing.T) {
	replied := make(chan error, 4)
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		var reply *Dictionary
		switch s, _ := m.Body.String("make"); s {
		case "bad-string":
			reply = Dict("s", String("not \x00 allowed"))
		case "too-large":
			reply = Dict("d", Data(make([]byte, 4096)))
		default:
			reply = Dict("ok", true)
		}
		replied <- m.Reply(ctx, reply)
	}), WithMaxMessageSize(1024))
	c := dial(t, l, newTestHandler(nil))
	for _, make := range []string{"bad-string", "too-large"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		_, err := c.SendWithReply(ctx, Dict("make", make))
		cancel()
		var re *RemoteError
		if !errors.Is(err, ErrReplyFailed) || !errors.As(err, &re) || !strings.Contains(err.Error(), "could not be sent") {
			t.Fatalf("%s: %v, want ErrReplyFailed", make, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: the requester waited %v", make, d)
		}
		if rerr := <-replied; rerr == nil {
			t.Errorf("%s: Reply returned nil", make)
		}
	}
	if errors.Is(&RemoteError{Object: NewErrorObject("x")}, ErrReplyFailed) {
		t.Error("an ordinary error reply is ErrReplyFailed")
	}
	r, err := c.SendWithReply(testCtx(t), Dict("make", "ok"))
	if err != nil || !r.Get("ok").(Bool) {
		t.Fatalf("the connection after failed replies: %v %v", r, err)
	}
}

// When not even the error saying so fits the replier's limit, the
// requester gets ErrNoReply, still at once.
func TestReplyFailedTinyLimit(t *testing.T) {
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		m.Reply(ctx, Dict("d", Data(make([]byte, 256))))
	}), WithMaxMessageSize(64))
	c := dial(t, l, newTestHandler(nil))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.SendWithReply(ctx, Dict()); !errors.Is(err, ErrNoReply) {
		t.Fatalf("%v, want ErrNoReply", err)
	}
}
