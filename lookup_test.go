package xpc

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// refusalFrame is what xpcd writes into the service end of a pipelined
// lookup it cannot serve (internal/xpcd/refuse.go).
func refusalFrame(t *testing.T, reason, desc string) []byte {
	t.Helper()
	eo := NewErrorObject(desc)
	eo.Set(bootstrap.KeyReason, String(reason))
	body, err := Encode(eo)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, wire.HeaderSize)
	wire.PutHeader(frame, wire.Header{Kind: wire.KindRefused})
	return append(frame, body...)
}

// lookedUp returns a connection that dials as a pipelined lookup does: the
// client end of a fresh socket pair, stamping on, the lookup made (as far
// as the link knows) to the process ref names. The other end goes to
// atDial, which owns it, if given; otherwise to the test through ends, one
// per dial.
func lookedUp(t *testing.T, ref lookupRef, atDial func(theirs int)) (*Connection, <-chan int) {
	t.Helper()
	cfg, err := newConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	ends := make(chan int, 4)
	c := newConnection(cfg)
	c.reconnect = true
	c.dial = func(ctx context.Context) (linkEnd, error) {
		mine, theirs, err := sock.Pair()
		if err != nil {
			return linkEnd{}, err
		}
		if err := sock.SetPassCred(mine, true); err != nil {
			closeRaw(mine)
			closeRaw(theirs)
			return linkEnd{}, err
		}
		s, err := sock.New(mine, "test-lookup")
		if err != nil {
			closeRaw(theirs)
			return linkEnd{}, err
		}
		r := ref
		if atDial != nil {
			atDial(theirs)
		} else {
			ends <- theirs
		}
		return linkEnd{s: s, lookup: &r}, nil
	}
	c.SetHandler(newTestHandler(nil))
	c.Activate()
	t.Cleanup(func() {
		c.Cancel()
		waitClosed(t, c.Done(), "connection")
		for {
			select {
			case fd := <-ends:
				closeRaw(fd)
			default:
				return
			}
		}
	})
	return c, ends
}

func selfRef() lookupRef {
	return lookupRef{name: "org.goxpc.test.refused", pid: int32(os.Getpid()), uid: uint32(os.Getuid())}
}

// waitReadable waits until fd has a frame to read.
func waitReadable(t *testing.T, fd int) {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 10_000); err != nil || n != 1 {
		t.Fatalf("poll: %d, %v", n, err)
	}
}

// TestLookupRefused: xpcd refuses a lookup by writing a refused frame into
// the service end and closing it. The client's call fails with xpcd's
// reason, as invalid (never interrupted): whether the refusal came before
// the client's first send (which then fails with EPIPE), or after it, with
// the client's request unread (the kernel reports ECONNRESET ahead of the
// refusal).
func TestLookupRefused(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	check := func(t *testing.T, err error) {
		t.Helper()
		wantConnErr(t, err, ErrInvalid, ErrServiceNotFound)
		if errors.Is(err, ErrInterrupted) {
			t.Fatalf("refusal reported as an interruption: %v", err)
		}
	}
	t.Run("before the first send", func(t *testing.T) {
		c, ends := lookedUp(t, selfRef(), nil)
		go func() {
			// The dial happens inside SendWithReply; refuse at once.
			fd := <-ends
			unix.Write(fd, refusalFrame(t, bootstrap.ReasonNotFound, "no service named org.goxpc.test.refused"))
			closeRaw(fd)
		}()
		_, err := c.SendWithReply(ctx, Dict("n", Int64(1)))
		check(t, err)
	})
	t.Run("before the first send, deterministic", func(t *testing.T) {
		// The dial answers with an end refused and closed already.
		c, _ := lookedUp(t, selfRef(), func(theirs int) {
			unix.Write(theirs, refusalFrame(t, bootstrap.ReasonNotFound, "no service named org.goxpc.test.refused"))
			closeRaw(theirs)
		})
		_, err := c.SendWithReply(ctx, Dict("n", Int64(1)))
		check(t, err)
	})
	t.Run("after the first send", func(t *testing.T) {
		c, ends := lookedUp(t, selfRef(), nil)
		call := c.Go(ctx, Dict("n", Int64(1)))
		fd := <-ends
		waitReadable(t, fd) // the request is queued, unread
		if _, err := unix.Write(fd, refusalFrame(t, bootstrap.ReasonNotFound, "no service named org.goxpc.test.refused")); err != nil {
			t.Fatal(err)
		}
		closeRaw(fd)
		_, err := call.Wait(ctx)
		check(t, err)
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a refused connection did not end")
		}
	})
}

// TestLookupRefusalFromAnother: a refused frame stamped with any identity
// but that of the xpcd the lookup went to is a protocol error, not the
// refusal it claims to be.
func TestLookupRefusalFromAnother(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	ref := selfRef()
	ref.pid++ // not us: we write the frame
	c, ends := lookedUp(t, ref, nil)
	call := c.Go(ctx, Dict("n", Int64(1)))
	fd := <-ends
	defer closeRaw(fd)
	waitReadable(t, fd)
	if _, err := unix.Write(fd, refusalFrame(t, bootstrap.ReasonDenied, "forged")); err != nil {
		t.Fatal(err)
	}
	_, err := call.Wait(ctx)
	wantConnErr(t, err, ErrInvalid, ErrProtocol)
	if errors.Is(err, ErrDenied) {
		t.Fatalf("forged refusal believed: %v", err)
	}
}

// TestLookupPipelined: a lookup does not wait for xpcd. The client's first
// request is already in the service end when xpcd reads the lookup, and
// xpcd sends nothing back on success.
func TestLookupPipelined(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	f := newFakeXPCD(t, make(chan *FD, 1))
	c, err := NewServiceConnection("org.goxpc.test.pipelined", WithBootstrapSocket(f.path))
	if err != nil {
		t.Fatal(err)
	}
	c.Activate()
	defer func() { c.Cancel(); waitClosed(t, c.Done(), "service connection") }()
	call := c.Go(ctx, Dict("n", Int64(3)))
	var end *FD
	select {
	case end = <-f.hold:
	case <-ctx.Done():
		t.Fatal("no lookup reached the fake xpcd")
	}
	// xpcd has not answered, nor handed the end to a service: the
	// request must be there already.
	rc, err := end.File().SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { waitReadable(t, int(fd)) })
	s, err := NewConnectionFromFile(end.File())
	end.Close()
	if err != nil {
		t.Fatal(err)
	}
	s.SetHandler(HandlerFunc(echo))
	s.Activate()
	defer func() { s.Cancel(); waitClosed(t, s.Done(), "service") }()
	r, err := call.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if mustInt64(t, r, "n") != 3 {
		t.Fatalf("reply %v", r)
	}
}

// TestListenerReadsClientThatLeft: a client that connects to a listener,
// sends and closes before the listener has accepted it still has its
// message handled (a pipelined lookup to xpcd is such a client): the
// listener's hello fails with EPIPE and the first read with ECONNRESET,
// neither of which ends the connection before what was sent is read.
func TestListenerReadsClientThatLeft(t *testing.T) {
	leakCheck(t)
	path := t.TempDir() + "/l.sock"
	l, err := ListenUnix(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int64, 1)
	l.SetHandler(func(p *Connection) {
		p.SetHandler(HandlerFunc(func(ctx context.Context, m *Message) {
			n, _ := m.Body.Int64("n")
			got <- n
		}))
		p.Activate()
	})
	defer func() { l.Cancel(); waitClosed(t, l.Done(), "listener") }()
	var w writer
	frame, fds, err := buildFrame(&w, wire.KindMessage, 0, Dict("n", Int64(42)), DefaultMaxSize, 8)
	if err != nil {
		t.Fatal(err)
	}
	// Connected, sent and gone before the listener accepts.
	if _, err := sendFrameTo(testCtx(t), path, "", frame, fds); err != nil {
		t.Fatal(err)
	}
	l.Activate()
	select {
	case n := <-got:
		if n != 42 {
			t.Fatalf("got %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the message of a client that left was never handled")
	}
	for _, p := range l.Peers() {
		p.Cancel()
		waitClosed(t, p.Done(), "peer")
	}
}

// TestBuildFrameAllocs: encoding a message with no out-of-band objects into
// a writer that has its buffer already allocates nothing: this is every
// request and reply.
func TestBuildFrameAllocs(t *testing.T) {
	d := Dict("op", "ping", "seq", Int64(7), "payload", []byte("0123456789"))
	var w writer
	if _, _, err := buildFrame(&w, wire.KindRequest, 1, d, DefaultMaxSize, 8); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() {
		frame, fds, err := buildFrame(&w, wire.KindRequest, 1, d, DefaultMaxSize, 8)
		if err != nil || fds != nil || len(frame) <= wire.HeaderSize {
			t.Fatalf("frame %d bytes, fds %v, %v", len(frame), fds, err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per frame, want 0", n)
	}
}
