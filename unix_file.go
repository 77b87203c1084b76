package xpc

import (
	"fmt"
	"net"
	"os"

	"github.com/goxpc/xpc/internal/sock"
	"golang.org/x/sys/unix"
)

// NewListenerFromFile returns an inactive listener on f, an AF_UNIX
// SOCK_SEQPACKET socket that is already bound and listening: one that
// systemd's socket activation passed, say. It takes the options ListenUnix
// takes and behaves as a listener ListenUnix made, except that it never
// removes the socket's path: whoever bound the socket does. The listener
// keeps a duplicate of f; the caller keeps f.
//
// A descriptor that is not a socket is an error matching unix.ENOTSOCK;
// a socket of another domain or type, unix.EPROTOTYPE; one that is not
// listening, unix.EINVAL.
func NewListenerFromFile(f *os.File, opts ...Option) (*Listener, error) {
	cfg, err := configure(inNewListenerFromFile, opts)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, fmt.Errorf("xpc: NewListenerFromFile: %w", ErrNilObject)
	}
	fd, err := sock.DupConn(f)
	if err != nil {
		return nil, fmt.Errorf("xpc: NewListenerFromFile: %w", err)
	}
	dup := os.NewFile(uintptr(fd), f.Name())
	defer dup.Close()
	if err := checkListening(fd); err != nil {
		return nil, fmt.Errorf("xpc: NewListenerFromFile %s: %w", f.Name(), err)
	}
	fl, err := net.FileListener(dup)
	if err != nil {
		return nil, fmt.Errorf("xpc: NewListenerFromFile %s: %w", f.Name(), err)
	}
	ln, ok := fl.(*net.UnixListener)
	if !ok {
		fl.Close()
		return nil, fmt.Errorf("xpc: NewListenerFromFile %s: %w", f.Name(), unix.EPROTOTYPE)
	}
	// A listener made from a descriptor never unlinks its path; say so
	// all the same, since that is the promise.
	ln.SetUnlinkOnClose(false)
	a, err := newUnixAcceptor(ln)
	if err != nil {
		ln.Close()
		return nil, wrapf(err, "NewListenerFromFile %s", f.Name())
	}
	return newListener(cfg, func(l *Listener) { a.run(l.admit) }, a.close), nil
}

// checkListening says what fd is if it is not a listening AF_UNIX
// SOCK_SEQPACKET socket.
func checkListening(fd int) error {
	d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("not a socket: %w", unix.ENOTSOCK)
	}
	t, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("not a socket: %w", unix.ENOTSOCK)
	}
	switch {
	case d != unix.AF_UNIX:
		return fmt.Errorf("a socket of address family %d, not AF_UNIX: %w", d, unix.EPROTOTYPE)
	case t != unix.SOCK_SEQPACKET:
		return fmt.Errorf("a socket of type %s, not SOCK_SEQPACKET: %w", sockTypeName(t), unix.EPROTOTYPE)
	}
	if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on == 0 {
		return fmt.Errorf("a socket that is not listening: %w", unix.EINVAL)
	}
	return nil
}

// sockTypeName names a socket type.
func sockTypeName(t int) string {
	switch t {
	case unix.SOCK_STREAM:
		return "SOCK_STREAM"
	case unix.SOCK_DGRAM:
		return "SOCK_DGRAM"
	case unix.SOCK_SEQPACKET:
		return "SOCK_SEQPACKET"
	}
	return fmt.Sprint(t)
}
