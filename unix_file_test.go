package xpc

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// bindSocket makes a socket of type typ bound to a path in a temporary
// directory, listening if listen.
func bindSocket(t *testing.T, typ int, listen bool) (*os.File, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "goxpc-file-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s.sock")
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "passed")
	t.Cleanup(func() { f.Close() })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if listen {
		if err := unix.Listen(fd, 8); err != nil {
			t.Fatal(err)
		}
	}
	return f, path
}

// A listener on a socket someone else bound serves it like ListenUnix's,
// and leaves its path when it stops; the caller's descriptor still
// listens.
func TestNewListenerFromFile(t *testing.T) {
	f, path := bindSocket(t, unix.SOCK_SEQPACKET, true)
	l, err := NewListenerFromFile(f)
	if err != nil {
		t.Fatal(err)
	}
	l.SetHandler(func(peer *Connection) {
		peer.SetHandler(HandlerFunc(func(ctx context.Context, m *Message) { m.Reply(ctx, Dict("ok", Bool(true))) }))
		peer.Activate()
	})
	l.Activate()
	c, err := DialUnix(testCtx(t), path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetHandler(HandlerFunc(func(context.Context, *Message) {}))
	c.Activate()
	if _, err := c.SendWithReply(testCtx(t), Dict("hello", Bool(true))); err != nil {
		t.Fatalf("through the passed socket: %v", err)
	}
	c.Cancel()
	l.Cancel()
	waitClosed(t, l.Done(), "listener")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the socket's path after Cancel: %v", err)
	}
	if on, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on != 1 {
		t.Fatalf("the caller's socket no longer listens: %d, %v", on, err)
	}
}

func TestNewListenerFromFileRefused(t *testing.T) {
	stream, _ := bindSocket(t, unix.SOCK_STREAM, true)
	idle, _ := bindSocket(t, unix.SOCK_SEQPACKET, false)
	regular, err := os.CreateTemp(t.TempDir(), "file")
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	for _, tc := range []struct {
		f    *os.File
		want error
	}{{stream, unix.EPROTOTYPE}, {idle, unix.EINVAL}, {regular, unix.ENOTSOCK}, {nil, ErrNilObject}} {
		l, err := NewListenerFromFile(tc.f)
		if !errors.Is(err, tc.want) {
			if l != nil {
				l.Cancel()
			}
			t.Errorf("NewListenerFromFile: %v, want %v", err, tc.want)
		}
	}
}

// A socket path someone listens on, with a seqpacket socket or with
// another type, is in use: ListenUnix refuses it and leaves it there. A
// socket nobody listens on is stale and replaced.
func TestListenUnixInUse(t *testing.T) {
	dir := t.TempDir()
	for _, network := range []string{"unixpacket", "unix"} {
		path := filepath.Join(dir, network+".sock")
		other, err := net.Listen(network, path)
		if err != nil {
			t.Fatal(err)
		}
		if l, err := ListenUnix(path, 0o600); !errors.Is(err, unix.EADDRINUSE) {
			if err == nil {
				l.Cancel()
			}
			t.Fatalf("%s listener there: %v, want EADDRINUSE", network, err)
		}
		if c, err := net.Dial(network, path); err != nil {
			t.Fatalf("%s: the listener lost its path: %v", network, err)
		} else {
			c.Close()
		}
		other.(*net.UnixListener).SetUnlinkOnClose(false)
		other.Close()
		l, err := ListenUnix(path, 0o600)
		if err != nil {
			t.Fatalf("stale %s socket not replaced: %v", network, err)
		}
		l.Cancel()
	}
}
