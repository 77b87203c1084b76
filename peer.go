package xpc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Peer is the identity of the process at the other end of a connection, as
// the kernel attested it when the connection was made (SO_PEERCRED), never
// as the peer described itself.
//
// The pid alone can be recycled once the peer exits; the pidfd cannot. Peer
// holds a pidfd (SO_PEERPIDFD, Linux 6.5 and later) that always refers to
// the original process: Alive and Signal go through it, so they can never
// reach an unrelated process that inherited the pid. On older kernels Peer
// falls back to pidfd_open(pid) right after reading the credentials, which
// leaves a short window in which a recycled pid could be picked up;
// PIDFDFromKernel reports which was used.
type Peer struct {
	PID int
	UID uint32
	GID uint32
	// Exe is the peer's executable path (/proc/PID/exe), read after the
	// pidfd was taken and checked against it, or "" if the process had
	// already exited or the path could not be read.
	Exe string
	// PIDFDFromKernel is true when the pidfd came from SO_PEERPIDFD.
	PIDFDFromKernel bool

	mu    sync.Mutex
	pidfd int // -1 when none
}

// peerOf reads the identity of the process that created the socket at the
// other end of fd.
func peerOf(fd int) (*Peer, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return nil, fmt.Errorf("xpc: SO_PEERCRED: %w", err)
	}
	pidfd := -1
	if pfd, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEERPIDFD); err == nil {
		pidfd = pfd
	}
	return newPeer(cred, pidfd), nil
}

// newPeer builds a Peer from kernel-given credentials and, if pidfd >= 0, a
// kernel-given pidfd for the same process, which it takes over. Without one
// it falls back to pidfd_open.
func newPeer(cred *unix.Ucred, pidfd int) *Peer {
	// Every pidfd is close-on-exec from birth: SO_PEERPIDFD's and
	// SCM_PIDFD's (received with MSG_CMSG_CLOEXEC) as pidfd_open's.
	p := &Peer{PID: int(cred.Pid), UID: cred.Uid, GID: cred.Gid, pidfd: -1}
	if pidfd >= 0 {
		p.pidfd = pidfd
		p.PIDFDFromKernel = true
	} else if pfd, err := unix.PidfdOpen(p.PID, 0); err == nil {
		p.pidfd = pfd
	}
	if p.pidfd >= 0 {
		exe, err := os.Readlink("/proc/" + strconv.Itoa(p.PID) + "/exe")
		// The path belongs to the peer only if the pidfd's process was
		// still alive after it was read.
		if err == nil && p.Alive() {
			p.Exe = exe
		}
	}
	return p
}

// Alive reports whether the peer process still runs, asking through its
// pidfd. It is false once the connection is closed.
func (p *Peer) Alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd < 0 {
		return false
	}
	return unix.PidfdSendSignal(p.pidfd, 0, nil, 0) == nil
}

// Signal sends sig to the peer through its pidfd, so it never reaches an
// unrelated process that reused the pid.
func (p *Peer) Signal(sig unix.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd < 0 {
		return fmt.Errorf("xpc: signal peer %d: %w", p.PID, errNoPIDFD)
	}
	if err := unix.PidfdSendSignal(p.pidfd, sig, nil, 0); err != nil {
		return fmt.Errorf("xpc: signal peer %d: %w", p.PID, err)
	}
	return nil
}

var errNoPIDFD = errors.New("no pidfd for the peer")

// PIDFD returns a close-on-exec duplicate of the peer's pidfd, owned by the
// caller.
func (p *Peer) PIDFD() (*os.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd < 0 {
		return nil, fmt.Errorf("xpc: %w", errNoPIDFD)
	}
	fd, err := unix.FcntlInt(uintptr(p.pidfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("xpc: dup pidfd: %w", err)
	}
	return os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(p.PID)), nil
}

// String describes the peer: "pid 123 uid 1000 gid 1000 /usr/bin/foo".
func (p *Peer) String() string {
	s := fmt.Sprintf("pid %d uid %d gid %d", p.PID, p.UID, p.GID)
	if p.Exe != "" {
		s += " " + p.Exe
	}
	return s
}

func (p *Peer) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
}
