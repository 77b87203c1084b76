package sock

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Watch is an epoll instance watching one socket for input. A goroutine
// can wait on it for the socket to become readable while another reads the
// socket itself: disarming it (Arm(false)) keeps the first asleep.
type Watch struct {
	f  *os.File // the epoll instance
	rc syscall.RawConn

	// Arm's state, owned by its one caller at a time (the reader).
	armOn    bool
	armFD    int
	armSock  func(fd uintptr)
	armEpoll func(fd uintptr)
}

// Watch returns the socket's watch, nil if it has none.
func (s *Socket) Watch() *Watch {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	return s.watch
}

// StartWatch creates the socket's watch, armed, or returns the one it
// has. It fails if the socket is closed.
func (s *Socket) StartWatch() (*Watch, error) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watch != nil {
		return s.watch, nil
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	var cerr error
	err = s.Control(func(fd int) {
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
		return nil, fmt.Errorf("watch socket: %w", s.closedErr(err))
	}
	f := os.NewFile(uintptr(ep), "xpc-watch")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("watch socket: %w", err)
	}
	w := &Watch{f: f, rc: rc}
	w.armSock, w.armEpoll = w.armSockFD, w.armEpollFD
	s.watch = w
	if s.closed.Load() {
		// Close ran before the watch existed: close it here.
		f.Close()
	}
	return s.watch, nil
}

// Arm turns the watch on or off: while off, input on the socket does not
// wake a goroutine waiting on the watch. Only the socket's reader calls it.
//
// Turning it on again does not always report input that came while it was
// off (epoll may still list the socket as ready from before, and then does
// not wake the waiter again), so the caller reads the socket once more
// after turning it on. That is cheaper than removing the socket from the
// epoll set and adding it again.
func (s *Socket) Arm(w *Watch, on bool) {
	w.armOn = on
	// The callbacks are method values made once: a closure here would be
	// allocated on every call.
	_ = s.rc.Control(w.armSock)
}

// armSockFD runs with the socket's descriptor held open, armEpollFD with
// the epoll descriptor's.
func (w *Watch) armSockFD(fd uintptr) {
	w.armFD = int(fd)
	_ = w.rc.Control(w.armEpoll)
}

func (w *Watch) armEpollFD(ep uintptr) {
	ev := unix.EpollEvent{Fd: int32(w.armFD)}
	if w.armOn {
		ev.Events = unix.EPOLLIN | unix.EPOLLRDHUP
	}
	// Never blocks: a raw call, as sendmsg and recvmsg are.
	_, _, _ = unix.RawSyscall6(unix.SYS_EPOLL_CTL, ep, unix.EPOLL_CTL_MOD, uintptr(w.armFD), uintptr(unsafe.Pointer(&ev)), 0, 0)
}

// WaitWatch calls try at once, and again each time the watch reports the
// socket readable, until try returns true. It fails once the watch is
// closed.
func (s *Socket) WaitWatch(w *Watch, try func(uintptr) bool) error {
	err := w.rc.Read(try)
	if err != nil {
		return s.closedErr(err)
	}
	return nil
}
