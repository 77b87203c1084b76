package login1test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/goxpc/xpc/internal/dbustest"
	"github.com/goxpc/xpc/internal/login1"
)

// User is an entry of ListUsers' answer, (uso).
type User struct {
	UID  uint32
	Name string
	Path dbus.ObjectPath
}

// Logind is a fake logind's manager.
type Logind struct {
	// Conn is its connection; closing it takes it off the bus.
	Conn *dbus.Conn

	mu    sync.Mutex
	uids  []uint32
	calls int
}

// Start exports a fake logind on b with the users uids.
func Start(t testing.TB, b *dbustest.Bus, uids ...uint32) *Logind {
	t.Helper()
	l := &Logind{Conn: b.Connect(t), uids: slices.Clone(uids)}
	if err := l.Conn.Export(l, login1.Path, login1.Interface); err != nil {
		t.Fatal(err)
	}
	dbustest.Own(t, l.Conn, login1.BusName)
	return l
}

// ListUsers is the manager's method.
func (l *Logind) ListUsers() ([]User, *dbus.Error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	out := make([]User, 0, len(l.uids))
	for _, u := range l.uids {
		out = append(out, User{UID: u, Name: fmt.Sprint("user", u), Path: dbus.ObjectPath(fmt.Sprintf("%s/user/_%d", login1.Path, u))})
	}
	return out, nil
}

// Calls is how many times ListUsers was called.
func (l *Logind) Calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

// Login adds uid to the users and sends UserNew, as logind does when a
// user's first session starts.
func (l *Logind) Login(t testing.TB, uid uint32) {
	t.Helper()
	l.mu.Lock()
	if !slices.Contains(l.uids, uid) {
		l.uids = append(l.uids, uid)
	}
	l.mu.Unlock()
	if err := SendUserNew(l.Conn, uid); err != nil {
		t.Fatal(err)
	}
}

// SendUserNew sends UserNew(uid) from conn, which need not be logind's:
// anyone on a bus may send it.
func SendUserNew(conn *dbus.Conn, uid uint32) error {
	return conn.Emit(login1.Path, login1.Interface+".UserNew", uid, dbus.ObjectPath(fmt.Sprintf("%s/user/_%d", login1.Path, uid)))
}
