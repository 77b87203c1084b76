package sock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendmsg and recvmsg are only ever called with MSG_DONTWAIT: they never
// block, so they are raw system calls, which do not tell the Go scheduler.
// Through syscall.Syscall, each would wake the runtime's monitor thread
// (sysmon) when the process had been idle, one thread switch more per
// message for a process that waits between messages.
func sendmsg(fd int, p, oob []byte, flags int) (int, error) {
	n, _, _, err := msgcall(unix.SYS_SENDMSG, fd, p, oob, flags)
	return n, err
}

func recvmsg(fd int, p, oob []byte, flags int) (n, oobn, rflags int, err error) {
	return msgcall(unix.SYS_RECVMSG, fd, p, oob, flags)
}

// msgcall makes the system call trap, sendmsg or recvmsg, with a msghdr
// for p and oob. The msghdr and its iovec stay on the stack: they are
// built here, not through a pointer, which escape analysis would send to
// the heap.
func msgcall(trap uintptr, fd int, p, oob []byte, flags int) (n, oobn, rflags int, err error) {
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
	r, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if e != 0 {
		return 0, 0, 0, e
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

func (s *Socket) doWrite(fd uintptr) bool {
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

// Send writes one datagram with the given descriptors attached. It blocks
// while the socket buffer is full, until ctx is done or the socket is
// closed. The descriptors stay the caller's.
func (s *Socket) Send(ctx context.Context, p []byte, fds []int) error {
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
		return fmt.Errorf("short datagram write: %d of %d bytes", s.wn, len(p))
	}
	return nil
}

// SendFD writes one datagram with the given descriptors attached to fd, a
// socket no Socket owns, without waiting: a full socket buffer fails with
// EAGAIN. The descriptors stay the caller's.
func SendFD(fd int, p []byte, fds []int) error {
	var oob []byte
	if len(fds) > 0 {
		oob = appendRights(nil, fds)
	}
	for {
		n, err := sendmsg(fd, p, oob, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n != len(p):
			return fmt.Errorf("short datagram write: %d of %d bytes", n, len(p))
		}
		return nil
	}
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
