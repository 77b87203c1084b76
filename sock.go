package xpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// sock is one end of a SOCK_SEQPACKET AF_UNIX socket, non-blocking and
// registered with Go's poller. Reads need no buffer while idle: a buffer is
// taken from a pool only when the socket is readable. Writes are serialized
// by wsem, so a context can bound one without disturbing another.
type sock struct {
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

	// Read state, owned by the single reader (a link's read role).
	rbuf  *[]byte
	roob  *[]byte // control-message buffer, pooled like rbuf
	rn    int
	roobn int
	rflag int
	rerr  error
	rhup  bool // an empty read came from a peer that has closed its end
	rnow  bool // fail with EAGAIN instead of waiting
	read  func(fd uintptr) bool

	// recvCtx's deadline state, guarded by dlMu: armed while a read
	// waits, set once wakeRead has put a past deadline on the socket.
	dlMu     sync.Mutex
	dlArmed  bool
	dlSet    bool
	dlCtx    context.Context // registered with, by dlStop's AfterFunc
	dlStop   func() bool
	wakeRead func()

	// watch is an epoll instance holding only this socket, itself
	// registered with Go's poller; nil until a link needs it (see
	// read.go). Set once, under watchMu, which orders it with close.
	watchMu sync.Mutex
	watch   *watchFD
	// onBlock, if set, is told when a send starts (+1) and stops (-1)
	// waiting for buffer space.
	onBlock func(delta int)
	// lookup is set on the client's end of a socket pair whose other end
	// went to xpcd in a pipelined lookup: only that xpcd may refuse the
	// connection, with a refused frame ahead of the service's hello.
	lookup *lookupRef
	// dialed is set on a socket DialUnix connected to a listener, until
	// the listener's hello: the listener may refuse the connection, with
	// a refused frame in place of the hello.
	dialed atomic.Bool
}

// watchFD is an epoll instance watching one socket for input. A goroutine
// can wait on it for the socket to become readable while another reads the
// socket itself: disarming it (arm(false)) keeps the first asleep.
type watchFD struct {
	f  *os.File // the epoll instance
	rc syscall.RawConn

	// arm's state, owned by the holder of the read role.
	armOn    bool
	armFD    int
	armSock  func(fd uintptr)
	armEpoll func(fd uintptr)
}

var recvOOBPool = sync.Pool{New: func() any {
	b := make([]byte, unix.CmsgSpace(wire.MaxFDs*4)+unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4))
	return &b
}}

var recvBufPool = sync.Pool{New: func() any { b := make([]byte, wire.InlineMax); return &b }}

// newSock takes ownership of fd, a SOCK_SEQPACKET AF_UNIX socket.
func newSock(fd int, name string) (*sock, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("xpc: set non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("xpc: socket: %w", err)
	}
	s := &sock{f: f, rc: rc, wsem: make(chan struct{}, 1)}
	s.write = s.doWrite
	s.read = s.doRead
	s.wakeRead = s.wakeReadFD
	return s, nil
}

// socketPair makes a connected SOCK_SEQPACKET pair, close-on-exec, as raw
// descriptors owned by the caller.
func socketPair() (int, int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("xpc: socketpair: %w", err)
	}
	return fds[0], fds[1], nil
}

// checkSeqpacket verifies that a descriptor received from a peer is an
// AF_UNIX SOCK_SEQPACKET socket.
func checkSeqpacket(fd int) error {
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

// close closes the socket, waking any blocked read or write, which then
// returns os.ErrClosed. It is idempotent.
func (s *sock) close() error {
	s.closed.Store(true)
	s.dlMu.Lock()
	if s.dlStop != nil {
		s.dlStop()
		s.dlStop, s.dlCtx = nil, nil
	}
	s.dlMu.Unlock()
	if w := s.loadWatch(); w != nil {
		w.f.Close()
	}
	if err := s.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// loadWatch returns the socket's watch descriptor, nil if it has none.
func (s *sock) loadWatch() *watchFD {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	return s.watch
}

// startWatch creates the socket's watch descriptor, armed. It fails if the
// socket is closed.
func (s *sock) startWatch() (*watchFD, error) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watch != nil {
		return s.watch, nil
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("xpc: epoll_create1: %w", err)
	}
	var cerr error
	err = s.control(func(fd int) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
		cerr = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev)
	})
	if err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.SetNonblock(ep, true)
	}
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("xpc: watch socket: %w", s.closedErr(err))
	}
	f := os.NewFile(uintptr(ep), "xpc-watch")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("xpc: watch socket: %w", err)
	}
	w := &watchFD{f: f, rc: rc}
	w.armSock, w.armEpoll = w.armSockFD, w.armEpollFD
	s.watch = w
	if s.closed.Load() {
		// close ran before the watch existed: close it here.
		f.Close()
	}
	return s.watch, nil
}

// arm turns the watch on or off: while off, input on the socket does not
// wake a goroutine waiting on the watch. Only the holder of the link's read
// role calls it.
//
// Turning it on again does not always report input that came while it was
// off (epoll may still list the socket as ready from before, and then does
// not wake the waiter again), so the caller reads the socket once more
// after turning it on. That is cheaper than removing the socket from the
// epoll set and adding it again.
func (s *sock) arm(w *watchFD, on bool) {
	w.armOn = on
	// The callbacks are method values made once: a closure here would be
	// allocated on every call.
	_ = s.rc.Control(w.armSock)
}

// armSockFD runs with the socket's descriptor held open, armEpollFD with
// the epoll descriptor's.
func (w *watchFD) armSockFD(fd uintptr) {
	w.armFD = int(fd)
	_ = w.rc.Control(w.armEpoll)
}

func (w *watchFD) armEpollFD(ep uintptr) {
	ev := unix.EpollEvent{Fd: int32(w.armFD)}
	if w.armOn {
		ev.Events = unix.EPOLLIN | unix.EPOLLRDHUP
	}
	// Never blocks: a raw call, as sendmsg and recvmsg are.
	_, _, _ = unix.RawSyscall6(unix.SYS_EPOLL_CTL, ep, unix.EPOLL_CTL_MOD, uintptr(w.armFD), uintptr(unsafe.Pointer(&ev)), 0, 0)
}

// waitWatch calls try at once, and again each time the watch reports the
// socket readable, until try returns true. It fails once the watch is
// closed.
func (s *sock) waitWatch(w *watchFD, try func(uintptr) bool) error {
	err := w.rc.Read(try)
	if err != nil {
		return s.closedErr(err)
	}
	return nil
}

// closedErr turns the poller's error for a closed file (which is not
// os.ErrClosed when it comes through a RawConn) into os.ErrClosed.
func (s *sock) closedErr(err error) error {
	if s.closed.Load() {
		return os.ErrClosed
	}
	return err
}

// control returns the raw descriptor to fn, holding it open meanwhile.
func (s *sock) control(fn func(fd int)) error {
	return s.rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// sendmsg and recvmsg are only ever called with MSG_DONTWAIT: they never
// block, so they are raw system calls, which do not tell the Go scheduler.
// Through syscall.Syscall, each would wake the runtime's monitor thread
// (sysmon) when the process had been idle, one thread switch more per
// message for a process that waits between messages.
func sendmsg(fd int, p, oob []byte, flags int) (int, error) {
	var msg unix.Msghdr
	var iov unix.Iovec
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
		msg.Iov = &iov
		msg.SetIovlen(1)
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	n, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if e != 0 {
		return int(n), e
	}
	return int(n), nil
}

func recvmsg(fd int, p, oob []byte, flags int) (n, oobn, rflags int, err error) {
	var msg unix.Msghdr
	var iov unix.Iovec
	iov.Base = &p[0]
	iov.SetLen(len(p))
	msg.Iov = &iov
	msg.SetIovlen(1)
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if e != 0 {
		return 0, 0, 0, e
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

func (s *sock) doWrite(fd uintptr) bool {
	for {
		s.wn, s.werr = sendmsg(int(fd), s.wbuf, s.woob, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		// EINTR: try again now. Returning false would wait for an
		// edge the edge-triggered poller may never see.
		if s.werr != unix.EINTR {
			break
		}
	}
	return s.wnow || s.werr != unix.EAGAIN
}

// errWouldBlock is returned by trySend when the socket buffer is full.
var errWouldBlock = errors.New("xpc: send would block")

// send writes one datagram with the given descriptors attached. It blocks
// while the socket buffer is full, until ctx is done or the socket is
// closed. The descriptors stay the caller's.
func (s *sock) send(ctx context.Context, p []byte, fds []int) error {
	select {
	case s.wsem <- struct{}{}:
	default:
		// Another send holds the socket: wait for it, or for ctx. (Taken
		// without waiting first, so that a send with a context that has
		// already ended still goes out if it can without waiting.)
		select {
		case s.wsem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() {
		s.wbuf, s.woob = nil, s.woob[:0]
		<-s.wsem
	}()
	s.wbuf = p
	s.woob = s.woob[:0]
	if len(fds) > 0 {
		s.woob = appendRights(s.woob, fds)
	}
	// First try without waiting: the common case needs no timer.
	s.wnow = true
	err := s.rc.Write(s.write)
	s.wnow = false
	if err == nil && s.werr == unix.EAGAIN {
		if s.onBlock != nil {
			s.onBlock(1)
			defer s.onBlock(-1)
		}
		if ctx.Done() != nil {
			// ctx ending sets a past deadline, which wakes the write.
			// If the AfterFunc has started, wait for it before clearing
			// the deadline: a deadline it set after the clearing would
			// fail the next, unrelated send.
			fired := make(chan struct{})
			stop := context.AfterFunc(ctx, func() {
				s.f.SetWriteDeadline(time.Unix(1, 0))
				close(fired)
			})
			err = s.rc.Write(s.write)
			if !stop() {
				<-fired
				s.f.SetWriteDeadline(time.Time{})
			}
		} else {
			err = s.rc.Write(s.write)
		}
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
			return ctx.Err()
		}
		return s.closedErr(err)
	}
	if s.werr != nil {
		return s.werr
	}
	if s.wn != len(p) {
		return fmt.Errorf("xpc: short datagram write: %d of %d bytes", s.wn, len(p))
	}
	return nil
}

// trySend writes one datagram without descriptors if it can go at once,
// and fails with errWouldBlock if the socket buffer is full or another
// send holds the socket.
func (s *sock) trySend(p []byte) error {
	select {
	case s.wsem <- struct{}{}:
	default:
		return errWouldBlock
	}
	defer func() {
		s.wbuf = nil
		<-s.wsem
	}()
	s.wbuf = p
	s.woob = s.woob[:0]
	s.wnow = true
	err := s.rc.Write(s.write)
	s.wnow = false
	switch {
	case err != nil:
		return s.closedErr(err)
	case s.werr == unix.EAGAIN:
		return errWouldBlock
	case s.werr != nil:
		return s.werr
	case s.wn != len(p):
		return fmt.Errorf("xpc: short datagram write: %d of %d bytes", s.wn, len(p))
	}
	return nil
}

func appendRights(b []byte, fds []int) []byte {
	n := unix.CmsgSpace(len(fds) * 4)
	start := len(b)
	b = append(b, make([]byte, n)...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[start]))
	h.Level = unix.SOL_SOCKET
	h.Type = unix.SCM_RIGHTS
	h.SetLen(unix.CmsgLen(len(fds) * 4))
	data := b[start+unix.CmsgLen(0):]
	for i, fd := range fds {
		*(*int32)(unsafe.Pointer(&data[i*4])) = int32(fd)
	}
	return b
}

func (s *sock) doRead(fd uintptr) bool {
	if s.rbuf == nil {
		s.rbuf = recvBufPool.Get().(*[]byte)
		s.roob = recvOOBPool.Get().(*[]byte)
	}
	reset := false
	for {
		s.rn, s.roobn, s.rflag, s.rerr = recvmsg(int(fd), *s.rbuf, *s.roob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if s.rerr == unix.ECONNRESET && !reset {
			// The peer closed its end with frames of ours unread. The
			// kernel says so once, ahead of what the peer sent before
			// it closed, which is still to be read (then end of file).
			reset = true
			continue
		}
		if s.rerr != unix.EINTR {
			break
		}
	}
	if s.rerr == unix.EAGAIN {
		// Nothing to read: wait without holding a buffer.
		recvBufPool.Put(s.rbuf)
		recvOOBPool.Put(s.roob)
		s.rbuf, s.roob = nil, nil
		return s.rnow
	}
	if s.rerr == nil && s.rn == 0 && s.roobn == 0 {
		// End of file, or an empty datagram from a live peer?
		s.rhup = peerHungUp(int(fd))
	}
	return true
}

// peerHungUp reports whether the other end of a connected socket has closed.
func peerHungUp(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	for {
		_, err := unix.Poll(pfd, 0)
		if err != unix.EINTR {
			return err != nil || pfd[0].Revents&(unix.POLLRDHUP|unix.POLLHUP) != 0
		}
	}
}

// datagram is one received frame. buf is pooled: call release when done.
type datagram struct {
	b    []byte
	fds  []int
	pool *[]byte
	// With SO_PASSCRED on: the sender's credentials and, with
	// SO_PASSPIDFD, a pidfd for it (-1 if none), both from the kernel.
	cred  *unix.Ucred
	pidfd int
}

func (d *datagram) release() {
	if d.pool != nil {
		recvBufPool.Put(d.pool)
		d.pool = nil
	}
	d.b = nil
}

// closeFDs closes the descriptors still held by the datagram.
func (d *datagram) closeFDs() {
	for _, fd := range d.fds {
		unix.Close(fd)
	}
	d.fds = nil
	d.closePIDFD()
}

func (d *datagram) closePIDFD() {
	if d.pidfd > 0 {
		unix.Close(d.pidfd)
	}
	d.pidfd = -1
}

// soPassPIDFD is SO_PASSPIDFD (Linux 6.5): with it, each datagram received
// carries an SCM_PIDFD control message, a pidfd for its sender.
const soPassPIDFD = 76

// setPassCred turns on or off the kernel's stamping of each received
// datagram with its sender's credentials (SO_PASSCRED) and a pidfd
// (SO_PASSPIDFD, where the kernel has it).
func (s *sock) setPassCred(on bool) error {
	var err error
	cerr := s.control(func(fd int) { err = setPassCredFD(fd, on) })
	if cerr != nil {
		return cerr
	}
	return err
}

// setPassCredFD turns the kernel's stamping of the sender's credentials
// (SO_PASSCRED) and pidfd (SO_PASSPIDFD, where the kernel has it) on
// datagrams arriving at fd on or off.
func setPassCredFD(fd int, on bool) error {
	v := 0
	if on {
		v = 1
	}
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, v)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, soPassPIDFD, v)
	return err
}

// recv reads one datagram, waiting for it. io.EOF means the peer closed its
// end. A truncated datagram, a truncated descriptor list or an empty
// datagram from a live peer is an error; any descriptors that did arrive
// are closed.
func (s *sock) recv() (datagram, error) {
	return s.recvMode(false)
}

// recvNow reads one datagram if one is waiting, and fails with
// errWouldBlock if none is.
func (s *sock) recvNow() (datagram, error) {
	return s.recvMode(true)
}

// recvCtx is recv bounded by ctx: it returns ctx's error if ctx ends first.
func (s *sock) recvCtx(ctx context.Context) (datagram, error) {
	if ctx.Done() == nil {
		return s.recv()
	}
	for {
		if err := ctx.Err(); err != nil {
			return datagram{}, err
		}
		// ctx ending sets a past read deadline, which wakes the read.
		// The registration with ctx is kept for the next read: callers
		// often make many calls under one context.
		s.dlMu.Lock()
		if s.dlCtx != ctx {
			if s.dlStop != nil {
				s.dlStop()
			}
			s.dlCtx = ctx
			s.dlStop = context.AfterFunc(ctx, s.wakeRead)
		}
		s.dlArmed = true
		s.dlMu.Unlock()
		d, err := s.recv()
		s.dlMu.Lock()
		s.dlArmed = false
		if s.dlSet {
			s.f.SetReadDeadline(time.Time{})
			s.dlSet = false
		}
		s.dlMu.Unlock()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// ctx ended, or an earlier context's AfterFunc, stopped too
			// late, woke this read: then read again.
			continue
		}
		return d, err
	}
}

// wakeReadFD is run by the AfterFunc of the context recvCtx registered
// last.
func (s *sock) wakeReadFD() {
	s.dlMu.Lock()
	defer s.dlMu.Unlock()
	if s.dlArmed {
		s.f.SetReadDeadline(time.Unix(1, 0))
		s.dlSet = true
	}
}

func (s *sock) recvMode(now bool) (datagram, error) {
	s.rnow = now
	rerr := s.rc.Read(s.read)
	s.rnow = false
	if rerr != nil {
		return datagram{}, s.closedErr(rerr)
	}
	if s.rerr == unix.EAGAIN {
		return datagram{}, errWouldBlock
	}
	if s.rerr != nil {
		return datagram{}, s.rerr
	}
	d := datagram{pool: s.rbuf, pidfd: -1}
	s.rbuf = nil
	d.b = (*d.pool)[:s.rn]
	var err error
	if s.roobn > 0 {
		err = parseControl((*s.roob)[:s.roobn], &d)
	}
	recvOOBPool.Put(s.roob)
	s.roob = nil
	switch {
	case err != nil:
	case s.rflag&unix.MSG_CTRUNC != 0:
		err = errors.New("descriptors truncated (MSG_CTRUNC)")
	case s.rflag&unix.MSG_TRUNC != 0:
		err = fmt.Errorf("datagram larger than %d bytes", wire.InlineMax)
	case s.rn == 0 && len(d.fds) == 0 && s.rhup:
		d.release()
		return datagram{}, io.EOF
	case s.rn == 0 && len(d.fds) == 0:
		err = errors.New("empty datagram")
	}
	if err != nil {
		d.closeFDs()
		d.release()
		return datagram{}, err
	}
	return d, nil
}

// peek returns a copy of the first datagram waiting on the socket, if any,
// leaving it there; it does not wait and needs no read role. Only small
// datagrams are looked at (peekMax): a larger one is reported truncated.
func (s *sock) peek() (datagram, error) {
	b := make([]byte, peekMax)
	oob := make([]byte, unix.CmsgSpace(wire.MaxFDs*4)+unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4))
	var n, oobn, flags int
	var rerr error
	if err := s.control(func(fd int) {
		for {
			n, oobn, flags, rerr = recvmsg(fd, b, oob, unix.MSG_PEEK|unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
			if rerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return datagram{}, err
	}
	if rerr != nil {
		return datagram{}, rerr
	}
	d := datagram{b: b[:n], pidfd: -1}
	if oobn > 0 {
		if err := parseControl(oob[:oobn], &d); err != nil {
			return datagram{}, err
		}
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		d.closeFDs()
		return datagram{}, errors.New("datagram truncated")
	}
	return d, nil
}

// peekMax bounds what peek looks at.
const peekMax = 16 << 10

// parseControl extracts SCM_RIGHTS descriptors, and the SCM_CREDENTIALS
// and SCM_PIDFD the kernel adds while SO_PASSCRED is on, into d. On error
// it closes every descriptor it found.
func parseControl(oob []byte, d *datagram) error {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("control message: %v", err) // not an errno: the peer's doing
	}
	var bad error
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET {
			bad = fmt.Errorf("unexpected control message level %d type %d", m.Header.Level, m.Header.Type)
			continue
		}
		switch m.Header.Type {
		case unix.SCM_RIGHTS:
			rights, err := unix.ParseUnixRights(&m)
			if err != nil {
				bad = fmt.Errorf("control message: %v", err)
				continue
			}
			d.fds = append(d.fds, rights...)
		case unix.SCM_CREDENTIALS:
			cred, err := unix.ParseUnixCredentials(&m)
			if err != nil {
				bad = fmt.Errorf("control message: %v", err)
				continue
			}
			d.cred = cred
		case unix.SCM_PIDFD:
			if len(m.Data) != 4 {
				bad = errors.New("control message: malformed SCM_PIDFD")
				continue
			}
			d.closePIDFD()
			d.pidfd = int(int32(binary.NativeEndian.Uint32(m.Data)))
		default:
			bad = fmt.Errorf("unexpected control message level %d type %d", m.Header.Level, m.Header.Type)
		}
	}
	if bad != nil {
		d.closeFDs()
		return bad
	}
	return nil
}
