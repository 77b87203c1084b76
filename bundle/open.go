package bundle

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/goxpc/xpc/internal/fskind"

	"golang.org/x/sys/unix"
)

// dir is an open directory of the bundle, and its absolute path.
type dir struct {
	f    *os.File
	path string
}

func (d *dir) close() { d.f.Close() }

func (d *dir) join(rel string) string { return d.path + "/" + rel }

// openRoot opens the bundle's root directory, following symbolic links in
// the path as given: the root is what the caller named. /proc's links to
// open files and working directories (/proc/PID/fd/N, /dev/fd/N,
// /proc/self/cwd) are not followed: they lead to a directory without the
// permission checks of the path to it, and a thread acting as a user in
// a privileged process (a root xpcd reading a user's bundle with their
// rights) may follow its own process's, reaching whatever it has open.
func openRoot(path string) (*dir, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOSYS) {
		// Before Linux 5.6 there is no openat2; nor, then, this
		// protection.
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			err = fmt.Errorf("%w (or a /proc link to an open file, which is not followed)", err)
		}
		return nil, &Error{Path: path, Err: fsErr("open", err)}
	}
	return &dir{f: os.NewFile(uintptr(fd), path), path: path}, nil
}

// fsErr wraps an error of the file system with what failed; an errno
// still matches the fs sentinel it stands for (fs.ErrNotExist, ...).
func fsErr(op string, err error) error {
	return fmt.Errorf("%s: %w", op, err)
}

// walk opens the directories of rel (relative to d, clean) one element at
// a time, none of them a symbolic link, and returns the directory holding
// rel's last element, and that element. The caller closes the directory.
func (d *dir) walk(rel string) (parent *os.File, last string, err error) {
	elems := strings.Split(rel, "/")
	fd := int(d.f.Fd())
	cur := -1
	for i, e := range elems[:len(elems)-1] {
		nfd, err := unix.Openat(fd, e, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if cur >= 0 {
			unix.Close(cur)
		}
		if err != nil {
			return nil, "", d.elemErr(strings.Join(elems[:i+1], "/"), err, true)
		}
		cur, fd = nfd, nfd
	}
	if cur < 0 {
		// Dup so that the caller always closes what it gets.
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, "", &Error{Path: d.path, Err: fsErr("dup", err)}
		}
		cur = nfd
	}
	return os.NewFile(uintptr(cur), d.path), elems[len(elems)-1], nil
}

// elemErr explains why the element rel of d could not be opened. ELOOP
// and ENOTDIR on an O_NOFOLLOW open mean a symbolic link (or a file where
// a directory belongs): the bundle is malformed.
func (d *dir) elemErr(rel string, err error, wantDir bool) error {
	p := d.join(rel)
	switch {
	case errors.Is(err, unix.ELOOP):
		return &Error{Path: p, Err: fmt.Errorf("%w: a symbolic link (links are not followed inside a bundle)", ErrBadBundle)}
	case errors.Is(err, unix.ENOTDIR) && wantDir:
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return &Error{Path: p, Err: fmt.Errorf("%w: a symbolic link (links are not followed inside a bundle)", ErrBadBundle)}
		}
		return &Error{Path: p, Err: fmt.Errorf("%w: not a directory", ErrBadBundle)}
	}
	return &Error{Path: p, Err: fsErr("open", err)}
}

// openDir opens the directory rel of d, following no symbolic link.
func (d *dir) openDir(rel string) (*dir, error) {
	parent, last, err := d.walk(rel)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), last, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, d.elemErr(rel, err, true)
	}
	p := d.join(rel)
	return &dir{f: os.NewFile(uintptr(fd), p), path: p}, nil
}

// exists reports whether rel names something in d (a symbolic link
// counts), without following links.
func (d *dir) exists(rel string) (bool, error) {
	parent, last, err := d.walk(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	defer parent.Close()
	var st unix.Stat_t
	err = unix.Fstatat(int(parent.Fd()), last, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	}
	return false, &Error{Path: d.join(rel), Err: fsErr("stat", err)}
}

// readFile reads the regular file rel of d, at most limit bytes, following
// no symbolic link and never waiting on a FIFO.
func (d *dir) readFile(rel string, limit int64) ([]byte, error) {
	f, err := d.openFile(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := d.join(rel)
	fi, err := f.Stat()
	if err != nil {
		return nil, &Error{Path: p, Err: err}
	}
	if fi.Size() > limit {
		return nil, &Error{Path: p, Err: fmt.Errorf("%w: %w", ErrBadBundle, tooLarge(limit))}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &Error{Path: p, Err: err}
	}
	if int64(len(data)) > limit {
		return nil, &Error{Path: p, Err: fmt.Errorf("%w: %w", ErrBadBundle, tooLarge(limit))}
	}
	return data, nil
}

// openFile opens the regular file rel of d for reading, following no
// symbolic link (O_NOFOLLOW on every element) and never waiting on a FIFO
// (O_NONBLOCK; a FIFO is refused before any read).
func (d *dir) openFile(rel string) (*os.File, error) {
	parent, last, err := d.walk(rel)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	p := d.join(rel)
	fd, err := unix.Openat(int(parent.Fd()), last, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, d.elemErr(rel, err, false)
	}
	f := os.NewFile(uintptr(fd), p)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &Error{Path: p, Err: err}
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &Error{Path: p, Err: fmt.Errorf("%w: not a regular file (%s)", ErrBadBundle, fskind.Of(fi.Mode()))}
	}
	return f, nil
}

// checkExecutable checks that rel of d is a regular file, not a symbolic
// link, that someone may execute, and returns its absolute path.
func (d *dir) checkExecutable(rel string) (string, error) {
	parent, last, err := d.walk(rel)
	if err != nil {
		if isNotExist(err) {
			return "", &Error{Path: d.join(rel), Err: fmt.Errorf("%w: executable missing", ErrBadBundle)}
		}
		return "", err
	}
	defer parent.Close()
	p := d.join(rel)
	var st unix.Stat_t
	if err := unix.Fstatat(int(parent.Fd()), last, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return "", &Error{Path: p, Err: fmt.Errorf("%w: executable missing", ErrBadBundle)}
		}
		return "", &Error{Path: p, Err: fsErr("stat", err)}
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return "", &Error{Path: p, Err: fmt.Errorf("%w: the executable is a symbolic link", ErrBadBundle)}
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return "", &Error{Path: p, Err: fmt.Errorf("%w: the executable is not a regular file", ErrBadBundle)}
	case st.Mode&0o111 == 0:
		return "", &Error{Path: p, Err: fmt.Errorf("%w: the executable has no execute permission", ErrBadBundle)}
	}
	return p, nil
}

// tooLarge is readFile's error for a file larger than its limit, in bytes.
type tooLarge int64

func (t tooLarge) Error() string { return fmt.Sprintf("larger than %d bytes", int64(t)) }
