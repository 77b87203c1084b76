package xpcd

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openNamed opens a path a user named (a plist to bootstrap, a job's
// StandardInPath, StandardOutPath or StandardErrorPath), on a thread that
// has taken that user's identity (asUser), as os.OpenFile would, except
// that /proc's links to open files and working directories
// (/proc/self/fd/N, /dev/fd/N, /proc/PID/cwd) are not followed: the
// kernel lets xpcd's own threads follow its process's whoever they act
// as, which would reach any file xpcd has open past directories closed to
// the user. Where openat2 does not exist (before Linux 5.6) it is
// os.OpenFile.
func openNamed(path string, flag int, perm os.FileMode) (*os.File, error) {
	how := &unix.OpenHow{Flags: uint64(flag) | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS}
	if flag&os.O_CREATE != 0 {
		how.Mode = uint64(perm.Perm())
	}
	for {
		fd, err := unix.Openat2(unix.AT_FDCWD, path, how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), path), nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOSYS):
			return os.OpenFile(path, flag, perm)
		case errors.Is(err, unix.ELOOP):
			err = fmt.Errorf("%w (or a /proc link to an open file, which is not followed)", err)
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
}
