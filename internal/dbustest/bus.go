package dbustest

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/godbus/dbus/v5"
)

// config is a dbus-daemon configuration that listens on a socket in a
// test's directory and allows everything.
const config = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=%s</listen>%s
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// Bus is a private dbus-daemon.
type Bus struct {
	// Addr is the bus's address ("unix:path=...,guid=...").
	Addr string
	// Socket is the path of the bus's socket.
	Socket string
	cmd    *exec.Cmd
	stop   chan struct{} // closed by Stop: the daemon's thread may go
}

// Start starts a private dbus-daemon listening on socket (a new one in a
// temporary directory when ""), stopped at the test's end. It skips the
// test when dbus-daemon is not installed.
func Start(t testing.TB, socket string) *Bus {
	t.Helper()
	return start(t, socket, "")
}

// StartServices starts a private dbus-daemon, as Start does, that can
// activate the services of the D-Bus .service files in dir.
func StartServices(t testing.TB, dir string) *Bus {
	t.Helper()
	var esc strings.Builder
	if err := xml.EscapeText(&esc, []byte(dir)); err != nil {
		t.Fatal(err)
	}
	return start(t, "", "\n  <servicedir>"+esc.String()+"</servicedir>")
}

// start starts a dbus-daemon listening on socket, with extra in its
// configuration.
func start(t testing.TB, socket, extra string) *Bus {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("no dbus-daemon:", err)
	}
	dir := t.TempDir()
	if socket == "" {
		socket = filepath.Join(dir, "bus")
	}
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, config, socket, extra), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &Bus{Socket: socket, cmd: exec.Command("dbus-daemon", "--config-file="+conf, "--print-address", "--nofork")}
	// A test binary killed (a timeout) takes its daemon with it.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Pdeathsig is sent when the thread that started the daemon ends, not
	// the process: the daemon is started from a thread kept for it until
	// Stop, since Go ends a thread a goroutine leaves locked (as one that
	// takes another user's identity does).
	started := make(chan error)
	b.stop = make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		started <- b.cmd.Start()
		<-b.stop
	}()
	if err := <-started; err != nil {
		close(b.stop)
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon's address: %v", err)
	}
	b.Addr = strings.TrimSpace(line)
	return b
}

// Stop ends the daemon, once; connections to it see the bus go.
func (b *Bus) Stop() {
	if b.cmd.ProcessState == nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
		os.Remove(b.Socket)
		close(b.stop)
	}
}

// Connect returns a connection to b, closed at the test's end.
func (b *Bus) Connect(t testing.TB) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Own makes conn the owner of name.
func Own(t testing.TB, conn *dbus.Conn, name string) {
	t.Helper()
	reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName(%s) = %v, %v", name, reply, err)
	}
}
