package xpc

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// sessionListener returns an active anonymous listener whose sessions fn
// decides, and an endpoint to it.
func sessionListener(t *testing.T, fn func(r *SessionRequest)) (*Listener, *Endpoint) {
	t.Helper()
	l, err := NewListener()
	if err != nil {
		t.Fatal(err)
	}
	l.SetSessionHandler(fn)
	l.Activate()
	ep, err := l.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ep.Close()
		l.Cancel()
		waitClosed(t, l.Done(), "listener")
		for _, p := range l.Peers() {
			p.Cancel()
			waitClosed(t, p.Done(), "peer")
		}
	})
	return l, ep
}

// sessionErr returns err as a *SessionError, failing the test if it is not
// one.
func sessionErr(t *testing.T, err error) *SessionError {
	t.Helper()
	var se *SessionError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *SessionError", err, err)
	}
	return se
}

// TestSessionAccept: an accepted session exchanges messages both ways; the
// listener sees the client's identity; Cancel ends the session for good
// with ErrCanceled (CanRetry false), and its handler hears it last.
func TestSessionAccept(t *testing.T) {
	leakCheck(t)
	var seen atomic.Int64
	_, ep := sessionListener(t, func(r *SessionRequest) {
		seen.Store(int64(r.Peer().PID))
		r.Accept(HandlerFunc(func(ctx context.Context, m *Message) {
			if call, _ := m.Body.Bool("call-back"); call {
				m.conn.Send(ctx, Dict("hello", "client"))
			}
			echo(ctx, m)
		}))
	})
	got := make(chan string, 1)
	h := newTestHandler(func(ctx context.Context, m *Message) {
		s, _ := m.Body.String("hello")
		got <- s
	})
	s, err := NewEndpointSession(testCtx(t), ep, h)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cancel()
	var reply struct{ X int64 }
	if err := s.Invoke(testCtx(t), Dict("X", 7, "call-back", true), &reply); err != nil || reply.X != 7 {
		t.Fatalf("Invoke: %+v, %v", reply, err)
	}
	if v := <-got; v != "client" {
		t.Errorf("the session's handler got %q", v)
	}
	if seen.Load() != int64(os.Getpid()) {
		t.Errorf("SessionRequest.Peer pid %d, want %d", seen.Load(), os.Getpid())
	}
	if p := s.Peer(); p == nil || p.PID != os.Getpid() {
		t.Errorf("Peer() = %v", p)
	}
	if s.Err() != nil || s.Reason() != nil {
		t.Fatalf("a live session has Err %v, Reason %v", s.Err(), s.Reason())
	}

	s.Cancel()
	waitClosed(t, s.Done(), "session")
	se := sessionErr(t, s.Err())
	if !errors.Is(se, ErrCanceled) || !errors.Is(se, ErrInvalid) || se.CanRetry || se.Reason.Code != ReasonCanceled {
		t.Errorf("after Cancel: %v, CanRetry %v, code %q", se, se.CanRetry, se.Reason.Code)
	}
	if err := h.nextEvent(t); err != error(se) {
		t.Errorf("handler's last event %v, want the session's error", err)
	}
	if err := s.SendValue(testCtx(t), Dict("x", 1)); err != error(se) {
		t.Errorf("Send after Cancel: %v", err)
	}
}

// TestSessionReject: a rejected client's pending send fails at once with
// the listener's reason (ErrSessionRejected, ErrDenied, ErrInvalid,
// CanRetry false), and none of its messages is handled. A listener that
// decides neither way rejects.
func TestSessionReject(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct{ name, reason, want string }{
		{"reject", "closed for maintenance", "closed for maintenance"},
		{"undecided", "", "the listener neither accepted nor rejected the session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var handled atomic.Int64
			_, ep := sessionListener(t, func(r *SessionRequest) {
				if tc.reason != "" {
					r.Reject(tc.reason)
					r.Accept(HandlerFunc(func(context.Context, *Message) { handled.Add(1) })) // too late
				}
			})
			h := newTestHandler(nil)
			s, err := NewEndpointSession(testCtx(t), ep, h)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := s.Send(testCtx(t), Dict("one-way", true)); err != nil && !errors.Is(err, ErrSessionRejected) {
				t.Fatal(err)
			}
			_, err = s.SendWithReply(testCtx(t), Dict("x", 1))
			if d := time.Since(start); d > testTimeout/2 {
				t.Errorf("the rejection took %v", d)
			}
			se := sessionErr(t, err)
			for _, kind := range []error{ErrSessionRejected, ErrDenied, ErrInvalid} {
				if !errors.Is(err, kind) {
					t.Errorf("%v does not match %v", err, kind)
				}
			}
			if se.CanRetry || se.Reason.Code != ReasonSessionRejected || se.Reason.Description != tc.want {
				t.Errorf("CanRetry %v, reason %+v", se.CanRetry, se.Reason)
			}
			waitClosed(t, s.Done(), "session")
			if err := h.nextEvent(t); !errors.Is(err, ErrSessionRejected) {
				t.Errorf("handler's last event: %v", err)
			}
			if n := handled.Load(); n != 0 {
				t.Errorf("%d messages of a rejected client were handled", n)
			}
		})
	}
}

// TestSessionPeerGone: an endpoint session whose peer goes is over: the
// error says so (ErrPeerGone, CanRetry true) and a later send fails at once
// with the same error.
func TestSessionPeerGone(t *testing.T) {
	leakCheck(t)
	l, ep := sessionListener(t, func(r *SessionRequest) { r.Accept(HandlerFunc(echo)) })
	s, err := NewEndpointSession(testCtx(t), ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cancel()
	if _, err := s.SendWithReply(testCtx(t), Dict("x", 1)); err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Peers() {
		p.Cancel()
	}
	waitClosed(t, s.Done(), "session")
	se := sessionErr(t, s.Err())
	if !errors.Is(se, ErrPeerGone) || !se.CanRetry {
		t.Errorf("%v, CanRetry %v", se, se.CanRetry)
	}
	if _, err := s.SendWithReply(testCtx(t), Dict("x", 2)); err != error(se) {
		t.Errorf("send after the end: %v", err)
	}
}

// TestSessionNoReconnect: a session to a named service whose instance
// goes is over with the interruption's reason (as xpcd tells it; CanRetry
// true): its pending call fails, later sends fail at once, and the name is
// never looked up again, so no new instance is started for it.
func TestSessionNoReconnect(t *testing.T) {
	leakCheck(t)
	f := newWhyXPCD(t, Dict(bootstrap.KeyReason, ReasonExited, bootstrap.KeyExitStatus, 3,
		bootstrap.KeyDescription, "org.goxpc.test.why (pid 1) exited with status 3"), 0)
	h := newTestHandler(nil)
	s, err := NewSession(testCtx(t), "org.goxpc.test.why", h, WithBootstrapSocket(f.path))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cancel()
	if _, err := s.SendWithReply(testCtx(t), Dict("x", 1)); err != nil {
		t.Fatal(err)
	}
	if p := s.Peer(); p == nil || p.PID != os.Getpid() {
		t.Errorf("Peer() = %v", p)
	}
	call := s.conn.Go(testCtx(t), Dict("hold", true))
	f.serviceSide(t).Cancel()
	// Over without a send: the session hears of the interruption.
	waitClosed(t, s.Done(), "session")
	_, err = s.SendWithReply(testCtx(t), Dict("x", 2))
	se := sessionErr(t, err)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, ErrInvalid) || !se.CanRetry ||
		se.Reason.Code != ReasonExited || se.Reason.ExitStatus != 3 {
		t.Errorf("after the service went: %v, CanRetry %v, reason %+v", err, se.CanRetry, se.Reason)
	}
	if _, err := call.Wait(testCtx(t)); !errors.Is(err, ErrInterrupted) {
		t.Errorf("pending call: %v", err)
	}
	for range 3 {
		if err := s.Send(testCtx(t), Dict("x", 3)); err != error(se) {
			t.Errorf("later send: %v", err)
		}
	}
	if err := h.nextEvent(t); err != error(se) {
		t.Errorf("handler's last event %v, want the session's error", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(f.svc.l.Peers()); n != 0 {
		t.Errorf("the session reached the service again (%d peers)", n)
	}
}

// TestSessionLostRace: a send that finds the session's link dead before
// the session has heard of it does not look the name up again.
func TestSessionLostRace(t *testing.T) {
	f := newWhyXPCD(t, Dict(bootstrap.KeyReason, ReasonSignaled, bootstrap.KeySignal, 9,
		bootstrap.KeyDescription, "killed"), 0)
	s, err := NewSession(testCtx(t), "org.goxpc.test.why", nil, WithBootstrapSocket(f.path))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cancel()
	if _, err := s.SendWithReply(testCtx(t), Dict("x", 1)); err != nil {
		t.Fatal(err)
	}
	// The session does not hear of the interruption while suspended.
	s.conn.Suspend()
	f.serviceSide(t).Cancel()
	deadline := time.Now().Add(testTimeout)
	for l := s.conn.currentLink(); l != nil && l.dead() == nil; {
		if time.Now().After(deadline) {
			t.Fatal("the link did not die")
		}
		time.Sleep(time.Millisecond)
	}
	err = s.Send(testCtx(t), Dict("x", 2))
	s.conn.Resume()
	if se := sessionErr(t, err); !errors.Is(err, ErrInterrupted) || se.Reason.Code != ReasonSignaled || !se.CanRetry {
		t.Errorf("send: %v, reason %+v", err, se.Reason)
	}
	waitClosed(t, s.Done(), "session")
	time.Sleep(50 * time.Millisecond)
	if n := len(f.svc.l.Peers()); n != 0 {
		t.Errorf("the session reached the service again (%d peers)", n)
	}
}

// TestNewSessionNoXPCD: with no xpcd to look the name up, NewSession fails
// at once, with a *SessionError that may be retried, matching
// ErrNoBootstrap.
func TestNewSessionNoXPCD(t *testing.T) {
	leakCheck(t)
	_, err := NewSession(testCtx(t), "org.goxpc.test.none", nil, WithBootstrapSocket(t.TempDir()+"/none.sock"))
	se := sessionErr(t, err)
	if !errors.Is(err, ErrNoBootstrap) || errors.Is(err, ErrInterrupted) || !se.CanRetry {
		t.Errorf("%v, CanRetry %v", err, se.CanRetry)
	}
}

// TestSessionGateBounded: decisions left by clients that never reached
// the listener's handler do not pile up.
func TestSessionGateBounded(t *testing.T) {
	g := &sessionGate{decide: func(r *SessionRequest) { r.Accept(nil) }, accepted: make(map[*Peer]Handler)}
	for range 100 {
		if eo := g.admit(&Peer{}); eo != nil {
			t.Fatal(eo.Description())
		}
	}
	if n := len(g.accepted); n > maxGateEntries {
		t.Errorf("%d decisions kept, want at most %d", n, maxGateEntries)
	}
}
