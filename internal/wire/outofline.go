package wire

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// outOfLineSeals are the seals an out-of-line body's memfd carries.
const outOfLineSeals = unix.F_SEAL_WRITE | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL

// WriteOutOfLine puts a body in a new memfd, close-on-exec, sealed against
// writing, growing and shrinking, and returns its descriptor, owned by the
// caller.
func WriteOutOfLine(body []byte) (int, error) {
	fd, err := unix.MemfdCreate("xpc-body", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	for off := 0; off < len(body); {
		n, err := unix.Pwrite(fd, body[off:], int64(off))
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("write out-of-line body: %w", err)
		}
		off += n
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, outOfLineSeals); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("seal out-of-line body: %w", err)
	}
	return fd, nil
}

// ReadOutOfLine reads a body from a received memfd, refusing one larger
// than max before reading it. The memfd must be sealed against writes and
// resizing, as WriteOutOfLine leaves it: that also proves it is a memory
// file, so reading it cannot block (a file on a stuck FUSE mount could).
// The descriptor stays the caller's.
func ReadOutOfLine(fd, max int) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("out-of-line body: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errors.New("out-of-line body is not a memory file")
	}
	const need = unix.F_SEAL_WRITE | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW
	if seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0); err != nil || seals&need != need {
		return nil, errors.New("out-of-line body is not a sealed memory file")
	}
	if st.Size > int64(max) {
		return nil, fmt.Errorf("out-of-line body of %d bytes exceeds the limit of %d", st.Size, max)
	}
	b := make([]byte, st.Size)
	for off := 0; off < len(b); {
		n, err := unix.Pread(fd, b[off:], int64(off))
		if err != nil {
			return nil, fmt.Errorf("out-of-line body: %w", err)
		}
		if n == 0 {
			return nil, errors.New("out-of-line body shrank while being read")
		}
		off += n
	}
	return b, nil
}
