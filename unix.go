package xpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/goxpc/xpc/internal/sock"
	"golang.org/x/sys/unix"
)

// ErrNoEndpoint is returned by Listener.Endpoint for listeners that are not
// anonymous: they are reached by their path or name instead.
var ErrNoEndpoint = errors.New("only anonymous listeners have endpoints")

// ErrPathTooLong is returned for a socket path longer than sun_path allows.
var ErrPathTooLong = errors.New("socket path longer than 107 bytes")

const maxSunPath = len(unix.RawSockaddrUnix{}.Path) - 1

// ListenUnix returns an inactive listener on a SOCK_SEQPACKET socket bound
// to path, with the file mode set to mode (and checked). A stale socket file
// left by a process that died is replaced; a live one is an error. Each
// client that connects becomes a peer connection whose Peer is the
// connecting process. This is how xpcd's bootstrap socket is made; services
// use CheckIn and Service.Listen instead.
//
// When the process runs out of descriptors, the listener does not spin:
// it backs off (5 ms, doubling up to 1 s, reset by the next accept that
// works), and with a spare descriptor it keeps for the purpose it takes
// clients waiting in the backlog and closes them at once, so that they see
// their connection end rather than wait for as long as the shortage lasts.
func ListenUnix(path string, mode os.FileMode, opts ...Option) (*Listener, error) {
	cfg, err := configure(inListenUnix, opts)
	if err != nil {
		return nil, err
	}
	if len(path) > maxSunPath {
		return nil, fmt.Errorf("xpc: listen %s: %w", path, ErrPathTooLong)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("xpc: listen %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("xpc: listen %s: set mode: %w", path, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != mode.Perm() {
		ln.Close()
		return nil, fmt.Errorf("xpc: listen %s: mode is not %v", path, mode.Perm())
	}
	a, err := newUnixAcceptor(ln)
	if err != nil {
		ln.Close()
		return nil, wrapf(err, "listen %s", path)
	}
	return newListener(cfg, func(l *Listener) { a.run(l.admit) }, a.close), nil
}

// removeStaleSocket removes a socket file nobody listens on any more.
func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("xpc: listen %s: %w", path, err)
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("xpc: listen %s: a file that is not a socket is in the way", path)
	}
	c, err := net.Dial("unixpacket", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("xpc: listen %s: %w", path, unix.EADDRINUSE)
	}
	if errors.Is(err, unix.EPROTOTYPE) {
		// Someone listens there with another kind of socket (stream,
		// datagram): in use, not stale.
		return fmt.Errorf("xpc: listen %s: %w: a socket of another type listens there", path, unix.EADDRINUSE)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("xpc: listen %s: remove stale socket: %w", path, err)
	}
	return nil
}

// dialUnixFD connects a SOCK_SEQPACKET socket to path and returns its raw,
// close-on-exec descriptor. Its errors do not name the path: the caller's
// do.
func dialUnixFD(ctx context.Context, path string) (int, error) {
	if len(path) > maxSunPath {
		return -1, ErrPathTooLong
	}
	return sock.Dial(ctx, path)
}

// NewConnectionFromFile returns an inactive connection over f, a connected
// AF_UNIX SOCK_SEQPACKET socket (one end of a socket pair, or a connected
// path socket). The connection keeps a duplicate; the caller keeps f. Peer
// is the process the kernel names for the other end. The connection cannot
// reconnect: when the other end goes, it is invalid.
func NewConnectionFromFile(f *os.File, opts ...Option) (*Connection, error) {
	cfg, err := configure(inNewConnectionFromFile, opts)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, fmt.Errorf("xpc: NewConnectionFromFile: %w", ErrNilObject)
	}
	fd, err := dupFile(f)
	if err != nil {
		return nil, wrapf(err, "NewConnectionFromFile")
	}
	c, err := newPeerConnection(cfg, fd)
	if err != nil {
		return nil, err
	}
	c.requirePeer()
	return c, nil
}

// DialUnix returns an inactive connection to the listener bound at path
// (ListenUnix). Peer is the listening process. A listener that turns the
// connection away (Listener.SetAdmission) makes it invalid, with ErrDenied
// (or the reason the listener gave) and the listener's description: the
// first send or pending reply fails with that error and the handler gets
// it as its last event.
func DialUnix(ctx context.Context, path string, opts ...Option) (*Connection, error) {
	cfg, err := configure(inDialUnix, opts)
	if err != nil {
		return nil, err
	}
	fd, err := dialUnixFD(ctx, path)
	if err != nil {
		return nil, wrapf(err, "connect %s", filepath.Clean(path))
	}
	c, err := newPeerConnection(cfg, fd)
	if err != nil {
		return nil, err
	}
	c.awaitAdmission()
	c.requirePeer()
	return c, nil
}

// awaitAdmission readies a connection DialUnix made, before it is shared,
// to be admitted by the listener's hello or refused in its place.
func (c *Connection) awaitAdmission() { c.link.awaitAdmission() }

// awaitHello waits, on an active connection DialUnix made, for the
// listener's hello, which says the listener has admitted it. It returns
// the connection's error if the listener turned it away (or it ended
// otherwise), and ctx's if ctx ends first.
func (c *Connection) awaitHello(ctx context.Context) error {
	l := c.currentLink()
	if l == nil {
		return c.Err()
	}
	return l.awaitHello(ctx)
}
