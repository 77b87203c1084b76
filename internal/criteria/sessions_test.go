package criteria

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"go.uber.org/goleak"
)

func TestLogindSessions(t *testing.T) {
	b := startBus(t, "")
	m := startLogind(t, b)
	m.add("2", 1000, "user", "x11")
	m.add("3", 1000, "user", "tty")
	m.add("5", 1001, "user", "wayland")
	m.add("c1", 1001, "background", "unspecified")
	m.add("c2", 0, "greeter", "x11")
	l := newLinux(t, Config{Root: tree(t, nil), SystemBus: b.Addr})

	want(t, l, UserIdle, 1000, true, false, "session 2, 3 not idle")
	want(t, l, ScreenLocked, 1000, true, false, "graphical session 2 not locked")
	want(t, l, UserIdle, 4242, true, true, "no session of uid 4242")
	want(t, l, ScreenLocked, 4242, true, true, "no graphical session of uid 4242")
	want(t, l, UserIdle, AnyUser, true, false, "session 2, 3, 5 not idle")

	drain(l)
	m.set("2", "IdleHint", true)
	waitChanged(t, l, "IdleHint of session 2")
	want(t, l, UserIdle, 1000, true, false, "session 3 not idle")
	m.set("3", "IdleHint", true)
	waitChanged(t, l, "IdleHint of session 3")
	want(t, l, UserIdle, 1000, true, true, "all 2 sessions of uid 1000 idle")
	want(t, l, UserIdle, AnyUser, true, false, "session 5 not idle")
	m.set("5", "IdleHint", true)
	waitChanged(t, l, "IdleHint of session 5")
	// The background session of uid 1001 and the greeter do not count.
	want(t, l, UserIdle, AnyUser, true, true, "all 3 sessions of any user idle")
	want(t, l, UserIdle, 1001, true, true, "all 1 sessions of uid 1001 idle")

	m.set("2", "LockedHint", true)
	waitChanged(t, l, "LockedHint of session 2")
	// Session 3 is a text session: it has no screen to lock.
	want(t, l, ScreenLocked, 1000, true, true, "all 1 graphical sessions of uid 1000 locked")
	want(t, l, ScreenLocked, AnyUser, true, false, "graphical session 5 not locked")

	m.add("9", 4242, "user", "wayland")
	waitChanged(t, l, "SessionNew")
	want(t, l, UserIdle, 4242, true, false, "session 9 not idle")
	m.remove("9")
	waitChanged(t, l, "SessionRemoved")
	want(t, l, UserIdle, 4242, true, true, "no session of uid 4242")
	m.addGhost("10", 4242)
	want(t, l, UserIdle, 4242, true, true, "no session of uid 4242")

	// NetworkManager is not on this bus.
	want(t, l, InexpensiveNetwork, 0, false, false, "NetworkManager is not on the system bus, and the kernel cannot tell")
	want(t, l, Network, 0, false, false, "NetworkManager is not on the system bus")
}

func TestNetworkManager(t *testing.T) {
	b := startBus(t, "")
	nm := startNM(t, b, 4, 2)
	root := tree(t, map[string]string{"proc/net/route": "Iface Destination\n"})
	l := newLinux(t, Config{Root: root, SystemBus: b.Addr})

	want(t, l, Network, 0, true, true, "connectivity full")
	want(t, l, InexpensiveNetwork, 0, true, true, "metered no")
	for _, tc := range []struct {
		connectivity uint32
		value        bool
		why          string
	}{{1, false, "connectivity none"}, {2, false, "connectivity portal"}, {3, false, "connectivity limited"}, {0, false, "no default route (NetworkManager: connectivity unknown)"}, {4, true, "connectivity full"}} {
		drain(l)
		nm.set("Connectivity", tc.connectivity)
		waitChanged(t, l, "Connectivity")
		want(t, l, Network, 0, true, tc.value, tc.why)
	}
	for _, tc := range []struct {
		metered uint32
		value   bool
		why     string
	}{{1, false, "metered yes"}, {3, false, "metered guess-yes"}, {4, true, "metered guess-no"}, {0, true, "metered unknown (counted as not metered)"}, {9, true, "metered 9"}} {
		drain(l)
		nm.set("Metered", tc.metered)
		waitChanged(t, l, "Metered")
		want(t, l, InexpensiveNetwork, 0, true, tc.value, tc.why)
	}
	// logind is not on this bus.
	want(t, l, UserIdle, 1000, false, false, "logind is not on the system bus")

	// NetworkManager leaves: Changed, and the kernel's routes answer.
	drain(l)
	nm.conn.Close()
	waitChanged(t, l, "NetworkManager leaving")
	want(t, l, Network, 0, true, false, "no default route (NetworkManager is not on the system bus)")
}

func TestNoBus(t *testing.T) {
	l := newLinux(t, Config{Root: tree(t, nil)})
	for _, c := range []Condition{UserIdle, ScreenLocked, InexpensiveNetwork} {
		want(t, l, c, 1000, false, false, "no system bus (unix:path=")
	}
	want(t, l, Network, 0, false, false, "/proc/net/route")
}

// TestBusRetryBounded: without a bus, Reads dial at most once per Retry.
func TestBusRetryBounded(t *testing.T) {
	var log strings.Builder
	l := newLinux(t, Config{Root: tree(t, nil), Retry: time.Second, Log: slog.New(slog.NewTextHandler(&log, nil))})
	for range 20 {
		want(t, l, UserIdle, 1000, false, false, "no system bus")
	}
	time.Sleep(1100 * time.Millisecond)
	want(t, l, UserIdle, 1000, false, false, "no system bus")
	l.mu.Lock()
	dials := l.dials
	l.mu.Unlock()
	if dials != 2 {
		t.Errorf("%d dials, want 2: one at NewLinux, one after Retry", dials)
	}
	if n := strings.Count(log.String(), "no system bus"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, log.String())
	}
}

func TestBusWithNoServices(t *testing.T) {
	b := startBus(t, "")
	l := newLinux(t, Config{Root: tree(t, nil), SystemBus: b.Addr})
	want(t, l, UserIdle, 1000, false, false, "logind is not on the system bus")
	want(t, l, ScreenLocked, AnyUser, false, false, "logind is not on the system bus")
	want(t, l, InexpensiveNetwork, 0, false, false, "NetworkManager is not on the system bus")
}

func TestSystemBusFromEnvironment(t *testing.T) {
	b := startBus(t, "")
	startLogind(t, b)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", b.Addr)
	l, err := NewLinux(context.Background(), Config{Root: tree(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	want(t, l, UserIdle, 1000, true, true, "no session of uid 1000")
}

func TestSystemBusDefault(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l, err := NewLinux(ctx, Config{Root: tree(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.cfg.SystemBus != DefaultSystemBus {
		t.Errorf("SystemBus = %q, want %q", l.cfg.SystemBus, DefaultSystemBus)
	}
}

func TestBusAddresses(t *testing.T) {
	b := startBus(t, "")
	startLogind(t, b)
	for _, addr := range []string{
		"tcp:host=localhost,port=1;" + b.Addr,
		noBus(t) + ";" + b.Addr,
		"unix:guid=0123," + strings.TrimPrefix(b.Addr, "unix:"),
		strings.Replace(b.Addr, "/", "%2f", 1),
	} {
		l := newLinux(t, Config{Root: tree(t, nil), SystemBus: addr})
		want(t, l, UserIdle, 7, true, true, "no session")
	}
	for _, addr := range []string{"tcp:host=localhost,port=1", "unix:tmpdir=/tmp", "unix:path=%zz", ";"} {
		l := newLinux(t, Config{Root: tree(t, nil), SystemBus: addr})
		want(t, l, UserIdle, 7, false, false, "no system bus")
	}
}

func TestLogindDeadline(t *testing.T) {
	b := startBus(t, "")
	m := startLogind(t, b)
	block := make(chan struct{})
	defer close(block)
	m.mu.Lock()
	m.block = block
	m.mu.Unlock()
	l := newLinux(t, Config{Root: tree(t, nil), SystemBus: b.Addr})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	f := l.Read(ctx, UserIdle, 1000)
	if f.Known || !strings.Contains(f.Why, "logind did not answer in time") {
		t.Errorf("Read of a logind that does not answer = %+v", f)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Read took %v with a 200ms deadline", d)
	}
}

func TestBusLostAndBack(t *testing.T) {
	b := startBus(t, "")
	startLogind(t, b)
	l := newLinux(t, Config{Root: tree(t, nil), SystemBus: b.Addr, Retry: 50 * time.Millisecond})
	want(t, l, UserIdle, 1000, true, true, "no session")

	drain(l)
	b.Stop()
	waitChanged(t, l, "the bus stopped")
	want(t, l, UserIdle, 1000, false, false, "lost the system bus")
	time.Sleep(100 * time.Millisecond) // Retry: the next Read dials again
	want(t, l, UserIdle, 1000, false, false, "no system bus")

	b2 := startBus(t, b.Socket)
	m := startLogind(t, b2)
	m.add("1", 1000, "user", "tty")
	deadline := time.Now().Add(10 * time.Second)
	for {
		f := l.Read(context.Background(), UserIdle, 1000)
		if f.Known {
			if f.Value || !strings.Contains(f.Why, "session 1 not idle") {
				t.Errorf("after the bus came back: %+v", f)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bus did not come back: %+v", f)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCloseLeaksNothing: Close ends the goroutines watching the bus and
// the kernel's routes, and closes their fds.
func TestCloseLeaksNothing(t *testing.T) {
	b := startBus(t, "")
	m := startLogind(t, b)
	m.add("2", 1000, "user", "x11")
	startNM(t, b, 4, 2)
	fds := openFDs(t)
	ignore := goleak.IgnoreCurrent()
	for range 3 {
		l, err := NewLinux(context.Background(), Config{SystemBus: b.Addr})
		if err != nil {
			t.Fatal(err)
		}
		if l.routes == nil {
			t.Error("no rtnetlink socket with Root /")
		}
		for _, c := range []Condition{OnBattery, Network, InexpensiveNetwork, ScreenLocked, UserIdle, CPUPressure} {
			l.Read(context.Background(), c, 1000)
		}
		m.set("2", "IdleHint", true)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if f := l.Read(context.Background(), OnBattery, 0); f.Known || f.Why != "the sources are closed" {
			t.Errorf("Read after Close = %+v", f)
		}
	}
	goleak.VerifyNone(t, ignore)
	if n := openFDs(t); n != fds {
		t.Errorf("%d fds open after Close, %d before", n, fds)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestForgedSignalsIgnored: a client that sends logind's or
// NetworkManager's signals straight to xpcd's connection, or broadcasts
// them, does not signal Changed; only the names' owners do.
func TestForgedSignalsIgnored(t *testing.T) {
	b := startBus(t, "")
	m := startLogind(t, b)
	m.add("2", 1000, "user", "x11")
	startNM(t, b, 4, 2)
	l := newLinux(t, Config{Root: tree(t, nil), SystemBus: b.Addr})
	l.mu.Lock()
	me := l.bus.Names()[0]
	l.mu.Unlock()
	hostile := b.Connect(t)
	for _, sig := range []struct {
		path   dbus.ObjectPath
		member string
		body   []any
	}{
		{nmPath, propsIface + ".PropertiesChanged", []any{nmName, map[string]dbus.Variant{"Metered": dbus.MakeVariant(uint32(1))}, []string{}}},
		{sessionPath + "/_2", propsIface + ".PropertiesChanged", []any{login1 + ".Session", map[string]dbus.Variant{"IdleHint": dbus.MakeVariant(true)}, []string{}}},
		{login1Path, login1 + ".Manager.SessionNew", []any{"7", dbus.ObjectPath(sessionPath + "/_7")}},
	} {
		drain(l)
		iface, member := sig.member[:strings.LastIndex(sig.member, ".")], sig.member[strings.LastIndex(sig.member, ".")+1:]
		msg := &dbus.Message{Type: dbus.TypeSignal, Headers: map[dbus.HeaderField]dbus.Variant{
			dbus.FieldPath:        dbus.MakeVariant(sig.path),
			dbus.FieldInterface:   dbus.MakeVariant(iface),
			dbus.FieldMember:      dbus.MakeVariant(member),
			dbus.FieldDestination: dbus.MakeVariant(me),
			dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(sig.body...)),
		}, Body: sig.body}
		if call := hostile.Send(msg, nil); call.Err != nil {
			t.Fatal(call.Err)
		}
		if err := hostile.Emit(sig.path, sig.member, sig.body...); err != nil {
			t.Fatal(err)
		}
		// A round trip: the bus has passed the forged signals on.
		if err := hostile.BusObject().Call("org.freedesktop.DBus.GetId", 0).Err; err != nil {
			t.Fatal(err)
		}
		select {
		case <-l.Changed():
			t.Errorf("Changed after a forged %s", sig.member)
		case <-time.After(500 * time.Millisecond):
		}
	}
	m.set("2", "LockedHint", true)
	waitChanged(t, l, "the owner's signal")
}

// TestSilentBus: a bus socket that accepts and never answers holds
// NewLinux only until its context ends, by deadline or cancel.
func TestSilentBus(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "silent")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	for _, cancelled := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		if cancelled {
			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
		}
		start := time.Now()
		l, err := NewLinux(ctx, Config{Root: tree(t, nil), SystemBus: "unix:path=" + socket, Retry: time.Hour})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("cancelled %v: NewLinux took %v", cancelled, d)
		}
		want(t, l, UserIdle, 1000, false, false, "no system bus")
		l.Close()
	}
}
