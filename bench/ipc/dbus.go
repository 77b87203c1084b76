package ipc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// D-Bus: a private dbus-daemon, a server process that owns a name and
// exports a Ping method, and a client that calls it. Every call goes client
// → daemon → server → daemon → client.
const (
	dbusName  = "org.goxpc.Bench"
	dbusPath  = dbus.ObjectPath("/org/goxpc/Bench")
	dbusIface = "org.goxpc.Bench"
)

// busConfig is a session bus that listens on one socket path and lets
// anyone own any name and send anything: no policy work beyond the default.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// dbusDaemon is a private bus, started by the runner.
type dbusDaemon struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// dbusDaemonPath returns the dbus-daemon executable, or an error if there is
// none on PATH.
func dbusDaemonPath() (string, error) { return exec.LookPath("dbus-daemon") }

func startDBusDaemon(dir string, stderr io.Writer) (*dbusDaemon, error) {
	exe, err := dbusDaemonPath()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, filepath.Join(dir, "bus")), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "--config-file="+conf, "--nofork", "--print-address=1")
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &dbusDaemon{cmd: cmd, done: make(chan struct{})}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		for sc.Scan() {
		}
		cmd.Wait()
		close(d.done)
	}()
	select {
	case l, ok := <-line:
		if !ok || !strings.HasPrefix(l, "unix:") {
			d.stop()
			return nil, fmt.Errorf("dbus-daemon printed %q, not an address", l)
		}
		d.addr = strings.TrimSpace(l)
		return d, nil
	case <-time.After(10 * time.Second):
		d.stop()
		return nil, errors.New("dbus-daemon did not print its address")
	}
}

func (d *dbusDaemon) stop() {
	d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// dbusBench is the exported object.
type dbusBench struct{}

// Ping answers a ping: the method name becomes "pong", the rest comes back.
func (dbusBench) Ping(method string, seq int64, payload string) (string, int64, string, *dbus.Error) {
	return pongMethod, seq, payload, nil
}

func serveDBus(addr string) (*dbus.Conn, error) {
	conn, err := dbus.Connect(addr)
	if err != nil {
		return nil, err
	}
	if err := conn.Export(dbusBench{}, dbusPath, dbusIface); err != nil {
		conn.Close()
		return nil, err
	}
	r, err := conn.RequestName(dbusName, dbus.NameFlagDoNotQueue)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if r != dbus.RequestNameReplyPrimaryOwner {
		conn.Close()
		return nil, fmt.Errorf("dbus: name %s not acquired (%v)", dbusName, r)
	}
	return conn, nil
}

// dbusCaller is one bus connection; godbus lets concurrent callers share it.
type dbusCaller struct {
	conn *dbus.Conn
	obj  dbus.BusObject
}

func dialDBus(addr string) (*dbusCaller, error) {
	conn, err := dbus.Connect(addr)
	if err != nil {
		return nil, err
	}
	return &dbusCaller{conn: conn, obj: conn.Object(dbusName, dbusPath)}, nil
}

func (d *dbusCaller) call(ctx context.Context, seq int64) error {
	c := d.obj.CallWithContext(ctx, dbusIface+".Ping", 0, pingMethod, seq, payload)
	var m, p string
	var s int64
	if err := c.Store(&m, &s, &p); err != nil {
		return err
	}
	if s != seq {
		return fmt.Errorf("dbus: reply to %d carries seq %d", seq, s)
	}
	return nil
}

func (d *dbusCaller) close() error { return d.conn.Close() }
