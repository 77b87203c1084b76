package login1_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/dbustest"
	"github.com/goxpc/xpc/internal/login1"
	"github.com/goxpc/xpc/internal/login1/login1test"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func hint(t *testing.T, w *login1.Watcher) bool {
	t.Helper()
	select {
	case _, ok := <-w.Changed():
		return ok
	case <-time.After(10 * time.Second):
		t.Fatal("no hint came")
	}
	return false
}

// Users lists logind's users; a login is a hint on Changed, after which
// Users has the new user; UserNew from any other connection is a hint
// too, but only what logind lists counts.
func TestWatcher(t *testing.T) {
	bus := dbustest.Start(t, "")
	l := login1test.Start(t, bus, 1000, 0)
	w, err := login1.Connect(testCtx(t), bus.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if u, err := w.Users(testCtx(t)); err != nil || !slices.Equal(u, []uint32{0, 1000}) {
		t.Fatalf("Users = %v, %v", u, err)
	}
	l.Login(t, 1001)
	if !hint(t, w) {
		t.Fatal("Changed closed at a login")
	}
	if u, _ := w.Users(testCtx(t)); !slices.Equal(u, []uint32{0, 1000, 1001}) {
		t.Fatalf("Users after a login = %v", u)
	}
	// A forged UserNew is a hint, never a user.
	if err := login1test.SendUserNew(bus.Connect(t), 4242); err != nil {
		t.Fatal(err)
	}
	hint(t, w)
	if u, _ := w.Users(testCtx(t)); slices.Contains(u, 4242) {
		t.Fatalf("Users after a forged UserNew = %v", u)
	}
	// Many signals make at most one pending hint.
	for range 50 {
		l.Login(t, 1001)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(w.Changed()); n > 1 {
		t.Errorf("%d hints pending", n)
	}
	w.Close()
	for range w.Changed() {
	}
}

// Without logind on the bus, or without a bus, Connect fails with
// ErrUnavailable; Changed closes when logind's bus goes.
func TestUnavailable(t *testing.T) {
	bus := dbustest.Start(t, "")
	if _, err := login1.Connect(testCtx(t), bus.Addr); !errors.Is(err, login1.ErrUnavailable) {
		t.Errorf("Connect without logind: %v", err)
	}
	if _, err := login1.Connect(testCtx(t), "unix:path="+t.TempDir()+"/none"); !errors.Is(err, login1.ErrUnavailable) {
		t.Errorf("Connect without a bus: %v", err)
	}
	login1test.Start(t, bus)
	w, err := login1.Connect(testCtx(t), bus.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	bus.Stop()
	select {
	case <-w.Changed():
		for range w.Changed() {
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Changed not closed when the bus went")
	}
}
