package xpc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

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
//
// Requirement.Check reads what it needs beyond the credentials (the
// executable, groups, cgroup) through the peer's /proc/PID directory,
// opened by the first check that needs it and kept only if the pidfd's
// process had not been reaped by then: it is that process's directory even
// if the pid is given again. Exe, read at connect, is for display; a check
// reads the executable again.
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

	mu     sync.Mutex
	pidfd  int // -1 when none
	procfd int // /proc/PID, opened by the first Check that needs it; -1 when none

	// passed is what the last Check examined of the executable if it
	// passed, nil if it failed or none was made: what exeChanged compares
	// with.
	passed atomic.Pointer[exeRecord]
	// verifier checks signatures and digests for Check; nil means
	// defaultVerifier. Tests put a fake here.
	verifier exeVerifier
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
	p := &Peer{PID: int(cred.Pid), UID: cred.Uid, GID: cred.Gid, pidfd: -1, procfd: -1}
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
	if p.procfd >= 0 {
		unix.Close(p.procfd)
		p.procfd = -1
	}
}

// errPeerExited is the cause of a failed clause that needs /proc when the
// peer process has exited.
var errPeerExited = errors.New("the peer process has exited")

// exeID is what tells one executable file from another: the file's
// identity, and its size and change time, which a write to it moves.
type exeID struct {
	dev, ino          uint64
	size              int64
	ctimeSec, ctimeNs int64
}

// exeRecord is what a Check that passed examined of the executable.
type exeRecord struct {
	id       exeID
	examined bool // false: the requirement was met without looking at it
}

func exeIDOf(st *unix.Stat_t) exeID {
	return exeID{dev: st.Dev, ino: st.Ino, size: st.Size, ctimeSec: st.Ctim.Sec, ctimeNs: st.Ctim.Nsec}
}

// procDirLocked returns p's /proc/PID directory (O_PATH), opening it on
// first use. It is kept only if the pidfd's process had not been reaped
// once it was open, so it is that process's directory and no other's:
// once the process is reaped, every lookup through it fails, even if the
// pid is used again. Opening it at the first Check rather than at connect
// costs a connection without a requirement nothing. p.mu is held.
func (p *Peer) procDirLocked() (int, error) {
	if p.procfd >= 0 {
		return p.procfd, nil
	}
	if p.pidfd < 0 {
		return -1, errNoPIDFD
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(p.PID), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, p.procErrLocked("", err)
	}
	// ESRCH: reaped; EPERM only says that the process exists.
	if err := unix.PidfdSendSignal(p.pidfd, 0, nil, 0); err == unix.ESRCH {
		unix.Close(fd)
		return -1, errPeerExited
	}
	p.procfd = fd
	return fd, nil
}

// exitedLocked reports whether the pidfd's process has exited (its pidfd
// is readable then, zombie or reaped). p.mu is held.
func (p *Peer) exitedLocked() bool {
	if p.pidfd < 0 {
		return true
	}
	fds := []unix.PollFd{{Fd: int32(p.pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// procErrLocked is the cause to give for err, met reading name in p's
// /proc directory: errPeerExited if the process has exited, else err.
// p.mu is held.
func (p *Peer) procErrLocked(name string, err error) error {
	if p.exitedLocked() {
		return errPeerExited
	}
	return fmt.Errorf("/proc/%d/%s: %w", p.PID, name, err)
}

// openExe opens the peer's executable file through its /proc directory
// (O_PATH: it needs no read permission, and it is the file even if
// another has replaced it on disk), and reads the path it was run from.
// stable is false if the peer executed another program meanwhile, so
// that the path may not be the file's.
func (p *Peer) openExe() (x exeFact, stable bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dir, err := p.procDirLocked()
	if err != nil {
		return exeFact{}, false, err
	}
	fd, err := unix.Openat(dir, "exe", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return exeFact{}, false, p.procErrLocked("exe", err)
	}
	var st, now unix.Stat_t
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, "exe", buf)
	if err == nil && n == len(buf) {
		err = unix.ENAMETOOLONG
	}
	if err == nil {
		err = unix.Fstat(fd, &st)
	}
	if err == nil {
		err = unix.Fstatat(dir, "exe", &now, 0)
	}
	if err != nil {
		unix.Close(fd)
		return exeFact{}, false, p.procErrLocked("exe", err)
	}
	x = exeFact{path: string(buf[:n]), id: exeIDOf(&st), fd: fd}
	return x, exeIDOf(&now) == x.id, nil
}

// openProcFile opens name in the peer's /proc directory for reading.
func (p *Peer) openProcFile(name string) (*os.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dir, err := p.procDirLocked()
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, p.procErrLocked(name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// exited says, after something was read from the peer's /proc directory,
// whether it may have come from a process that had exited: such a fact is
// refused.
func (p *Peer) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitedLocked()
}

// exeChanged reports whether the peer's executable is another file than
// the one the last Check examined (or the same file changed since): the
// peer executed another program, or its program was rewritten. It is
// false when that Check passed without examining the executable, and true
// when it failed or none was made, so that a Check is made. It costs one
// fstatat of /proc/PID/exe, the floor of any look at the executable. An
// error means the executable can no longer be looked at (the peer has
// exited, the connection is closed): Check again to fail with the cause.
// Safe for concurrent use.
func (p *Peer) exeChanged() (bool, error) {
	if p == nil {
		return true, errNoPeer
	}
	rec := p.passed.Load()
	if rec == nil {
		return true, nil
	}
	if !rec.examined {
		return false, nil
	}
	var st unix.Stat_t
	p.mu.Lock()
	err := errNoPIDFD
	if p.procfd >= 0 {
		err = unix.Fstatat(p.procfd, "exe", &st, 0)
	}
	p.mu.Unlock()
	if err != nil {
		return true, fmt.Errorf("xpc: executable of peer %d: %w", p.PID, err)
	}
	return exeIDOf(&st) != rec.id, nil
}
