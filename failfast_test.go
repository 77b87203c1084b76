package xpc

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// waitEndedFrame is a refusal that ends a client's wait (xpcd's
// internal/xpcd/failfast.go): reason, and retry if asked.
func waitEndedFrame(t *testing.T, reason, desc string, retry bool) []byte {
	t.Helper()
	eo := NewErrorObject(desc)
	eo.Set(bootstrap.KeyReason, String(reason))
	if retry {
		eo.Set(bootstrap.KeyRetry, Bool(true))
	}
	body, err := Encode(eo)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, wire.HeaderSize)
	wire.PutHeader(frame, wire.Header{Kind: wire.KindRefused})
	return append(frame, body...)
}

// TestLookupWaitEnded: a refusal of xpcd's that ends the wait (KeyRetry,
// or a code only such a refusal has) interrupts the connection with the
// reason, matching ErrLaunchFailed, and the next send looks the name up
// again. Without KeyRetry, not-found is still final.
func TestLookupWaitEnded(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	for _, tc := range []struct {
		reason string
		retry  bool
	}{
		{ReasonLaunchFailed, false},
		{ReasonThrottled, true},
		{ReasonDisabled, false},
		{ReasonExited, true},
		{ReasonNotFound, true},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			c, ends := lookedUp(t, selfRef(), nil)
			call := c.Go(ctx, Dict("n", Int64(1)))
			fd := <-ends
			waitReadable(t, fd)
			if _, err := unix.Write(fd, waitEndedFrame(t, tc.reason, "why it cannot start", tc.retry)); err != nil {
				t.Fatal(err)
			}
			closeRaw(fd)
			_, err := call.Wait(ctx)
			wantConnErr(t, err, ErrInterrupted, ErrLaunchFailed)
			var ce *ConnError
			if errors.Is(err, ErrInvalid) || errors.Is(err, ErrServiceNotFound) || !errors.As(err, &ce) ||
				ce.Reason.Code != tc.reason || ce.Reason.Description != "why it cannot start" {
				t.Fatalf("error %v: want an interruption with the reason", err)
			}
			// Usable: the next send looks the name up again.
			call = c.Go(ctx, Dict("n", Int64(2)))
			select {
			case fd := <-ends:
				closeRaw(fd)
			case <-time.After(10 * time.Second):
				t.Fatal("no second lookup")
			}
			if _, err := call.Wait(ctx); err == nil || errors.Is(err, ErrInvalid) {
				t.Fatalf("second send: %v", err)
			}
		})
	}
	t.Run("not-found without retry", func(t *testing.T) {
		c, ends := lookedUp(t, selfRef(), nil)
		call := c.Go(ctx, Dict("n", Int64(1)))
		fd := <-ends
		waitReadable(t, fd)
		unix.Write(fd, waitEndedFrame(t, ReasonNotFound, "no such service", false))
		closeRaw(fd)
		_, err := call.Wait(ctx)
		wantConnErr(t, err, ErrInvalid, ErrServiceNotFound)
		if errors.Is(err, ErrLaunchFailed) {
			t.Fatalf("%v matches ErrLaunchFailed", err)
		}
	})
	t.Run("forged", func(t *testing.T) {
		ref := selfRef()
		ref.pid++ // not us: we write the frame
		c, ends := lookedUp(t, ref, nil)
		call := c.Go(ctx, Dict("n", Int64(1)))
		fd := <-ends
		defer closeRaw(fd)
		waitReadable(t, fd)
		unix.Write(fd, waitEndedFrame(t, ReasonLaunchFailed, "forged", true))
		_, err := call.Wait(ctx)
		wantConnErr(t, err, ErrInvalid, ErrProtocol)
	})
}

// TestNoBootstrap: nothing listens on the bootstrap socket (no file, or a
// file nobody listens on): the send fails with ErrNoBootstrap, not
// ErrInterrupted, on one line naming the socket and the fix; the
// connection stays usable, and reaches xpcd once one listens.
func TestNoBootstrap(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "bootstrap.sock")
	c, err := NewServiceConnection("org.goxpc.test.nobody", WithBootstrapSocket(path))
	if err != nil {
		t.Fatal(err)
	}
	c.SetHandler(newTestHandler(nil))
	c.Activate()
	defer c.Cancel()
	check := func(err error) {
		t.Helper()
		if !errors.Is(err, ErrNoBootstrap) || errors.Is(err, ErrInterrupted) || errors.Is(err, ErrInvalid) {
			t.Fatalf("%v: want ErrNoBootstrap alone", err)
		}
		s := err.Error()
		want := "xpc: no xpcd is running: nothing listens on " + path + "; start xpcd --user, or systemctl --user start xpcd"
		if s != want {
			t.Fatalf("error text\n%q, want\n%q", s, want)
		}
		if c.Err() != nil {
			t.Fatalf("connection ended: %v", c.Err())
		}
	}
	_, err = c.SendWithReply(testCtx(t), Dict("n", Int64(1)))
	check(err)
	// Through a shared Bootstrap, the same.
	b, err := NewBootstrap(WithBootstrapSocket(path))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bc, err := NewServiceConnection("org.goxpc.test.nobody", WithBootstrap(b))
	if err != nil {
		t.Fatal(err)
	}
	bc.SetHandler(newTestHandler(nil))
	bc.Activate()
	defer bc.Cancel()
	_, err = bc.SendWithReply(testCtx(t), Dict("n", Int64(1)))
	check(err)
	// A socket file nobody listens on (xpcd died): ECONNREFUSED.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer closeRaw(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	_, err = c.SendWithReply(testCtx(t), Dict("n", Int64(2)))
	check(err)
	// Once something listens, the lookup goes out (nobody answers it
	// here: the call waits out its deadline).
	if err := unix.Listen(fd, 4); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = c.SendWithReply(ctx, Dict("n", Int64(3)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with a listener: %v, want the deadline", err)
	}
	// The system instance's socket: its own fix.
	e := unreachable([]string{bootstrap.System().Socket}, []error{unix.ENOENT})
	if !strings.HasSuffix(e.Error(), "; start xpcd --system as root, or systemctl start xpcd") {
		t.Errorf("system socket: %v", e)
	}
	// Another failure is still an interruption.
	if e := unreachable([]string{path}, []error{unix.EACCES}); !errors.Is(e, ErrInterrupted) || errors.Is(e, ErrNoBootstrap) {
		t.Errorf("EACCES: %v", e)
	}
}
