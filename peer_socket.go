package xpc

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// PeerOfSocket returns the identity of the process at the other end of the
// AF_UNIX socket f as the kernel recorded it: for an end of a socket pair,
// the process that made the pair (socketpair(2)), whoever holds the ends
// now; for a connected socket, the process at the other end when the
// connection was made. It is what a service reads from a socket xpcd hands
// it, and what xpcd reads to check who made a socket it is given.
//
// The pidfd comes from the kernel (SO_PEERPIDFD) and refers to that process
// even if its pid is used again. If the process has exited, PeerOfSocket
// fails (errors.Is(err, unix.ESRCH) on kernels that say so), rather than
// open a pidfd by pid, which could name another process. Only on kernels
// without SO_PEERPIDFD (before 6.5) is the pidfd opened by pid, as for a
// connection (Peer.PIDFDFromKernel is false then).
//
// The caller owns the Peer's pidfd: Close it when done.
func PeerOfSocket(f *os.File) (*Peer, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("xpc: peer of socket: %w", err)
	}
	var cred *unix.Ucred
	var credErr, pidfdErr error
	pidfd := -1
	if err := rc.Control(func(fd uintptr) {
		if cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); credErr != nil {
			return
		}
		pidfd, pidfdErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	}); err != nil {
		return nil, fmt.Errorf("xpc: peer of socket: %w", err)
	}
	switch {
	case credErr != nil:
		return nil, fmt.Errorf("xpc: peer of socket: SO_PEERCRED: %w", credErr)
	case pidfdErr == nil:
		return newPeer(cred, pidfd), nil
	case errors.Is(pidfdErr, unix.ENOPROTOOPT):
		// A kernel without SO_PEERPIDFD.
		return newPeer(cred, -1), nil
	}
	return nil, fmt.Errorf("xpc: peer of socket: SO_PEERPIDFD (pid %d): %w", cred.Pid, pidfdErr)
}

// Close releases the Peer's pidfd. A Peer of a connection belongs to the
// connection, which closes it; Close is for a Peer the caller owns, such as
// PeerOfSocket's. After Close, Alive is false and Signal and PIDFD fail.
func (p *Peer) Close() { p.close() }
