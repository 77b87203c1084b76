package criteria

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/goxpc/xpc/internal/dbustest"
)

// startBus starts a private dbus-daemon (dbustest.Start).
func startBus(t testing.TB, socket string) *dbustest.Bus { return dbustest.Start(t, socket) }

// fakeLogind is org.freedesktop.login1's Manager and sessions.
type fakeLogind struct {
	t     testing.TB
	conn  *dbus.Conn
	mu    sync.Mutex
	list  []session
	props map[string]*prop.Properties
	block chan struct{} // non-nil: ListSessions waits for it
}

// startLogind exports a fake logind on b.
func startLogind(t testing.TB, b *dbustest.Bus) *fakeLogind {
	t.Helper()
	m := &fakeLogind{t: t, conn: b.Connect(t), props: map[string]*prop.Properties{}}
	if err := m.conn.Export(m, login1Path, login1+".Manager"); err != nil {
		t.Fatal(err)
	}
	dbustest.Own(t, m.conn, login1)
	return m
}

// ListSessions is the Manager's method.
func (m *fakeLogind) ListSessions() ([]session, *dbus.Error) {
	m.mu.Lock()
	block := m.block
	list := append([]session(nil), m.list...)
	m.mu.Unlock()
	if block != nil {
		<-block
	}
	return list, nil
}

// add adds session id of uid, of class and type kind, and says so
// (SessionNew).
func (m *fakeLogind) add(id string, uid uint32, class, kind string) {
	m.t.Helper()
	path := dbus.ObjectPath(sessionPath + "/_" + id)
	p, err := prop.Export(m.conn, path, prop.Map{login1 + ".Session": {
		"Id":         {Value: id},
		"Class":      {Value: class},
		"Type":       {Value: kind},
		"IdleHint":   {Value: false, Emit: prop.EmitTrue},
		"LockedHint": {Value: false, Emit: prop.EmitTrue},
	}})
	if err != nil {
		m.t.Fatal(err)
	}
	m.mu.Lock()
	m.list = append(m.list, session{ID: id, UID: uid, User: fmt.Sprint("u", uid), Seat: "seat0", Path: path})
	m.props[id] = p
	m.mu.Unlock()
	if err := m.conn.Emit(login1Path, login1+".Manager.SessionNew", id, path); err != nil {
		m.t.Fatal(err)
	}
}

// remove removes session id and says so (SessionRemoved).
func (m *fakeLogind) remove(id string) {
	m.mu.Lock()
	for i, s := range m.list {
		if s.ID == id {
			m.list = append(m.list[:i], m.list[i+1:]...)
			m.conn.Export(nil, s.Path, propsIface)
			if err := m.conn.Emit(login1Path, login1+".Manager.SessionRemoved", id, s.Path); err != nil {
				m.t.Error(err)
			}
			break
		}
	}
	m.mu.Unlock()
}

// addGhost lists session id of uid with no object, as a session that
// ends between ListSessions and reading it.
func (m *fakeLogind) addGhost(id string, uid uint32) {
	m.t.Helper()
	path := dbus.ObjectPath(sessionPath + "/_" + id)
	if err := m.conn.Export(ghost{}, path, propsIface); err != nil {
		m.t.Fatal(err)
	}
	m.mu.Lock()
	m.list = append(m.list, session{ID: id, UID: uid, Path: path})
	m.mu.Unlock()
}

// ghost answers as logind (sd-bus) does for a session that is gone.
type ghost struct{}

func (ghost) GetAll(string) (map[string]dbus.Variant, *dbus.Error) {
	return nil, dbus.NewError("org.freedesktop.DBus.Error.UnknownObject", []any{"Unknown object"})
}

// set sets a session's hint ("IdleHint", "LockedHint").
func (m *fakeLogind) set(id, hint string, v bool) {
	m.mu.Lock()
	p := m.props[id]
	m.mu.Unlock()
	p.SetMust(login1+".Session", hint, v)
}

// fakeNM is org.freedesktop.NetworkManager's Connectivity and Metered.
type fakeNM struct {
	conn  *dbus.Conn
	props *prop.Properties
}

// startNM exports a fake NetworkManager on b.
func startNM(t testing.TB, b *dbustest.Bus, connectivity, metered uint32) *fakeNM {
	t.Helper()
	n := &fakeNM{conn: b.Connect(t)}
	var err error
	n.props, err = prop.Export(n.conn, nmPath, prop.Map{nmName: {
		"Connectivity": {Value: connectivity, Emit: prop.EmitTrue},
		"Metered":      {Value: metered, Emit: prop.EmitTrue},
	}})
	if err != nil {
		t.Fatal(err)
	}
	dbustest.Own(t, n.conn, nmName)
	return n
}

func (n *fakeNM) set(name string, v uint32) { n.props.SetMust(nmName, name, v) }

// drain empties Changed.
func drain(l *Linux) {
	select {
	case <-l.Changed():
	default:
	}
}

// waitChanged waits for Changed.
func waitChanged(t testing.TB, l *Linux, what string) {
	t.Helper()
	select {
	case <-l.Changed():
	case <-time.After(10 * time.Second):
		t.Fatalf("no Changed after %s", what)
	}
}

// want checks what Read answers.
func want(t testing.TB, l *Linux, c Condition, uid uint32, known, value bool, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := l.Read(ctx, c, uid)
	if f.Known != known || f.Known && f.Value != value || !strings.Contains(f.Why, why) {
		t.Errorf("Read(%s, %d) = %+v, want known %v value %v why containing %q", c, int64(uid)&0xffffffff, f, known, value, why)
	}
}
