package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// shortTempDir is a temporary directory with a path short enough for a
// socket's.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "xpcd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// listenNotify is a notification socket as systemd's (NOTIFY_SOCKET).
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

// boundSocket is a socket of type typ bound to path (mode 0600), listening
// if listen, as systemd passes it.
func boundSocket(t *testing.T, path string, typ int, listen bool) *os.File {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "bootstrap.sock")
	t.Cleanup(func() { f.Close() })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if listen {
		if err := unix.Listen(fd, 64); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// asXpcd returns the test binary run as xpcd with args, socket passed as
// descriptor 3 with LISTEN_FDS=1 and LISTEN_PID its own pid (set by a
// shell that then execs it), as systemd's socket activation does. It is
// killed after asXpcdTimeout: an xpcd that serves where it should refuse
// fails the test instead of hanging it (and outliving it).
func asXpcd(t *testing.T, socket *os.File, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), asXpcdTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, exe}, args...)...)
	cmd.Env = append(os.Environ(), "XPCD_TEST_AS_XPCD=1", "LISTEN_FDS=1")
	cmd.Env = append(cmd.Env, env...)
	cmd.ExtraFiles = []*os.File{socket}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr
}

// asXpcdTimeout bounds an xpcd asXpcd runs.
const asXpcdTimeout = 30 * time.Second

// Under systemd's socket activation xpcd serves the socket it is passed:
// it says it is ready, answers through that socket, pings the watchdog
// at half WATCHDOG_USEC, says it is stopping on SIGTERM, and leaves the
// socket where it was, still listening.
func TestSocketActivation(t *testing.T) {
	dir := shortTempDir(t)
	paths := bootstrap.ForRoot(dir, true)
	sock := boundSocket(t, paths.Socket, unix.SOCK_SEQPACKET, true)
	n := listenNotify(t, filepath.Join(dir, "notify"))
	const interval = 400 * time.Millisecond
	cmd, stderr := asXpcd(t, sock, []string{"NOTIFY_SOCKET=" + filepath.Join(dir, "notify"),
		"WATCHDOG_USEC=" + "400000"}, "--user", "--root", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if got := readNotify(t, n); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("first notification %q\n%s", got, stderr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := xpc.DialUnix(ctx, paths.Socket)
	if err != nil {
		t.Fatal(err)
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	r, err := c.SendWithReply(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpList))
	c.Cancel()
	if err != nil || r == nil {
		t.Fatalf("list through the passed socket: %v\n%s", err, stderr)
	}

	start := time.Now()
	for i := range 4 {
		if got := readNotify(t, n); got != "WATCHDOG=1" {
			t.Fatalf("notification %d: %q, want WATCHDOG=1", i, got)
		}
	}
	// Four pings at half the interval take about 1.5 intervals after
	// the first: far less than 10 intervals, and more than one.
	if took := time.Since(start); took > 10*interval || took < interval {
		t.Errorf("four pings took %v with WATCHDOG_USEC %v", took, interval)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	for {
		got := readNotify(t, n)
		if got == "STOPPING=1" {
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("notification %q, want STOPPING=1", got)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("xpcd: %v\n%s", err, stderr)
	}
	if st, err := os.Stat(paths.Socket); err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("the passed socket after xpcd stopped: %v", err)
	}
	conn, err := net.Dial("unixpacket", paths.Socket)
	if err != nil {
		t.Fatalf("the passed socket no longer listens: %v", err)
	}
	conn.Close()
	n.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := n.Read(make([]byte, 64)); err == nil {
		t.Error("a notification after STOPPING=1")
	}
}

// A passed socket of the wrong type is refused with exit status 1 and an
// error that says what it is; xpcd leaves it where it was.
func TestSocketActivationRefused(t *testing.T) {
	dir := shortTempDir(t)
	paths := bootstrap.ForRoot(dir, true)
	sock := boundSocket(t, paths.Socket, unix.SOCK_STREAM, true)
	cmd, stderr := asXpcd(t, sock, nil, "--user", "--root", dir)
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFail {
		t.Fatalf("xpcd: %v, want exit status %d\n%s", err, exitFail, stderr)
	}
	if !strings.Contains(stderr.String(), "SOCK_STREAM, not SOCK_SEQPACKET") {
		t.Errorf("stderr does not say what was wrong:\n%s", stderr)
	}
	if _, err := os.Stat(paths.Socket); err != nil {
		t.Errorf("the passed socket was removed: %v", err)
	}
}

// --system is refused to a user other than root (without --root), with
// exit status 1, before anything is made.
func TestSystemNeedsRoot(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		// Run as nobody a copy the user can reach.
		dir := shortTempDir(t)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		exe = filepath.Join(dir, "xpcd")
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("root, and no setpriv to become another user")
		}
		cmd = exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", exe, "--system")
	} else {
		cmd = exec.Command(exe, "--system")
	}
	cmd.Env = []string{"XPCD_TEST_AS_XPCD=1", "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFail || !strings.Contains(string(out), "needs root") {
		t.Errorf("xpcd --system as a user: %v\n%s", err, out)
	}
}

// A watchdog meant for another process (WATCHDOG_PID), or none, gets no
// pings, and a malformed WATCHDOG_USEC none either.
func TestWatchdogNotOurs(t *testing.T) {
	dir := shortTempDir(t)
	n := listenNotify(t, filepath.Join(dir, "notify"))
	t.Setenv("NOTIFY_SOCKET", filepath.Join(dir, "notify"))
	log := slog.New(slog.DiscardHandler)
	for _, env := range [][2]string{{"100000", "1"}, {"", ""}, {"soon", ""}} {
		t.Setenv("WATCHDOG_USEC", env[0])
		t.Setenv("WATCHDOG_PID", env[1])
		// With a watchdog to ping, the nil daemon would be probed.
		startWatchdog(nil, log)()
	}
	n.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	b := make([]byte, 64)
	if k, err := n.Read(b); err == nil {
		t.Errorf("notification %q", b[:k])
	}
}

// A tiny WATCHDOG_USEC does not turn the pings into a busy loop.
func TestPingPeriod(t *testing.T) {
	for _, c := range []struct{ interval, want time.Duration }{
		{time.Second, 500 * time.Millisecond},
		{time.Microsecond, minPing},
		{2 * minPing, minPing},
	} {
		if got := pingPeriod(c.interval); got != c.want {
			t.Errorf("pingPeriod(%v) = %v, want %v", c.interval, got, c.want)
		}
	}
}

// The watchdog is pinged only while the supervisor loop answers: a loop
// stuck in a step gets no pings (so systemd restarts xpcd), and the pings
// come back when it goes on.
func TestWatchdogStuckLoop(t *testing.T) {
	dir := shortTempDir(t)
	n := listenNotify(t, filepath.Join(dir, "notify"))
	t.Setenv("NOTIFY_SOCKET", filepath.Join(dir, "notify"))
	var stuck atomic.Bool
	alive := func(ctx context.Context) error {
		if stuck.Load() {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&syncWriter{w: &logged}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { watchdog(ctx, alive, 20*time.Millisecond, log); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	for i := range 3 {
		if got := readNotify(t, n); got != "WATCHDOG=1" {
			t.Fatalf("notification %d: %q, want WATCHDOG=1", i, got)
		}
	}
	stuck.Store(true)
	// A ping that was on its way when the loop stuck may still come.
	n.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	for {
		if _, err := n.Read(make([]byte, 64)); err != nil {
			break
		}
	}
	n.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if k, err := n.Read(make([]byte, 64)); err == nil {
		t.Fatalf("a ping while the loop is stuck (%d bytes)", k)
	}
	stuck.Store(false)
	if got := readNotify(t, n); got != "WATCHDOG=1" {
		t.Fatalf("after the loop went on: %q, want WATCHDOG=1", got)
	}
	cancel()
	<-done
	if !strings.Contains(logged.String(), "watchdog: no ping") {
		t.Errorf("no error logged for a stuck loop:\n%s", logged.String())
	}
}

// syncWriter serializes writes to w for a logger used by a goroutine.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
