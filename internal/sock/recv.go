package sock

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// oobSize holds the control messages of one datagram: MaxFDs descriptors,
// the sender's credentials and a pidfd.
var oobSize = unix.CmsgSpace(MaxFDs*4) + unix.CmsgSpace(unix.SizeofUcred) + unix.CmsgSpace(4)

var recvOOBPool = sync.Pool{New: func() any {
	b := make([]byte, oobSize)
	return &b
}}

var recvBufPool = sync.Pool{New: func() any { b := make([]byte, MaxDatagram); return &b }}

// Datagram is one received datagram. Its buffer is pooled: call Release
// when done with B. Its descriptors are the receiver's.
type Datagram struct {
	B   []byte
	FDs []int
	// With SO_PASSCRED on: the sender's credentials and, with
	// SO_PASSPIDFD, a pidfd for it (-1 if none), both from the kernel.
	Cred  *unix.Ucred
	PIDFD int

	pool *[]byte
}

// Release gives the datagram's buffer back to the pool; B is nil after.
func (d *Datagram) Release() {
	if d.pool != nil {
		recvBufPool.Put(d.pool)
		d.pool = nil
	}
	d.B = nil
}

// CloseFDs closes the descriptors, and the pidfd, still held by the
// datagram.
func (d *Datagram) CloseFDs() {
	for _, fd := range d.FDs {
		unix.Close(fd)
	}
	d.FDs = nil
	d.ClosePIDFD()
}

// ClosePIDFD closes the datagram's pidfd, if it has one.
func (d *Datagram) ClosePIDFD() {
	if d.PIDFD > 0 {
		unix.Close(d.PIDFD)
	}
	d.PIDFD = -1
}

func (s *Socket) doRead(fd uintptr) bool {
	if s.rbuf == nil {
		s.rbuf = recvBufPool.Get().(*[]byte)
		s.roob = recvOOBPool.Get().(*[]byte)
	}
	reset := false
	for {
		s.rn, s.roobn, s.rflag, s.rerr = recvmsg(int(fd), *s.rbuf, *s.roob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if s.rerr == unix.ECONNRESET && !reset {
			// The peer closed its end with datagrams of ours unread.
			// The kernel says so once, ahead of what the peer sent
			// before it closed, which is still to be read (then end of
			// file).
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
		s.rhup = PeerHungUp(int(fd))
	}
	return true
}

// PeerHungUp reports whether the other end of a connected socket has
// closed.
func PeerHungUp(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	for {
		_, err := unix.Poll(pfd, 0)
		if err != unix.EINTR {
			return err != nil || pfd[0].Revents&(unix.POLLRDHUP|unix.POLLHUP) != 0
		}
	}
}

// Recv reads one datagram, waiting for it. io.EOF means the peer closed
// its end. A truncated datagram, a truncated descriptor list or an empty
// datagram from a live peer is an error; any descriptors that did arrive
// are closed.
func (s *Socket) Recv() (Datagram, error) {
	return s.recvMode(false)
}

// RecvNow reads one datagram if one is waiting, and fails with
// ErrWouldBlock if none is.
func (s *Socket) RecvNow() (Datagram, error) {
	return s.recvMode(true)
}

// RecvCtx is Recv bounded by ctx: it returns ctx's error if ctx ends
// first.
func (s *Socket) RecvCtx(ctx context.Context) (Datagram, error) {
	if ctx.Done() == nil {
		return s.Recv()
	}
	for {
		if err := ctx.Err(); err != nil {
			return Datagram{}, err
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
		d, err := s.Recv()
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

// wakeReadFD is run by the AfterFunc of the context RecvCtx registered
// last.
func (s *Socket) wakeReadFD() {
	s.dlMu.Lock()
	defer s.dlMu.Unlock()
	if s.dlArmed {
		s.f.SetReadDeadline(time.Unix(1, 0))
		s.dlSet = true
	}
}

func (s *Socket) recvMode(now bool) (Datagram, error) {
	s.rnow = now
	rerr := s.rc.Read(s.read)
	s.rnow = false
	if rerr != nil {
		return Datagram{}, s.closedErr(rerr)
	}
	if s.rerr == unix.EAGAIN {
		return Datagram{}, ErrWouldBlock
	}
	if s.rerr != nil {
		return Datagram{}, s.rerr
	}
	d := Datagram{pool: s.rbuf, PIDFD: -1}
	s.rbuf = nil
	d.B = (*d.pool)[:s.rn]
	var err error
	if s.roobn > 0 {
		err = ParseControl((*s.roob)[:s.roobn], &d)
	}
	recvOOBPool.Put(s.roob)
	s.roob = nil
	switch {
	case err != nil:
	case s.rflag&unix.MSG_CTRUNC != 0:
		err = errors.New("descriptors truncated (MSG_CTRUNC)")
	case s.rflag&unix.MSG_TRUNC != 0:
		err = fmt.Errorf("datagram larger than %d bytes", MaxDatagram)
	case s.rn == 0 && len(d.FDs) == 0 && s.rhup:
		d.Release()
		return Datagram{}, io.EOF
	case s.rn == 0 && len(d.FDs) == 0:
		err = errors.New("empty datagram")
	}
	if err != nil {
		d.CloseFDs()
		d.Release()
		return Datagram{}, err
	}
	return d, nil
}

// peekMax bounds what Peek looks at.
const peekMax = 16 << 10

// Peek returns a copy of the first datagram waiting on the socket, if
// any, leaving it there; it does not wait and may run beside a reader.
// Only small datagrams are looked at (16 KiB): a larger one is reported
// truncated.
func (s *Socket) Peek() (Datagram, error) {
	b := make([]byte, peekMax)
	oob := make([]byte, oobSize)
	var n, oobn, flags int
	var rerr error
	if err := s.Control(func(fd int) {
		for {
			n, oobn, flags, rerr = recvmsg(fd, b, oob, unix.MSG_PEEK|unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
			if rerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return Datagram{}, err
	}
	if rerr != nil {
		return Datagram{}, rerr
	}
	d := Datagram{B: b[:n], PIDFD: -1}
	if oobn > 0 {
		if err := ParseControl(oob[:oobn], &d); err != nil {
			return Datagram{}, err
		}
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		d.CloseFDs()
		return Datagram{}, errors.New("datagram truncated")
	}
	return d, nil
}

// ParseControl extracts SCM_RIGHTS descriptors, and the SCM_CREDENTIALS
// and SCM_PIDFD the kernel adds while SO_PASSCRED is on, into d. On error
// it closes every descriptor it found.
func ParseControl(oob []byte, d *Datagram) error {
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
			d.FDs = append(d.FDs, rights...)
		case unix.SCM_CREDENTIALS:
			cred, err := unix.ParseUnixCredentials(&m)
			if err != nil {
				bad = fmt.Errorf("control message: %v", err)
				continue
			}
			d.Cred = cred
		case unix.SCM_PIDFD:
			if len(m.Data) != 4 {
				bad = errors.New("control message: malformed SCM_PIDFD")
				continue
			}
			d.ClosePIDFD()
			d.PIDFD = int(int32(binary.NativeEndian.Uint32(m.Data)))
		default:
			bad = fmt.Errorf("unexpected control message level %d type %d", m.Header.Level, m.Header.Type)
		}
	}
	if bad != nil {
		d.CloseFDs()
		return bad
	}
	return nil
}
