package xpc

import (
	"context"
	"errors"
	"testing"
)

// TestHandleLocalOnlyLocal: HandleLocal hands nothing but a message made
// by NewLocalMessage to the handler.
func TestHandleLocalOnlyLocal(t *testing.T) {
	called := false
	h := HandlerFunc(func(context.Context, *Message) { called = true })
	HandleLocal(context.Background(), h, &Message{Body: Dict()})
	HandleLocal(context.Background(), h, nil)
	if called {
		t.Fatal("HandleLocal handed a message of no NewLocalMessage to the handler")
	}
}

// TestLocalMessageAnsweredOnce: a local message is answered once; a second
// reply fails with ErrAlreadyReplied and reaches nobody.
func TestLocalMessageAnsweredOnce(t *testing.T) {
	answers := 0
	m := NewLocalMessage(Dict(), nil, true, func(*Dictionary, error) { answers++ })
	ctx := context.Background()
	if err := m.Reply(ctx, Dict("n", 1)); err != nil {
		t.Fatal(err)
	}
	if err := m.ReplyError(ctx, NewErrorObject("late")); !errors.Is(err, ErrAlreadyReplied) {
		t.Errorf("second reply: %v", err)
	}
	HandleLocal(ctx, HandlerFunc(func(context.Context, *Message) {}), m)
	if answers != 1 {
		t.Errorf("answered %d times", answers)
	}
	if m.Connection() != nil || m.Peer() != nil {
		t.Errorf("Connection %v, Peer %v: want nil", m.Connection(), m.Peer())
	}
}

// TestCheckInFileNil: CheckInFile needs a socket.
func TestCheckInFileNil(t *testing.T) {
	if _, err := CheckInFile(context.Background(), nil, "x"); !errors.Is(err, ErrNilObject) {
		t.Fatalf("got %v, want ErrNilObject", err)
	}
}
