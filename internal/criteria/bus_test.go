package criteria

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// busConfig is a dbus-daemon configuration that listens on a socket in a
// test's directory and allows everything.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// testBus is a private dbus-daemon.
type testBus struct {
	addr, socket string
	cmd          *exec.Cmd
}

// startBus starts a private dbus-daemon listening on socket (a new one in
// a temporary directory when ""), stopped at the test's end.
func startBus(t testing.TB, socket string) *testBus {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("no dbus-daemon:", err)
	}
	dir := t.TempDir()
	if socket == "" {
		socket = filepath.Join(dir, "bus")
	}
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, socket), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &testBus{socket: socket, cmd: exec.Command("dbus-daemon", "--config-file="+conf, "--print-address", "--nofork")}
	// A test binary killed (a timeout) takes its daemon with it.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stop)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon's address: %v", err)
	}
	b.addr = strings.TrimSpace(line)
	return b
}

// stop ends the daemon, once.
func (b *testBus) stop() {
	if b.cmd.ProcessState == nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
		os.Remove(b.socket)
	}
}

// connect returns a connection to b, closed at the test's end.
func (b *testBus) connect(t testing.TB) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(b.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// own makes conn the owner of name.
func own(t testing.TB, conn *dbus.Conn, name string) {
	t.Helper()
	reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName(%s) = %v, %v", name, reply, err)
	}
}

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
func startLogind(t testing.TB, b *testBus) *fakeLogind {
	t.Helper()
	m := &fakeLogind{t: t, conn: b.connect(t), props: map[string]*prop.Properties{}}
	if err := m.conn.Export(m, login1Path, login1+".Manager"); err != nil {
		t.Fatal(err)
	}
	own(t, m.conn, login1)
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
func startNM(t testing.TB, b *testBus, connectivity, metered uint32) *fakeNM {
	t.Helper()
	n := &fakeNM{conn: b.connect(t)}
	var err error
	n.props, err = prop.Export(n.conn, nmPath, prop.Map{nmName: {
		"Connectivity": {Value: connectivity, Emit: prop.EmitTrue},
		"Metered":      {Value: metered, Emit: prop.EmitTrue},
	}})
	if err != nil {
		t.Fatal(err)
	}
	own(t, n.conn, nmName)
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
