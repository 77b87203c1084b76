package xpcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/wire"
)

// newSystemHarness is a harness with the system layout (socket 0666, its
// directories traversable), so that other uids can connect.
func newSystemHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.paths = bootstrap.ForRoot(h.dir, false)
	h.cfg.Paths = h.paths
	for _, d := range []string{h.dir, h.paths.Daemons, h.paths.Agents} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// knownUIDs makes every uid count as one with an account, as the limits
// tests' made-up uids would on a machine that has them (buckets.go).
func knownUIDs(h *harness) {
	h.d.sup.buckets.setLookup(func(uint32) bool { return true })
}

// dialAs opens a bootstrap connection whose kernel-attested uid is uid:
// the connect is made on a thread of its own whose effective uid is set to
// uid (that thread alone; it ends with its goroutine). It fails the test
// unless the process is root.
func dialAs(t *testing.T, h *harness, uid uint32) *xpc.Connection {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to connect as other uids")
	}
	type result struct {
		c   *xpc.Connection
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, with its changed credentials,
		// ends with this goroutine.
		runtime.LockOSThread()
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
			ch <- result{err: fmt.Errorf("setresuid: %w", e)}
			return
		}
		c, err := xpc.DialUnix(testCtx(t), h.paths.Socket)
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	r.c.Activate()
	t.Cleanup(r.c.Cancel)
	return r.c
}

// ask sends a request xpcd answers with an error of its own (an unknown
// op): getting that answer shows the connection was admitted.
func ask(t *testing.T, c *xpc.Connection) error {
	t.Helper()
	_, err := c.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, "no-such-op"))
	var re *xpc.RemoteError
	if errors.As(err, &re) {
		return nil
	}
	if err == nil {
		return errors.New("an unknown op was answered")
	}
	return err
}

// A uid may have at most MaxConnectionsPerUser bootstrap connections: the
// next is turned away with reason too-many-connections, naming the rule
// and the numbers, while other users and root are still served, and the
// user is served again once one of theirs has closed.
func TestConnectionCapPerUser(t *testing.T) {
	const limit = 4
	const uidA, uidB = 1001, 1002
	h := newSystemHarness(t)
	h.cfg.MaxConnectionsPerUser = limit
	h.start()
	knownUIDs(h)

	var mine []*xpc.Connection
	for i := range limit {
		c := dialAs(t, h, uidA)
		if err := ask(t, c); err != nil {
			t.Fatalf("connection %d of uid %d: %v", i+1, uidA, err)
		}
		mine = append(mine, c)
	}
	err := ask(t, dialAs(t, h, uidA))
	if err == nil || !errors.Is(err, xpc.ErrInvalid) || !errors.Is(err, xpc.ErrDenied) {
		t.Fatalf("connection %d of uid %d: %v; want ErrInvalid and ErrDenied", limit+1, uidA, err)
	}
	want := fmt.Sprintf("uid %d has %d connections to xpcd, the limit (--max-connections-per-user)", uidA, limit)
	for _, s := range []string{want, bootstrap.ReasonTooManyConnections} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("refusal %q does not say %q", err, s)
		}
	}

	// Others are served meanwhile: another user, and root beyond the cap.
	if err := ask(t, dialAs(t, h, uidB)); err != nil {
		t.Errorf("uid %d while uid %d is at the cap: %v", uidB, uidA, err)
	}
	for i := range limit + 2 {
		if err := ask(t, h.dial(nil)); err != nil {
			t.Fatalf("root's connection %d: %v", i+1, err)
		}
	}

	// The count goes down as a connection ends: one closes, one more
	// is let in, and only one.
	mine[0].Cancel()
	<-mine[0].Done()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := ask(t, dialAs(t, h, uidA))
		if err == nil {
			break
		}
		if !errors.Is(err, xpc.ErrDenied) || time.Now().After(deadline) {
			t.Fatalf("uid %d after closing a connection: %v", uidA, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := ask(t, dialAs(t, h, uidA)); !errors.Is(err, xpc.ErrDenied) {
		t.Errorf("uid %d at the cap again: %v; want ErrDenied", uidA, err)
	}
}

// TestConnectionCapWithBootstrap: a service lookup through an
// xpc.Bootstrap made by a user at the cap fails with the typed refusal.
func TestConnectionCapWithBootstrap(t *testing.T) {
	h := newSystemHarness(t)
	h.cfg.MaxConnectionsPerUser = 1
	h.start()
	knownUIDs(h)
	const uid = 1001
	if err := ask(t, dialAs(t, h, uid)); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see dialAs
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uid, ^uintptr(0)); e != 0 {
			errc <- e
			return
		}
		b, err := xpc.NewBootstrap(xpc.WithBootstrapSocket(h.paths.Socket))
		if err != nil {
			errc <- err
			return
		}
		defer b.Close()
		c, err := xpc.NewServiceConnection("com.example.any", xpc.WithBootstrap(b))
		if err != nil {
			errc <- err
			return
		}
		defer c.Cancel()
		c.Activate()
		_, err = c.SendWithReply(testCtx(t), xpc.Dict("cmd", "ping"))
		errc <- err
	}()
	err := <-errc
	if !errors.Is(err, xpc.ErrDenied) || !strings.Contains(err.Error(), bootstrap.ReasonTooManyConnections) {
		t.Fatalf("lookup at the cap: %v; want ErrDenied, %s", err, bootstrap.ReasonTooManyConnections)
	}
}

// sendOutOfLine connects to xpcd and sends, as a request, a sealed memfd
// of size bytes whose start is head (the rest zeros), then reads until
// xpcd ends the connection or replies. It reports whether a reply came.
func sendOutOfLine(t *testing.T, h *harness, head []byte, size int64) (replied bool) {
	t.Helper()
	mfd, err := unix.MemfdCreate("big-request", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(mfd)
	if err := unix.Ftruncate(mfd, size); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Pwrite(mfd, head, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(uintptr(mfd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: h.paths.Socket}); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, wire.HeaderSize)
	wire.PutHeader(frame, wire.Header{Kind: wire.KindRequest, Flags: wire.FlagOutOfLine, NFDs: 1, ID: 1})
	if err := unix.Sendmsg(fd, frame, unix.UnixRights(mfd), nil, 0); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(testTimeout))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		n, _, _, _, err := unix.Recvmsg(fd, buf, nil, 0)
		if err == unix.ECONNRESET {
			continue
		}
		if err != nil {
			t.Fatalf("reading xpcd's answer: %v", err)
		}
		if n == 0 {
			return false // xpcd cut the connection
		}
		if h, err := wire.ParseHeader(buf[:n]); err == nil && h.Kind == wire.KindReply {
			return true
		}
	}
}

// The bootstrap socket accepts requests of at most 64 KiB: a 1 MiB request
// and a 60 MiB zero-filled memfd are refused from the memfd's size, before
// xpcd reads them, so its heap does not grow by their sizes; xpcd goes on
// serving.
func TestBootstrapMessageLimit(t *testing.T) {
	h := newHarness(t)
	h.start()
	if err := ask(t, h.dial(nil)); err != nil {
		t.Fatal(err)
	}
	// A well-formed request, 1 MiB with its padding.
	req, err := xpc.Encode(xpc.Dict(bootstrap.KeyOp, bootstrap.OpList, "pad", xpc.Data(make([]byte, 1<<20))))
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	if sendOutOfLine(t, h, req, int64(len(req))) {
		t.Error("a 1 MiB request was answered")
	}
	if sendOutOfLine(t, h, nil, 60<<20) {
		t.Error("a 60 MiB zero-filled memfd was answered")
	}

	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("while refusing 61 MiB of requests: %d KiB allocated, heap in use %+d KiB", allocated>>10, grown>>10)
	if allocated > 8<<20 {
		t.Errorf("xpcd allocated %d KiB while refusing them: it read them", allocated>>10)
	}
	if grown > 8<<20 {
		t.Errorf("heap in use grew by %d KiB", grown>>10)
	}
	if !strings.Contains(h.logs.String(), "exceeds the limit of 65536") {
		t.Error("xpcd's log does not say why it cut the clients off")
	}
	if err := ask(t, h.dial(nil)); err != nil {
		t.Fatalf("after the large requests: %v", err)
	}
}
