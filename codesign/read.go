package codesign

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"aead.dev/minisign"
	"golang.org/x/sys/unix"
)

// Where signatures are kept.
const (
	// XattrName is the extended attribute that holds a file's signature.
	// It wins over a signature file beside the file.
	XattrName = "user.xpc.minisig"
	// Suffix names the signature file beside a file: FILE.minisig.
	Suffix = ".minisig"
	// MaxSignatureSize bounds a signature, in a file or in the extended
	// attribute; a larger one is a bad signature, and is not read.
	MaxSignatureSize = 2048
)

// errAbsent: there is no file (or attribute) where one was looked for.
var errAbsent = errors.New("absent")

// rawSignature is a signature as read, with where it was found.
type rawSignature struct {
	text  []byte
	xattr bool    // read from the extended attribute
	where string  // "xattr user.xpc.minisig" or the signature file's path
	file  fileKey // the signature file as it was read (keyNone for the xattr)
}

// readSignature reads f's signature: its extended attribute, or else the
// file path+Suffix if path is not "". It only reads, and reads nothing
// but a regular file of at most MaxSignatureSize bytes: it may run as
// root on files a user controls. Errors: errAbsent, or one saying
// why what is there is not a signature (for ErrBadSignature), or an I/O
// error.
func readSignature(f *os.File, path string) (rawSignature, error) {
	text, err := readXattr(f)
	if err == nil {
		return rawSignature{text: text, xattr: true, where: "xattr " + XattrName}, nil
	}
	if !errors.Is(err, errAbsent) || path == "" {
		return rawSignature{xattr: true, where: "xattr " + XattrName}, err
	}
	name := path + Suffix
	text, k, err := readSmall(name, MaxSignatureSize)
	return rawSignature{text: text, where: name, file: k}, err
}

// readXattr reads f's XattrName through its descriptor.
func readXattr(f *os.File) ([]byte, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, MaxSignatureSize+1)
	var n int
	var xerr error
	if err := rc.Control(func(fd uintptr) { n, xerr = unix.Fgetxattr(int(fd), XattrName, buf) }); err != nil {
		return nil, err
	}
	switch {
	case errors.Is(xerr, unix.ENODATA) || errors.Is(xerr, unix.ENOTSUP) || errors.Is(xerr, unix.EOPNOTSUPP):
		return nil, errAbsent
	case errors.Is(xerr, unix.ERANGE) || xerr == nil && n > MaxSignatureSize:
		return nil, badSource("larger than " + strconv.Itoa(MaxSignatureSize) + " bytes")
	case xerr != nil:
		return nil, fmt.Errorf("reading xattr %s: %w", XattrName, xerr)
	}
	return buf[:n], nil
}

// badSource is a reason that what is where a signature is kept is not one.
type badSource string

func (b badSource) Error() string { return string(b) }

// readSmall reads the regular file name, of at most limit bytes, without
// following a final symbolic link and without opening anything else: the
// name is first opened O_PATH (which opens no device and blocks on no
// FIFO), checked to be a regular file, and only then opened for reading
// through /proc/self/fd. It returns the file's key as it was read.
func readSmall(name string, limit int64) ([]byte, fileKey, error) {
	pfd, err := unix.Open(name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, fileKey{kind: keyAbsent}, errAbsent
	}
	if err != nil {
		return nil, fileKey{}, &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(pfd)
	var st unix.Statx_t
	if err := unix.Statx(pfd, "", unix.AT_EMPTY_PATH|unix.AT_STATX_SYNC_AS_STAT, statxMask, &st); err != nil {
		return nil, fileKey{}, &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	k := fromStatx(&st)
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return nil, k, badSource("a symbolic link")
	case !k.regular():
		return nil, k, badSource("not a regular file")
	case k.size > limit:
		return nil, k, badSource("larger than " + strconv.FormatInt(limit, 10) + " bytes")
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, k, &os.PathError{Op: "open", Path: name, Err: err}
	}
	rf := os.NewFile(uintptr(fd), name)
	defer rf.Close()
	b, err := io.ReadAll(io.LimitReader(rf, limit+1))
	if err != nil {
		return nil, k, err
	}
	if int64(len(b)) > limit {
		return nil, k, badSource("larger than " + strconv.FormatInt(limit, 10) + " bytes")
	}
	return b, k, nil
}

// parsed is a signature's text, parsed.
type parsed struct {
	sig    minisign.Signature
	id     Identity
	signed time.Time
}

// parseSignature parses a signature's text and its trusted comment. Only
// prehashed signatures (minisign's default) are accepted: a legacy one
// needs the whole file in memory. Its errors never quote the text.
func parseSignature(text []byte) (parsed, error) {
	var p parsed
	if err := p.sig.UnmarshalText(text); err != nil {
		return parsed{}, fmt.Errorf("does not parse: %w", err)
	}
	if p.sig.Algorithm != minisign.HashEdDSA {
		return parsed{}, errors.New("legacy (not prehashed) signature")
	}
	id, t, err := parseComment(p.sig.TrustedComment)
	if err != nil {
		return parsed{}, err
	}
	p.id, p.signed = id, t
	return p, nil
}
