package xpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/goxpc/xpc/internal/sock"
)

// Tests of WithPeerRequirement in one process: the option's rules, and
// each constructor refusing a peer that fails, or serving one that
// passes. requirement_multiproc_test.go has the peers of another uid and
// the peer that executes another program.

// otherUID is a uid no process of these tests runs as.
const otherUID = 12345

func otherUIDRequirement() Requirement { return MustParseRequirement(fmt.Sprintf("uid %d", otherUID)) }

func ownUIDRequirement() Requirement { return MustParseRequirement(fmt.Sprintf("uid %d", os.Getuid())) }

// wantRequirementFailed checks that err is a connection's end for a peer
// that failed its requirement: ErrInvalid and ErrPeerRequirement, with a
// reason naming rule and, in its Peer, each of peer.
func wantRequirementFailed(t *testing.T, err error, rule string, peer ...string) *Reason {
	t.Helper()
	wantConnErr(t, err, ErrInvalid, ErrPeerRequirement)
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Reason == nil {
		t.Fatalf("%v carries no reason", err)
	}
	r := ce.Reason
	if r.Code != ReasonRequirementFailed || r.Rule != rule {
		t.Errorf("reason %+v: want code %q, rule %q", r, ReasonRequirementFailed, rule)
	}
	for _, p := range peer {
		if !strings.Contains(r.Peer+" ", p) {
			t.Errorf("reason's peer %q does not say %q", r.Peer, p)
		}
	}
	if !strings.Contains(err.Error(), rule) {
		t.Errorf("error %q does not name the clause %q", err, rule)
	}
	return r
}

// selfName is how a requirement names this process: "pid N " (a space
// after, so that pid 12 is not found in pid 123).
func selfName() string { return fmt.Sprintf("pid %d ", os.Getpid()) }

// TestPeerRequirementOption: the zero Requirement is refused, and so is a
// second requirement, with an *OptionError matching ErrOptionRepeated.
func TestPeerRequirementOption(t *testing.T) {
	if _, err := NewListener(WithPeerRequirement(Requirement{})); err == nil || !strings.Contains(err.Error(), "zero Requirement") {
		t.Errorf("zero Requirement: %v", err)
	}
	_, err := NewListener(WithPeerRequirement(ownUIDRequirement()), WithPeerRequirement(otherUIDRequirement()))
	var oe *OptionError
	if !errors.Is(err, ErrOptionRepeated) || !errors.As(err, &oe) || oe.Option != "WithPeerRequirement" || oe.Constructor != "NewListener" {
		t.Fatalf("given twice: %v, want an *OptionError matching ErrOptionRepeated", err)
	}
	if errors.Is(err, ErrOptionNotApplicable) {
		t.Errorf("given twice: %v matches ErrOptionNotApplicable", err)
	}
	if want := "xpc: WithPeerRequirement given twice to NewListener"; err.Error() != want {
		t.Errorf("given twice: %q, want %q", err, want)
	}
}

// guardedListener is a listener whose peers must meet req, counting the
// peers its admission check and its handler see; peers echo.
type guardedListener struct {
	l                 *Listener
	admitted, handled atomic.Int64
}

func newGuardedListener(t *testing.T, l *Listener) *guardedListener {
	t.Helper()
	g := &guardedListener{l: l}
	l.SetAdmission(func(*Peer) *ErrorObject { g.admitted.Add(1); return nil })
	serveOn(t, l, func(*Connection) Handler { g.handled.Add(1); return HandlerFunc(echo) })
	return g
}

func (g *guardedListener) wantUnseen(t *testing.T) {
	t.Helper()
	if a, h := g.admitted.Load(), g.handled.Load(); a != 0 || h != 0 {
		t.Errorf("the admission check saw %d peers and the handler %d; want none", a, h)
	}
}

// TestPeerRequirementListenerRefuses: a listener turns away a client that
// fails its requirement before its admission check or handler sees it;
// the client's connection fails, from the refused frame, with ErrInvalid
// and ErrPeerRequirement, the clause and the identity the listener
// checked, on its call and as its handler's last event.
func TestPeerRequirementListenerRefuses(t *testing.T) {
	rule := fmt.Sprintf("uid %d", otherUID)
	cases := []struct {
		name string
		make func(t *testing.T) (*guardedListener, func() (*Connection, error))
	}{
		{"endpoint", func(t *testing.T) (*guardedListener, func() (*Connection, error)) {
			l, err := NewListener(WithPeerRequirement(otherUIDRequirement()))
			if err != nil {
				t.Fatal(err)
			}
			g := newGuardedListener(t, l)
			ep, err := l.Endpoint()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ep.Close() })
			return g, func() (*Connection, error) { return NewEndpointConnection(ep) }
		}},
		{"path", func(t *testing.T) (*guardedListener, func() (*Connection, error)) {
			path := filepath.Join(t.TempDir(), "l.sock")
			l, err := ListenUnix(path, 0o600, WithPeerRequirement(otherUIDRequirement()))
			if err != nil {
				t.Fatal(err)
			}
			g := newGuardedListener(t, l)
			return g, func() (*Connection, error) { return DialUnix(testCtx(t), path) }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			g, dialer := tc.make(t)
			c, err := dialer()
			if err != nil {
				t.Fatal(err)
			}
			h := newTestHandler(nil)
			c.SetHandler(h)
			c.Activate()
			defer func() { c.Cancel(); waitClosed(t, c.Done(), "connection") }()
			_, err = c.SendWithReply(testCtx(t), Dict("op", "x"))
			wantRequirementFailed(t, err, rule, selfName(), "uid 0 ")
			wantRequirementFailed(t, h.finalEvent(t), rule, selfName())
			if r := c.Reason(); r == nil || r.Code != ReasonRequirementFailed {
				t.Errorf("Reason() = %+v", r)
			}
			g.wantUnseen(t)
		})
	}
}

// TestPeerRequirementClientRefuses: a connection that requires of its
// listener what it is not ends before anything is delivered, at its
// first send, with ErrInvalid and ErrPeerRequirement naming the listener
// (this process): through an endpoint, a path, and a socket of its own.
func TestPeerRequirementClientRefuses(t *testing.T) {
	rule := fmt.Sprintf("uid %d", otherUID)
	opt := WithPeerRequirement(otherUIDRequirement())
	// What the listeners received: nothing may have been sent.
	var received atomic.Int64
	counted := handlerFor(func(ctx context.Context, m *Message) { received.Add(1); echo(ctx, m) })
	cases := []struct {
		name string
		make func(t *testing.T) *Connection
	}{
		{"endpoint", func(t *testing.T) *Connection {
			l := serve(t, counted)
			ep, err := l.Endpoint()
			if err != nil {
				t.Fatal(err)
			}
			defer ep.Close()
			c, err := NewEndpointConnection(ep, opt)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"path", func(t *testing.T) *Connection {
			path := filepath.Join(t.TempDir(), "l.sock")
			l, err := ListenUnix(path, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			serveOn(t, l, counted)
			c, err := DialUnix(testCtx(t), path, opt)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"file", func(t *testing.T) *Connection {
			a, b, err := sock.Pair()
			if err != nil {
				t.Fatal(err)
			}
			fb := os.NewFile(uintptr(b), "far end")
			t.Cleanup(func() { fb.Close() })
			fa := os.NewFile(uintptr(a), "near end")
			defer fa.Close()
			c, err := NewConnectionFromFile(fa, opt)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			c := tc.make(t)
			var delivered atomic.Int64
			h := newTestHandler(func(context.Context, *Message) { delivered.Add(1) })
			c.SetHandler(h)
			c.Activate()
			defer func() { c.Cancel(); waitClosed(t, c.Done(), "connection") }()
			_, err := c.SendWithReply(testCtx(t), Dict("op", "x"))
			wantRequirementFailed(t, err, rule, selfName())
			wantRequirementFailed(t, h.finalEvent(t), rule, selfName())
			if err := c.Send(testCtx(t), Dict("op", "y")); !errors.Is(err, ErrPeerRequirement) {
				t.Errorf("send after the failure: %v", err)
			}
			if n, r := delivered.Load(), received.Load(); n != 0 || r != 0 {
				t.Errorf("%d messages delivered, %d sent", n, r)
			}
		})
	}
}

// TestPeerRequirementAccepted: peers that meet the requirement on both
// sides talk as if there were none, both ways, many messages.
func TestPeerRequirementAccepted(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	var served atomic.Int64
	l := serve(t, func(p *Connection) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) {
			served.Add(1)
			if op, _ := m.Body.String("op"); op == "call back" {
				if _, err := m.Connection().SendWithReply(ctx, Dict("op", "back")); err != nil {
					m.ReplyError(ctx, NewErrorObject(err.Error()))
					return
				}
			}
			echo(ctx, m)
		})
	}, WithPeerRequirement(ownUIDRequirement()))
	c := dial(t, l, HandlerFunc(echo), WithPeerRequirement(ownUIDRequirement()))
	for i := range 300 {
		op := "echo"
		if i%50 == 0 {
			op = "call back"
		}
		r, err := c.SendWithReply(ctx, Dict("op", op, "i", Int64(int64(i))))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if mustInt64(t, r, "i") != int64(i) {
			t.Fatalf("reply %v", Format(r))
		}
	}
	if c.Reason() != nil || served.Load() != 300 {
		t.Errorf("reason %v, %d served", c.Reason(), served.Load())
	}
}

// TestPeerRequirementExeAtConnect: an "exe" clause the peer's executable
// does not meet fails at connect, both ways: the listener turns the
// client away, and a client refuses the listener; each reason names the
// clause and the executable checked.
func TestPeerRequirementExeAtConnect(t *testing.T) {
	leakCheck(t)
	req := MustParseRequirement("exe /usr/libexec/goxpc-no-such-helper")
	rule := req.String()
	self := []string{selfName(), "exe " + testExe(t)}

	g := newGuardedListener(t, mustListener(t, WithPeerRequirement(req)))
	c := dial(t, g.l, nil)
	_, err := c.SendWithReply(testCtx(t), Dict("op", "x"))
	wantRequirementFailed(t, err, rule, self...)
	g.wantUnseen(t)

	l := serve(t, handlerFor(echo))
	c = dial(t, l, nil, WithPeerRequirement(req))
	_, err = c.SendWithReply(testCtx(t), Dict("op", "x"))
	wantRequirementFailed(t, err, rule, self...)

	// Met: served.
	met := MustParseRequirement("exe " + quoteValue(testExe(t)))
	c = dial(t, serve(t, handlerFor(echo), WithPeerRequirement(met)), nil, WithPeerRequirement(met))
	if _, err := c.SendWithReply(testCtx(t), Dict("op", "x")); err != nil {
		t.Fatalf("exe met: %v", err)
	}
}

func mustListener(t *testing.T, opts ...Option) *Listener {
	t.Helper()
	l, err := NewListener(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
