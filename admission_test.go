package xpc

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// admissionListener listens at a new path; admit decides for each peer.
func admissionListener(t *testing.T, admit func(p *Peer) *ErrorObject) (string, *atomic.Int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "l.sock")
	l, err := ListenUnix(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	l.SetAdmission(admit)
	serveOn(t, l, func(*Connection) Handler {
		handled.Add(1)
		return HandlerFunc(echo)
	})
	return path, &handled
}

func tooMany(p *Peer) *ErrorObject {
	eo := NewErrorObject("uid " + strconv.Itoa(int(p.UID)) + " has too many connections")
	eo.Set("reason", String("too-many-connections"))
	return eo
}

// TestAdmissionRefusesWithReason: a listener's admission check turns a
// peer away with an error object; the dialer's connection fails with
// ErrInvalid and ErrDenied, carrying the description and the reason, and
// the listener's handler never sees the peer.
func TestAdmissionRefusesWithReason(t *testing.T) {
	var seen atomic.Int64
	path, handled := admissionListener(t, func(p *Peer) *ErrorObject {
		seen.Store(int64(p.PID))
		return tooMany(p)
	})
	ctx := testCtx(t)
	c, err := DialUnix(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(nil)
	c.SetHandler(h)
	c.Activate()
	_, err = c.SendWithReply(ctx, Dict("op", "x"))
	wantConnErr(t, err, ErrInvalid, ErrDenied)
	for _, s := range []string{"too many connections", "too-many-connections"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	h.finalEvent(t, ErrInvalid, ErrDenied)
	if got := seen.Load(); got != int64(os.Getpid()) {
		t.Errorf("admission saw pid %d, want %d", got, os.Getpid())
	}
	if n := handled.Load(); n != 0 {
		t.Errorf("the handler saw %d refused peers", n)
	}
}

// TestAdmissionRefusalOnOneWaySend: a one-way send made after the listener
// has refused and closed (EPIPE) fails with the listener's reason, not as
// a lost peer.
func TestAdmissionRefusalOnOneWaySend(t *testing.T) {
	path, _ := admissionListener(t, tooMany)
	ctx := testCtx(t)
	c, err := DialUnix(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Cancel()
	c.Activate()
	var serr error
	for deadline := time.Now().Add(5 * time.Second); serr == nil && time.Now().Before(deadline); {
		serr = c.Send(ctx, Dict("op", "x"))
		time.Sleep(time.Millisecond)
	}
	wantConnErr(t, serr, ErrInvalid, ErrDenied)
	if !strings.Contains(serr.Error(), "too-many-connections") {
		t.Errorf("error %q does not give the reason", serr)
	}
}

// TestAdmissionAdmits: peers the check admits are served as before.
func TestAdmissionAdmits(t *testing.T) {
	var calls atomic.Int64
	path, handled := admissionListener(t, func(*Peer) *ErrorObject { calls.Add(1); return nil })
	ctx := testCtx(t)
	for range 3 {
		c, err := DialUnix(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		c.Activate()
		if _, err := c.SendWithReply(ctx, Dict("n", 1)); err != nil {
			t.Fatal(err)
		}
		c.Cancel()
	}
	if calls.Load() != 3 || handled.Load() != 3 {
		t.Errorf("admission ran %d times, handler %d; want 3 and 3", calls.Load(), handled.Load())
	}
}

// TestBootstrapSurfacesRefusal: a lookup through a Bootstrap whose xpcd
// turns the bootstrap connection away fails with xpcd's reason, not as an
// interruption.
func TestBootstrapSurfacesRefusal(t *testing.T) {
	path, _ := admissionListener(t, tooMany)
	b, err := NewBootstrap(WithBootstrapSocket(path))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := NewServiceConnection("com.example.svc", WithBootstrap(b))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Cancel()
	c.SetHandler(HandlerFunc(func(context.Context, *Message) {}))
	c.Activate()
	_, err = c.SendWithReply(testCtx(t), Dict("op", "x"))
	wantConnErr(t, err, ErrInvalid, ErrDenied)
	if !strings.Contains(err.Error(), "too-many-connections") {
		t.Errorf("error %q does not give the reason", err)
	}
}
