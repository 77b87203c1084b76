package sock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaxDatagram is the largest datagram a Socket reads whole; a larger one
// is reported truncated.
const MaxDatagram = 64 << 10

// MaxFDs is SCM_MAX_FD, the kernel's limit of descriptors per sendmsg.
const MaxFDs = 253

// ErrWouldBlock is returned by the calls that do not wait (RecvNow, and
// SendFD's EAGAIN aside) when they would have to.
var ErrWouldBlock = errors.New("send would block")

// Socket is one end of a SOCK_SEQPACKET AF_UNIX socket, non-blocking and
// registered with Go's poller. Reads need no buffer while idle: a buffer is
// taken from a pool only when the socket is readable.
//
// Ownership of its state:
//   - the write state (w*) belongs to whoever holds wsem, one Send at a
//     time, so a context can bound one send without disturbing another;
//   - the read state (r*) belongs to the one goroutine reading: Recv,
//     RecvNow and RecvCtx must not run concurrently (the xpc package's
//     read role guarantees it); Peek, which reads nothing, may;
//   - the deadline state of RecvCtx is guarded by dlMu, the watch by
//     watchMu; closed is atomic. Close may be called from any goroutine,
//     any number of times.
type Socket struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool // close was called: poller errors mean os.ErrClosed

	wsem chan struct{}
	// Write state, owned by whoever holds wsem; kept here so the write
	// callback is a method value made once, not a closure per send.
	wbuf  []byte
	woob  []byte
	wn    int
	werr  error
	write func(fd uintptr) bool
	wnow  bool // fail with EAGAIN instead of waiting

	// Read state, owned by the single reader.
	rbuf  *[]byte
	roob  *[]byte // control-message buffer, pooled like rbuf
	rn    int
	roobn int
	rflag int
	rerr  error
	rhup  bool // an empty read came from a peer that has closed its end
	rnow  bool // fail with EAGAIN instead of waiting
	read  func(fd uintptr) bool

	// RecvCtx's deadline state, guarded by dlMu: armed while a read
	// waits, set once wakeRead has put a past deadline on the socket.
	dlMu     sync.Mutex
	dlArmed  bool
	dlSet    bool
	dlCtx    context.Context // registered with, by dlStop's AfterFunc
	dlStop   func() bool
	wakeRead func()

	// watch is an epoll instance holding only this socket, itself
	// registered with Go's poller; nil until StartWatch. Set once, under
	// watchMu, which orders it with Close.
	watchMu sync.Mutex
	watch   *Watch
	// onBlock, if set, is told when a send starts (+1) and stops (-1)
	// waiting for buffer space.
	onBlock func(delta int)
}

// New takes ownership of fd, a SOCK_SEQPACKET AF_UNIX socket, and makes it
// non-blocking.
func New(fd int, name string) (*Socket, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("socket: %w", err)
	}
	s := &Socket{f: f, rc: rc, wsem: make(chan struct{}, 1)}
	s.write = s.doWrite
	s.read = s.doRead
	s.wakeRead = s.wakeReadFD
	return s, nil
}

// SetOnBlock sets the function told when a send starts (+1) and stops (-1)
// waiting for buffer space. It must be called before the socket is used.
func (s *Socket) SetOnBlock(fn func(delta int)) { s.onBlock = fn }

// Pair makes a connected SOCK_SEQPACKET pair, close-on-exec, as raw
// descriptors owned by the caller.
func Pair() (int, int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("socketpair: %w", err)
	}
	return fds[0], fds[1], nil
}

// CheckSeqpacket verifies that a descriptor received from a peer is an
// AF_UNIX SOCK_SEQPACKET socket.
func CheckSeqpacket(fd int) error {
	t, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("not a socket: %w", err)
	}
	d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("not a socket: %w", err)
	}
	if t != unix.SOCK_SEQPACKET || d != unix.AF_UNIX {
		return fmt.Errorf("socket of domain %d type %d, want AF_UNIX SOCK_SEQPACKET", d, t)
	}
	return nil
}

// Close closes the socket, waking any blocked read or write, which then
// returns os.ErrClosed. It is idempotent.
func (s *Socket) Close() error {
	s.closed.Store(true)
	s.dlMu.Lock()
	if s.dlStop != nil {
		s.dlStop()
		s.dlStop, s.dlCtx = nil, nil
	}
	s.dlMu.Unlock()
	if w := s.Watch(); w != nil {
		w.f.Close()
	}
	if err := s.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// closedErr turns the poller's error for a closed file (which is not
// os.ErrClosed when it comes through a RawConn) into os.ErrClosed.
func (s *Socket) closedErr(err error) error {
	if s.closed.Load() {
		return os.ErrClosed
	}
	return err
}

// Control returns the raw descriptor to fn, holding it open meanwhile.
func (s *Socket) Control(fn func(fd int)) error {
	return s.rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// soPassPIDFD is SO_PASSPIDFD (Linux 6.5): with it, each datagram received
// carries an SCM_PIDFD control message, a pidfd for its sender.
const soPassPIDFD = 76

// SetPassCred turns on or off the kernel's stamping of each received
// datagram with its sender's credentials (SO_PASSCRED) and a pidfd
// (SO_PASSPIDFD, where the kernel has it).
func (s *Socket) SetPassCred(on bool) error {
	var err error
	cerr := s.Control(func(fd int) { err = SetPassCred(fd, on) })
	if cerr != nil {
		return cerr
	}
	return err
}

// SetPassCred is Socket.SetPassCred for a raw descriptor.
func SetPassCred(fd int, on bool) error {
	v := 0
	if on {
		v = 1
	}
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, v)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, soPassPIDFD, v)
	return err
}

// DupConn returns a close-on-exec duplicate of c's descriptor without
// changing c (os.File.Fd would make a pollable file blocking).
func DupConn(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("dup: %w", derr)
	}
	return nfd, nil
}

// Dial connects a SOCK_SEQPACKET socket to path, waiting until ctx ends,
// and returns its raw, close-on-exec, non-blocking descriptor.
func Dial(ctx context.Context, path string) (int, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", path)
	if err != nil {
		return -1, err
	}
	defer c.Close()
	return DupConn(c.(*net.UnixConn))
}

// Connect is Dial made cheap for a connection that lives for one frame:
// it connects a socket of its own, with no poller registration, and
// falls back to Dial only while the listener's backlog is full.
func Connect(ctx context.Context, path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	if errors.Is(err, unix.EAGAIN) {
		// The listener's backlog is full: wait for room, within ctx.
		unix.Close(fd)
		if fd, err = Dial(ctx, path); err == nil {
			err = unix.SetNonblock(fd, true)
		}
	}
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, err
	}
	return fd, nil
}
