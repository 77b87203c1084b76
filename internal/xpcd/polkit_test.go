package xpcd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/dbustest"
	"github.com/goxpc/xpc/internal/polkit"
	"github.com/goxpc/xpc/internal/polkit/polkittest"
)

// polkitOf returns d's link to polkit, nil if it has none.
func polkitOf(d *Daemon) *polkitLink {
	for _, c := range d.comp {
		if l, ok := c.(*polkitLink); ok {
			return l
		}
	}
	return nil
}

// askPolkit asks l about a process, for ActionApproveDaemon.
func askPolkit(t *testing.T, l *polkitLink) (bool, error) {
	return l.Authorize(testCtx(t), 4242, 77, 1000, polkit.ActionApproveDaemon, map[string]string{"identifier": "com.example.App"})
}

// TestPolkitNone: by default xpcd asks no authority: the supervisor's
// approval authority is nil, not an interface holding a nil link.
func TestPolkitNone(t *testing.T) {
	h := newHarness(t)
	d := h.start()
	if l := polkitOf(d); l != nil {
		t.Errorf("a link to polkit without Config.PolkitBus")
	}
	if a := newPolkitLink("", nil).approvalAuthority(); a != nil {
		t.Errorf("approvalAuthority of no link = %#v, want nil", a)
	}
}

// TestPolkitAsked: with Config.PolkitBus, xpcd finds the authority at
// start and asks it.
func TestPolkitAsked(t *testing.T) {
	b := dbustest.Start(t, "")
	f := polkittest.Start(t, b, polkittest.Authorized)
	h := newHarness(t)
	h.cfg.PolkitBus = b.Addr
	l := polkitOf(h.start())
	if l == nil || l.auth == nil {
		t.Fatal("no link to polkit after Start")
	}
	if ok, err := askPolkit(t, l); !ok || err != nil {
		t.Errorf("Authorize = %v, %v; want true, nil", ok, err)
	}
	if got := f.Checks(); len(got) != 1 || got[0].Action != polkit.ActionApproveDaemon {
		t.Errorf("the authority was asked %+v", got)
	}
	if strings.Contains(h.logs.String(), "no polkit authority") {
		t.Error("logged that there is no authority")
	}
}

// TestPolkitSystemBus: "system" is the system bus.
func TestPolkitSystemBus(t *testing.T) {
	b := dbustest.Start(t, "")
	polkittest.Start(t, b, polkittest.Authorized)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", b.Addr)
	h := newHarness(t)
	h.cfg.PolkitBus = PolkitSystemBus
	if ok, err := askPolkit(t, polkitOf(h.start())); !ok || err != nil {
		t.Errorf("Authorize = %v, %v; want true, nil", ok, err)
	}
}

// TestPolkitMissing: without an authority xpcd starts all the same, says
// so once however often it looks again, and answers ErrUnavailable at
// once without trying the bus again within polkitRetry; once the authority is there and the retry
// is due, it is found and asked.
func TestPolkitMissing(t *testing.T) {
	b := dbustest.Start(t, "")
	h := newHarness(t)
	h.cfg.PolkitBus = b.Addr
	l := polkitOf(h.start())
	for range 3 {
		// Each tries the bus again, and finds no authority again.
		l.mu.Lock()
		l.nextDial = time.Time{}
		l.mu.Unlock()
		start := time.Now()
		if ok, err := askPolkit(t, l); ok || !errors.Is(err, polkit.ErrUnavailable) {
			t.Errorf("Authorize = %v, %v; want ErrUnavailable", ok, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Authorize took %v without an authority", d)
		}
	}
	if n := strings.Count(h.logs.String(), "no polkit authority"); n != 1 {
		t.Errorf("logged %d times that there is no authority, want once:\n%s", n, h.logs)
	}

	f := polkittest.Start(t, b, polkittest.Authorized)
	if ok, err := askPolkit(t, l); ok || !errors.Is(err, polkit.ErrUnavailable) {
		t.Errorf("Authorize before the retry is due = %v, %v; want ErrUnavailable", ok, err)
	}
	l.mu.Lock()
	l.nextDial = time.Time{}
	l.mu.Unlock()
	if ok, err := askPolkit(t, l); !ok || err != nil {
		t.Errorf("Authorize with the authority back = %v, %v; want true, nil", ok, err)
	}
	if !strings.Contains(h.logs.String(), "polkit authority found") {
		t.Error("did not log that the authority was found")
	}

	// It goes: the link drops the connection and looks again later.
	f.Conn.Close()
	waitFor(t, "the authority to leave", func() bool {
		_, err := askPolkit(t, l)
		return errors.Is(err, polkit.ErrUnavailable)
	})
	l.mu.Lock()
	auth := l.auth
	l.mu.Unlock()
	if auth != nil {
		t.Error("the link kept the connection of an authority that went")
	}
}

// TestPolkitCloseEndsQuestions: closing xpcd ends a question under way
// (a dialog nobody answers), so that shutdown does not wait for it.
func TestPolkitCloseEndsQuestions(t *testing.T) {
	b := dbustest.Start(t, "")
	f := polkittest.Start(t, b, polkittest.Never)
	h := newHarness(t)
	h.cfg.PolkitBus = b.Addr
	d := h.start()
	l := polkitOf(d)
	errs := make(chan error, 1)
	go func() {
		_, err := l.Authorize(context.Background(), 1, 1, 1000, polkit.ActionApproveDaemon, nil)
		errs <- err
	}()
	<-f.Arrived
	h.close(d)
	select {
	case err := <-errs:
		if !errors.Is(err, polkit.ErrClosed) {
			t.Errorf("Authorize under way at Close = %v, want ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Authorize under way did not end at Close")
	}
	if _, err := askPolkit(t, l); !errors.Is(err, polkit.ErrClosed) {
		t.Errorf("Authorize after Close = %v, want ErrClosed", err)
	}
}
