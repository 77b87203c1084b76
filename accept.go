package xpc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/goxpc/xpc/internal/sock"
	"golang.org/x/sys/unix"
)

// Backoff of a path listener's accept loop after an error that retrying at
// once would only repeat (no descriptors left, no memory), as net/http's
// Server does it: acceptBackoffMin, doubling up to acceptBackoffMax, back to
// nothing after an accept succeeds.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// unixAcceptor accepts on a path listener's socket. It keeps one spare
// descriptor (/dev/null) so that, when the process has run out of
// descriptors (EMFILE), it can still take one waiting client off the
// backlog and close it: that client sees its connection end instead of
// waiting in the backlog for as long as the shortage lasts.
type unixAcceptor struct {
	ln *net.UnixListener
	// f is a duplicate of ln's descriptor, through which the loop waits
	// for clients: ln's RawConn cannot wait (its Read fails).
	f  *os.File
	rc syscall.RawConn

	stop     chan struct{} // closed by close
	stopOnce sync.Once

	// Owned by the accept goroutine (run).
	spare int // -1 when none is held
	fd    int // accept4's result, kept here for the callback
	err   error
	try   func(fd uintptr) bool
	now   bool // fail with EAGAIN instead of waiting
}

func newUnixAcceptor(ln *net.UnixListener) (*unixAcceptor, error) {
	fd, err := sock.DupConn(ln)
	if err != nil {
		return nil, err
	}
	// Non-blocking, as ln's is (the flag is the socket's, shared by
	// both), which makes os.NewFile register it with the poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("xpc: set non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), "xpc-listener")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	a := &unixAcceptor{ln: ln, f: f, rc: rc, stop: make(chan struct{}), spare: -1}
	a.try = a.tryAccept
	return a, nil
}

// openSpare takes the spare descriptor, if it has none and one is to be
// had.
func (a *unixAcceptor) openSpare() {
	if a.spare >= 0 {
		return
	}
	if fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		a.spare = fd
	}
}

// close stops run and closes the socket; it is idempotent.
func (a *unixAcceptor) close() {
	a.stopOnce.Do(func() {
		close(a.stop)
		a.f.Close()
		a.ln.Close()
	})
}

// run accepts clients and hands each one's socket to admit, until close.
// It never spins: an error backs it off, and running out of descriptors
// also sheds one waiting client.
func (a *unixAcceptor) run(admit func(fd int)) {
	// The spare is the goroutine's: a listener never activated holds none.
	a.openSpare()
	defer func() {
		if a.spare >= 0 {
			unix.Close(a.spare)
			a.spare = -1
		}
	}()
	var delay time.Duration
	for {
		fd, err := a.accept(false)
		if err == nil {
			delay = 0
			a.openSpare()
			admit(fd)
			continue
		}
		if a.closed(err) {
			return
		}
		delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
		if (errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE)) && a.shed() {
			// While there are clients to shed, shed them at the
			// shortest pace: each costs an accept and two closes.
			delay = acceptBackoffMin
		}
		t := time.NewTimer(delay)
		select {
		case <-a.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// closed reports whether err says the socket was closed (close).
func (a *unixAcceptor) closed(err error) bool {
	select {
	case <-a.stop:
		return true
	default:
	}
	return errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed)
}

// shed gives up the spare descriptor to accept one waiting client and
// closes its connection at once, then takes the spare again. It reports
// whether it shed a client.
func (a *unixAcceptor) shed() bool {
	a.openSpare() // lost to another goroutine last time?
	if a.spare < 0 {
		return false
	}
	unix.Close(a.spare)
	a.spare = -1
	fd, err := a.accept(true)
	if err == nil {
		unix.Close(fd)
	}
	a.openSpare()
	return err == nil
}

// accept takes one client off the backlog, waiting for one unless now, and
// returns its socket, close-on-exec. It calls accept4 itself rather than
// through net.UnixListener, which would need a second descriptor (a
// duplicate) for each client.
func (a *unixAcceptor) accept(now bool) (int, error) {
	a.now = now
	err := a.rc.Read(a.try)
	a.now = false
	if err != nil {
		return -1, err
	}
	if a.err != nil {
		return -1, fmt.Errorf("xpc: accept: %w", a.err)
	}
	return a.fd, nil
}

func (a *unixAcceptor) tryAccept(fd uintptr) bool {
	for {
		// The listening socket is non-blocking: accept4 never waits.
		// Called raw, without an address (x/sys's Accept4 fails for a
		// client socket that has none, as a socket pair's end has not).
		r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, fd, 0, 0, unix.SOCK_CLOEXEC, 0, 0)
		a.fd, a.err = int(r), nil
		if e != 0 {
			a.fd, a.err = -1, e
		}
		// ECONNABORTED: a client that gave up before accept.
		if a.err != unix.EINTR && a.err != unix.ECONNABORTED {
			break
		}
	}
	return a.now || a.err != unix.EAGAIN
}
