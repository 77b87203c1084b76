package xpcd

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
)

// ErrPassedSocket is the kind of error for a bootstrap socket passed in
// (Config.Listener) that xpcd cannot serve: not a listening AF_UNIX
// SOCK_SEQPACKET socket, bound elsewhere than the instance's socket path,
// or open to more users than xpcd would let connect.
var ErrPassedSocket = errors.New("unusable passed socket")

// listen returns the bootstrap socket's listener: a new socket at the
// instance's path, with mode sockMode, or the one passed in, checked.
func (s *server) listen(sockMode os.FileMode) (*xpc.Listener, error) {
	if s.passed == nil {
		return xpc.ListenUnix(s.paths.Socket, sockMode, connOptions()...)
	}
	l, err := xpc.NewListenerFromFile(s.passed, connOptions()...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPassedSocket, err)
	}
	if err := checkPassed(s.passed, s.paths.Socket, sockMode); err != nil {
		l.Cancel()
		return nil, err
	}
	return l, nil
}

// checkPassed checks that f, a listening AF_UNIX socket, is bound to path,
// and that the file at path grants no one a permission that mode, the mode
// xpcd would give a socket it made, does not: the socket's mode is what
// keeps other users from a --user instance.
func checkPassed(f *os.File, path string, mode os.FileMode) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrPassedSocket, f.Name(), err)
	}
	var sa unix.Sockaddr
	serr := rc.Control(func(fd uintptr) { sa, err = unix.Getsockname(int(fd)) })
	if err = errors.Join(serr, err); err != nil {
		return fmt.Errorf("%w: %s: getsockname: %w", ErrPassedSocket, f.Name(), err)
	}
	name := ""
	if ua, ok := sa.(*unix.SockaddrUnix); ok {
		name = ua.Name
	}
	if name != path {
		return fmt.Errorf("%w: %s is bound to %q, not to the instance's socket %s", ErrPassedSocket, f.Name(), name, path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrPassedSocket, f.Name(), err)
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%w: %s is not a socket", ErrPassedSocket, path)
	}
	if extra := st.Mode().Perm() &^ mode.Perm(); extra != 0 {
		return fmt.Errorf("%w: %s has mode %v, which grants %v beyond xpcd's %v", ErrPassedSocket, path, st.Mode().Perm(), extra, mode.Perm())
	}
	return nil
}
