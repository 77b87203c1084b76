package codesign

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// racyWindow is how old a file's ctime must be before an answer about the
// file is cached. A file changed within the same tick of the kernel's
// coarse clock as an earlier change keeps its ctime, so an answer about a
// file changed that recently might be about contents it no longer has; it
// is given, not kept. (Git calls these entries racy.)
const racyWindow = time.Second

// fileKey identifies a version of a file: what fstat says of it, and its
// fs-verity digest where it has one. Any change to the contents changes
// the ctime (which no user can set); a file with fs-verity cannot change.
type fileKey struct {
	kind   uint8 // keyNone, keyFile, keyAbsent
	mode   uint16
	uid    uint32
	dev    uint64
	ino    uint64
	size   int64
	mtime  unix.StatxTimestamp
	ctime  unix.StatxTimestamp
	verity [2 + 64]byte // algorithm, digest (zero: no fs-verity)
}

const (
	keyNone   = iota // no file was looked at
	keyFile          // a file, as keyed
	keyAbsent        // no file of that name
)

const statxMask = unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_UID | unix.STATX_INO | unix.STATX_SIZE |
	unix.STATX_MTIME | unix.STATX_CTIME

// fromStatx keys what statx returned.
func fromStatx(st *unix.Statx_t) fileKey {
	return fileKey{
		kind:  keyFile,
		mode:  st.Mode,
		uid:   st.Uid,
		dev:   uint64(st.Dev_major)<<32 | uint64(st.Dev_minor),
		ino:   st.Ino,
		size:  int64(st.Size),
		mtime: st.Mtime,
		ctime: st.Ctime,
	}
}

// statFile keys the open file f, with its fs-verity digest if it has one.
func statFile(f *os.File) (fileKey, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return fileKey{}, err
	}
	var k fileKey
	var serr error
	err = rc.Control(func(fd uintptr) {
		var st unix.Statx_t
		if serr = unix.Statx(int(fd), "", unix.AT_EMPTY_PATH|unix.AT_STATX_SYNC_AS_STAT, statxMask, &st); serr != nil {
			return
		}
		k = fromStatx(&st)
		if st.Attributes_mask&st.Attributes&unix.STATX_ATTR_VERITY != 0 {
			k.verity, serr = measureVerity(int(fd))
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fileKey{}, fmt.Errorf("fstat: %w", err)
	}
	return k, nil
}

// statPath keys the file at path, without following a final symbolic
// link: keyAbsent if there is none.
func statPath(path string) (fileKey, error) { return statName(path, unix.AT_SYMLINK_NOFOLLOW) }

// statFollow keys the file at path, following symbolic links: keyAbsent
// if there is none.
func statFollow(path string) (fileKey, error) { return statName(path, 0) }

func statName(path string, flags int) (fileKey, error) {
	var st unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, flags|unix.AT_STATX_SYNC_AS_STAT, statxMask, &st)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return fileKey{kind: keyAbsent}, nil
	}
	if err != nil {
		return fileKey{}, err
	}
	return fromStatx(&st), nil
}

// regular reports whether k is a regular file.
func (k fileKey) regular() bool { return k.kind == keyFile && k.mode&unix.S_IFMT == unix.S_IFREG }

// stableAt reports whether k, looked at no earlier than t, may be cached:
// it cannot change (fs-verity), or it last changed more than racyWindow
// before t, so that any later change gives it another ctime.
func (k fileKey) stableAt(t time.Time) bool {
	if k.kind != keyFile || k.verity != [len(k.verity)]byte{} {
		return true
	}
	changed := time.Unix(k.ctime.Sec, int64(k.ctime.Nsec))
	return changed.Before(t.Add(-racyWindow))
}

// fsverityDigest is struct fsverity_digest with room for a SHA-512 digest.
type fsverityDigest struct {
	alg    uint16
	size   uint16
	digest [64]byte
}

// measureVerity returns the file's fs-verity algorithm and digest
// (FS_IOC_MEASURE_VERITY).
func measureVerity(fd int) ([2 + 64]byte, error) {
	var out [2 + 64]byte
	d := fsverityDigest{size: 64}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.FS_IOC_MEASURE_VERITY, uintptr(unsafe.Pointer(&d)))
	if errno != 0 {
		return out, fmt.Errorf("measuring fs-verity: %w", errno)
	}
	out[0], out[1] = byte(d.alg), byte(d.alg>>8)
	copy(out[2:], d.digest[:min(int(d.size), 64)])
	return out, nil
}
