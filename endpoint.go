package xpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// Anonymous listeners and their endpoints (docs/PROTOCOL.md §7,
// "Connecting through an endpoint"): the listener reads connect requests
// on one end of a socket pair; an endpoint is a duplicate of the other
// end; a client connects by sending one end of a new pair through it.

// NewListener returns an inactive anonymous listener.
func NewListener(opts ...Option) (*Listener, error) {
	cfg, err := configure(inNewListener, opts)
	if err != nil {
		return nil, err
	}
	a, b, err := sock.Pair()
	if err != nil {
		return nil, fmt.Errorf("xpc: %w", err)
	}
	s, err := sock.New(a, "xpc-listener")
	if err != nil {
		unix.Close(b)
		return nil, fmt.Errorf("xpc: %w", err)
	}
	return newAnonymousListener(cfg, s, b), nil
}

// Endpoint returns a new endpoint for the listener, owned by the caller.
// Sent in a message, it lets the receiver connect; it stays valid while the
// listener lives, and connecting after the listener is cancelled fails with
// ErrInvalid and ErrPeerGone.
func (l *Listener) Endpoint() (*Endpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.run != nil {
		return nil, fmt.Errorf("xpc: Endpoint: %w", ErrNoEndpoint)
	}
	if l.epFD < 0 {
		return nil, l.err
	}
	fd, err := unix.FcntlInt(uintptr(l.epFD), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("xpc: endpoint: %w", err)
	}
	return NewEndpoint(os.NewFile(uintptr(fd), "xpc-endpoint")), nil
}

func (l *Listener) acceptLoop() {
	defer close(l.done)
	for {
		d, err := l.accept.Recv()
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return // Cancel
			}
			var errno unix.Errno
			if errors.Is(err, io.EOF) || errors.As(err, &errno) {
				// The socket failed, which no sender can cause (EOF
				// cannot come while the listener holds the other end);
				// retrying would spin. Shut, so that dialers learn the
				// listener is gone rather than wait for it.
				l.shut(invalidError(ErrPeerGone, err, "listener failed"))
				return
			}
			// A malformed request (truncated descriptors, say) costs
			// only itself: recv has closed what arrived.
			continue
		}
		l.acceptOne(&d)
		d.Release()
	}
}

// acceptOne turns one connect request into a peer connection. Requests that
// are not well-formed are dropped, closing what they carried: one bad
// endpoint holder cannot stop the listener.
func (l *Listener) acceptOne(d *sock.Datagram) {
	h, err := wire.ParseHeader(d.B)
	if err != nil || h.Kind != wire.KindConnect || len(d.FDs) != 1 || h.NFDs != 1 || len(d.B) != wire.HeaderSize {
		d.CloseFDs()
		return
	}
	fd := d.FDs[0]
	d.FDs = nil
	l.admit(fd)
}

// NewEndpointConnection returns an inactive connection to the listener that
// ep refers to. The connection keeps its own duplicate of ep's descriptor
// until it ends (so a connection made and never used must still be
// cancelled); the caller keeps ep. It connects at the first send; if the
// listener is gone by then, the send fails with ErrInvalid and ErrPeerGone.
// A listener that turns the connection away (a requirement it sets with
// WithPeerRequirement, or Listener.SetAdmission) makes it invalid with the
// reason the listener gave, as for DialUnix.
func NewEndpointConnection(ep *Endpoint, opts ...Option) (*Connection, error) {
	cfg, err := configure(inNewEndpointConnection, opts)
	if err != nil {
		return nil, err
	}
	if ep == nil || ep.File() == nil {
		return nil, fmt.Errorf("xpc: NewEndpointConnection: %w", ErrNilObject)
	}
	epf, err := dupFile(ep.File())
	if err != nil {
		return nil, wrapf(err, "NewEndpointConnection")
	}
	// An endpoint connection dials once (it never reconnects), so its copy
	// of the endpoint is closed as soon as that dial succeeds, or at the end.
	var closeOnce sync.Once
	var closed atomic.Bool
	closeEndpoint := func() { closeOnce.Do(func() { closed.Store(true); closeRaw(epf) }) }
	dial := func(ctx context.Context) (linkEnd, error) {
		if closed.Load() {
			return linkEnd{}, invalidError(ErrPeerGone, nil, "the endpoint connection's one link is gone")
		}
		end, err := dialEndpoint(ctx, epf)
		if err == nil {
			closeEndpoint()
		}
		return end, err
	}
	c := newDialConnection(cfg, dial, false)
	c.setOnFinal(func(*Connection) { closeEndpoint() })
	return c, nil
}

// dialEndpoint connects through an endpoint descriptor: it makes a socket
// pair, passes one end to the listener in a connect request, and keeps the
// other. The listener learns who we are from the pair (the kernel records
// its creator); we learn who the listener is from the endpoint socket.
func dialEndpoint(ctx context.Context, epfd int) (linkEnd, error) {
	if err := sock.CheckSeqpacket(epfd); err != nil {
		return linkEnd{}, invalidError(ErrProtocol, err, "not a goxpc endpoint")
	}
	mine, theirs, err := sock.Pair()
	if err != nil {
		return linkEnd{}, fmt.Errorf("xpc: %w", err)
	}
	defer unix.Close(theirs)
	var hdr [wire.HeaderSize]byte
	wire.PutHeader(hdr[:], wire.Header{Kind: wire.KindConnect})
	for {
		err = wire.SendNow(epfd, hdr[:], []int{theirs})
		if err != unix.EAGAIN {
			break
		}
		// The listener is behind on connect requests; wait a little.
		select {
		case <-ctx.Done():
			unix.Close(mine)
			return linkEnd{}, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	if err != nil {
		unix.Close(mine)
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.ENOTCONN) {
			return linkEnd{}, invalidError(ErrPeerGone, err, "the endpoint's listener is gone")
		}
		return linkEnd{}, invalidError(ErrPeerGone, err, "connect through endpoint")
	}
	peer, err := peerOf(epfd)
	if err != nil {
		unix.Close(mine)
		return linkEnd{}, err
	}
	s, err := sock.New(mine, "xpc-conn")
	if err != nil {
		peer.close()
		return linkEnd{}, fmt.Errorf("xpc: %w", err)
	}
	// Until the listener's hello, it may turn us away with a refused
	// frame in its place, as a path listener may (DialUnix).
	return linkEnd{s: s, peer: peer, admission: true}, nil
}
