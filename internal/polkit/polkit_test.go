package polkit

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"go.uber.org/goleak"

	"github.com/goxpc/xpc/internal/dbustest"
	"github.com/goxpc/xpc/internal/polkit/polkittest"
)

// approvalAuthority is the interface xpcd's approval flow asks through;
// *Authority must satisfy it.
type approvalAuthority interface {
	Authorize(ctx context.Context, pid int, startTime uint64, uid uint32, action string, details map[string]string) (bool, error)
}

var _ approvalAuthority = (*Authority)(nil)

// connect returns an Authority on b, closed at the test's end.
func connect(t testing.TB, b *dbustest.Bus) *Authority {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := Connect(ctx, b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// authorize calls a.Authorize within 10 s.
func authorize(a *Authority, pid int, start uint64, uid uint32, action string, details map[string]string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a.Authorize(ctx, pid, start, uid, action, details)
}

// TestAuthorizeSubject: the authority is asked about exactly the process
// named, with D-Bus's types for each field (polkitd rejects others), the
// action, the details, the flag allowing user interaction and a cancellation id unique
// to each call.
func TestAuthorizeSubject(t *testing.T) {
	b := dbustest.Start(t, "")
	f := polkittest.Start(t, b, polkittest.Authorized)
	a := connect(t, b)
	details := map[string]string{"label": "com.example.helper", "bundle": "com.example.App"}
	for range 2 {
		ok, err := authorize(a, 4242, 123456789012, 1000, ActionApproveDaemon, details)
		if !ok || err != nil {
			t.Fatalf("Authorize = %v, %v; want true, nil", ok, err)
		}
	}
	got := f.Checks()
	if len(got) != 2 {
		t.Fatalf("%d checks, want 2", len(got))
	}
	c := got[0]
	if c.Subject.Kind != "unix-process" {
		t.Errorf("subject kind %q, want unix-process", c.Subject.Kind)
	}
	want := map[string]any{"pid": uint32(4242), "start-time": uint64(123456789012), "uid": int32(1000)}
	if len(c.Subject.Details) != len(want) {
		t.Errorf("subject details %v, want %v", c.Subject.Details, want)
	}
	for k, v := range want {
		if g := c.Subject.Details[k].Value(); g != v {
			t.Errorf("subject %s = %#v (%T), want %#v (%T)", k, g, g, v, v)
		}
	}
	if c.Action != ActionApproveDaemon || !maps.Equal(c.Details, details) || c.Flags != 1 {
		t.Errorf("asked %q %v flags %d; want %q %v flags 1", c.Action, c.Details, c.Flags, ActionApproveDaemon, details)
	}
	if c.ID == "" || c.ID == got[1].ID {
		t.Errorf("cancellation ids %q, %q: want two different, not empty", c.ID, got[1].ID)
	}
}

// TestAuthorizeAnswers: each answer of the authority is told apart.
func TestAuthorizeAnswers(t *testing.T) {
	b := dbustest.Start(t, "")
	for _, tc := range []struct {
		name   string
		answer polkittest.Answer
		ok     bool
		err    error
	}{
		{"authorized", polkittest.Authorized, true, nil},
		{"authorized after a challenge", polkittest.Answering(polkittest.Result{Authorized: true, Details: map[string]string{"polkit.retains_authorization_after_challenge": "true"}}), true, nil},
		{"not authorized", polkittest.Answering(polkittest.Result{}), false, nil},
		{"challenge", polkittest.Answering(polkittest.Result{Challenge: true}), false, ErrChallenge},
		{"dismissed", polkittest.Answering(polkittest.Result{Details: map[string]string{"polkit.dismissed": "true"}}), false, ErrDismissed},
		{"error", polkittest.Failing("org.freedesktop.PolicyKit1.Error.Failed"), false, ErrFailed},
		{"not supported", polkittest.Failing("org.freedesktop.PolicyKit1.Error.NotSupported"), false, ErrFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			polkittest.Start(t, b, tc.answer)
			a := connect(t, b)
			ok, err := authorize(a, 1, 1, 0, ActionApproveDaemon, nil)
			if ok != tc.ok || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Errorf("Authorize = %v, %v; want %v, %v", ok, err, tc.ok, tc.err)
			}
			if tc.err == ErrFailed {
				var derr dbus.Error
				if !errors.As(err, &derr) || !strings.HasPrefix(derr.Name, "org.freedesktop.PolicyKit1.Error.") {
					t.Errorf("error %v does not carry the authority's dbus.Error", err)
				}
			}
		})
	}
}

// TestAuthorizeWrongShape: an answer that is not (bba{ss}) is ErrFailed,
// never a crash and never true.
func TestAuthorizeWrongShape(t *testing.T) {
	b := dbustest.Start(t, "")
	type (
		bb  struct{ A, B bool }
		sba struct {
			A string
			B bool
			C map[string]string
		}
		bbai struct {
			A, B bool
			C    map[string]int32
		}
	)
	for _, tc := range []struct {
		sig    string
		method any
	}{
		{"b", func(polkittest.Subject, string, map[string]string, uint32, string) (bool, *dbus.Error) {
			return true, nil
		}},
		{"(bb)", func(polkittest.Subject, string, map[string]string, uint32, string) (bb, *dbus.Error) {
			return bb{true, true}, nil
		}},
		{"(sba{ss})", func(polkittest.Subject, string, map[string]string, uint32, string) (sba, *dbus.Error) {
			return sba{"true", true, nil}, nil
		}},
		{"(bba{si})", func(polkittest.Subject, string, map[string]string, uint32, string) (bbai, *dbus.Error) {
			return bbai{true, false, nil}, nil
		}},
		{"bba{ss}", func(polkittest.Subject, string, map[string]string, uint32, string) (bool, bool, map[string]string, *dbus.Error) {
			return true, false, nil, nil
		}},
		{"(bba{ss})b", func(polkittest.Subject, string, map[string]string, uint32, string) (polkittest.Result, bool, *dbus.Error) {
			return polkittest.Result{Authorized: true}, true, nil
		}},
		{"nothing", func(polkittest.Subject, string, map[string]string, uint32, string) *dbus.Error { return nil }},
	} {
		t.Run(tc.sig, func(t *testing.T) {
			conn := b.Connect(t)
			if err := conn.ExportMethodTable(map[string]any{"CheckAuthorization": tc.method}, authPath, authIface); err != nil {
				t.Fatal(err)
			}
			dbustest.Own(t, conn, busName)
			a := connect(t, b)
			ok, err := authorize(a, 1, 1, 0, ActionApproveDaemon, nil)
			if ok || !errors.Is(err, ErrFailed) {
				t.Errorf("answer %s: Authorize = %v, %v; want false, ErrFailed", tc.sig, ok, err)
			}
			conn.Close()
		})
	}
}

// TestAuthorizeCancel: when the caller's context ends before the
// authority answers, Authorize returns at once with the context's error,
// and the authority is told to drop the check (CancelCheckAuthorization
// with the check's id), so that its dialog goes away.
func TestAuthorizeCancel(t *testing.T) {
	b := dbustest.Start(t, "")
	f := polkittest.Start(t, b, polkittest.Never)
	a := connect(t, b)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	ok, err := a.Authorize(ctx, 7, 8, 9, ActionApproveDaemon, nil)
	if ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Authorize = %v, %v; want false, DeadlineExceeded", ok, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Authorize returned after %v, its context ended after 300ms", d)
	}
	id := <-f.Arrived
	select {
	case got := <-f.Cancels:
		if got != id {
			t.Errorf("CancelCheckAuthorization(%q), want the check's id %q", got, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no CancelCheckAuthorization")
	}

	// A context cancelled by the caller, too.
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		<-f.Arrived
		cancel()
	}()
	if ok, err := a.Authorize(ctx, 7, 8, 9, ActionApproveDaemon, nil); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Authorize = %v, %v; want false, Canceled", ok, err)
	}
	select {
	case <-f.Cancels:
	case <-time.After(10 * time.Second):
		t.Fatal("no CancelCheckAuthorization after cancel")
	}

	// A context already ended: nothing is asked.
	n := len(f.Checks())
	if ok, err := a.Authorize(ctx, 7, 8, 9, ActionApproveDaemon, nil); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Authorize with an ended context = %v, %v; want false, Canceled", ok, err)
	}
	if got := len(f.Checks()); got != n {
		t.Errorf("the authority was asked with an ended context")
	}
	// Nor told to cancel: by the time a later check is answered, no
	// CancelCheckAuthorization, sent before it, has arrived.
	f.SetAnswer(polkittest.Authorized)
	if ok, err := authorize(a, 1, 1, 0, ActionApproveDaemon, nil); !ok || err != nil {
		t.Fatalf("Authorize = %v, %v", ok, err)
	}
	if len(f.Cancels) != 0 {
		t.Errorf("CancelCheckAuthorization(%q) of a check never asked", <-f.Cancels)
	}
}

// TestAuthorizePendingBound: at most MaxPending checks wait for the
// authority at once; the next waits for a slot within its own context,
// and is never sent.
func TestAuthorizePendingBound(t *testing.T) {
	b := dbustest.Start(t, "")
	f := polkittest.Start(t, b, polkittest.Never)
	a := connect(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, MaxPending)
	for range MaxPending {
		go func() {
			_, err := a.Authorize(ctx, 1, 1, 0, ActionApproveDaemon, nil)
			errs <- err
		}()
	}
	for range MaxPending {
		<-f.Arrived
	}
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	if _, err := a.Authorize(short, 1, 1, 0, ActionApproveDaemon, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Authorize past MaxPending = %v, want DeadlineExceeded", err)
	}
	if n := len(f.Checks()); n != MaxPending {
		t.Errorf("the authority was asked %d times, want %d", n, MaxPending)
	}
	cancel()
	for range MaxPending {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("Authorize = %v, want Canceled", err)
		}
	}
	// The slots are free again.
	f.SetAnswer(polkittest.Authorized)
	if ok, err := authorize(a, 1, 1, 0, ActionApproveDaemon, nil); !ok || err != nil {
		t.Errorf("Authorize after the others ended = %v, %v", ok, err)
	}
}

// TestAuthorizeInvalid: a request that cannot be sent is refused before
// anything reaches the bus (a bus drops a connection that sends a string
// that is not UTF-8).
func TestAuthorizeInvalid(t *testing.T) {
	b := dbustest.Start(t, "")
	f := polkittest.Start(t, b, polkittest.Authorized)
	a := connect(t, b)
	many := map[string]string{}
	for i := range MaxDetails + 1 {
		many[string(rune('a'+i%26))+strings.Repeat("x", i)] = "v"
	}
	for _, tc := range []struct {
		name    string
		pid     int
		uid     uint32
		action  string
		details map[string]string
	}{
		{"pid 0", 0, 0, ActionApproveDaemon, nil},
		{"negative pid", -1, 0, ActionApproveDaemon, nil},
		{"huge pid", 1 << 40, 0, ActionApproveDaemon, nil},
		{"uid -1", 1, 1<<32 - 1, ActionApproveDaemon, nil},
		{"no action", 1, 0, "", nil},
		{"upper-case action", 1, 0, "org.goxpc.Approve", nil},
		{"long action", 1, 0, strings.Repeat("a", 256), nil},
		{"action with NUL", 1, 0, "org.goxpc\x00", nil},
		{"key not UTF-8", 1, 0, ActionApproveDaemon, map[string]string{"\xff": "v"}},
		{"value with NUL", 1, 0, ActionApproveDaemon, map[string]string{"k": "a\x00b"}},
		{"empty key", 1, 0, ActionApproveDaemon, map[string]string{"": "v"}},
		{"too many details", 1, 0, ActionApproveDaemon, many},
		{"details too large", 1, 0, ActionApproveDaemon, map[string]string{"k": strings.Repeat("v", MaxDetailsBytes)}},
	} {
		ok, err := authorize(a, tc.pid, 1, tc.uid, tc.action, tc.details)
		if ok || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Authorize = %v, %v; want false, ErrInvalid", tc.name, ok, err)
		}
	}
	if got := f.Checks(); len(got) != 0 {
		t.Errorf("the authority was asked %d times, want polkittest.Never", len(got))
	}
	// The connection is still good.
	if ok, err := authorize(a, 1, 1, 0, ActionApproveDaemon, map[string]string{"k": strings.Repeat("v", MaxDetailsBytes-1)}); !ok || err != nil {
		t.Errorf("Authorize after refusals = %v, %v", ok, err)
	}
}

// TestConnectUnavailable: where no authority answers, Connect says so
// with ErrUnavailable: a bus without it, and no bus at all.
func TestConnectUnavailable(t *testing.T) {
	b := dbustest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, addr := range []string{b.Addr, "unix:path=" + filepath.Join(t.TempDir(), "nobus"), "tcp:host=localhost,port=1"} {
		a, err := Connect(ctx, addr)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Connect(%s) = %v, %v; want ErrUnavailable", addr, a, err)
		}
	}
}

// TestConnectSystemBus: "" is the system bus of DBUS_SYSTEM_BUS_ADDRESS.
func TestConnectSystemBus(t *testing.T) {
	b := dbustest.Start(t, "")
	polkittest.Start(t, b, polkittest.Authorized)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", b.Addr)
	a, err := Connect(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if ok, err := authorize(a, 1, 1, 0, ActionApproveDaemon, nil); !ok || err != nil {
		t.Errorf("Authorize = %v, %v", ok, err)
	}
}

// TestConnectActivatable: an authority the bus can start (a .service file
// for its name) counts as there, as polkitd is on most systems.
func TestConnectActivatable(t *testing.T) {
	dir := t.TempDir()
	service := "[D-BUS Service]\nName=" + busName + "\nExec=/bin/false\n"
	if err := os.WriteFile(filepath.Join(dir, busName+".service"), []byte(service), 0o644); err != nil {
		t.Fatal(err)
	}
	b := dbustest.StartServices(t, dir)
	a := connect(t, b)
	// Asking starts it; it fails to start, so the answer is an error, not
	// a hang.
	if ok, err := authorize(a, 1, 1, 0, ActionApproveDaemon, nil); ok || err == nil {
		t.Errorf("Authorize with an authority that cannot start = %v, %v", ok, err)
	}
}

// TestAuthorityGone: the authority leaving the bus, in the middle of a
// check or before it, makes Authorize say ErrUnavailable; so does the bus
// going.
func TestAuthorityGone(t *testing.T) {
	b := dbustest.Start(t, "")
	f := polkittest.Start(t, b, polkittest.Never)
	a := connect(t, b)
	errs := make(chan error, 1)
	go func() {
		_, err := authorize(a, 1, 1, 0, ActionApproveDaemon, nil)
		errs <- err
	}()
	<-f.Arrived
	f.Conn.Close()
	if err := <-errs; !errors.Is(err, ErrUnavailable) {
		t.Errorf("Authorize with the authority gone in the middle = %v; want ErrUnavailable", err)
	}
	// Once the bus knows it is gone.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var has bool
		if err := a.conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, busName).Store(&has); err != nil {
			t.Fatal(err)
		}
		if !has {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the authority's name still has an owner")
		}
	}
	if ok, err := authorize(a, 1, 1, 0, ActionApproveDaemon, nil); ok || !errors.Is(err, ErrUnavailable) {
		t.Errorf("Authorize with the authority gone = %v, %v; want ErrUnavailable", ok, err)
	}
	b.Stop()
	if ok, err := authorize(a, 1, 1, 0, ActionApproveDaemon, nil); ok || !errors.Is(err, ErrUnavailable) {
		t.Errorf("Authorize with the bus gone = %v, %v; want ErrUnavailable", ok, err)
	}
}

// TestClose: Close ends the checks under way with ErrClosed, and later
// ones too.
func TestClose(t *testing.T) {
	b := dbustest.Start(t, "")
	f := polkittest.Start(t, b, polkittest.Never)
	a := connect(t, b)
	errs := make(chan error, 1)
	go func() {
		_, err := authorize(a, 1, 1, 0, ActionApproveDaemon, nil)
		errs <- err
	}()
	<-f.Arrived
	if err := a.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Authorize under way at Close = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Authorize under way did not end at Close")
	}
	if _, err := authorize(a, 1, 1, 0, ActionApproveDaemon, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Authorize after Close = %v, want ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestNoLeaks: an Authority closed leaves no goroutine behind, after
// answers, a cancelled check and a refused one.
func TestNoLeaks(t *testing.T) {
	b := dbustest.Start(t, "")
	f := polkittest.Start(t, b, polkittest.Authorized)
	ignore := goleak.IgnoreCurrent()
	a := connect(t, b)
	authorize(a, 1, 1, 0, ActionApproveDaemon, nil)
	authorize(a, 1, 1, 0, "BAD", nil)
	f.SetAnswer(polkittest.Never)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	a.Authorize(ctx, 1, 1, 0, ActionApproveDaemon, nil)
	cancel()
	<-f.Cancels
	a.Close()
	goleak.VerifyNone(t, ignore)
}
