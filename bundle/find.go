package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxFindDepth is how many directories above an executable Find looks at
// for a bundle's root: enough for a service of the Contents layout
// (ROOT/Contents/XPCServices/N.xpc/Contents/MacOS/X) and a main
// executable a few directories down (ROOT/lib/app/bin/X).
const maxFindDepth = 8

// Find returns the root of the application bundle whose main executable
// or XPC service executable is exe, an absolute path such as
// /proc/PID/exe gives. It looks at the directories above exe, nearest
// first and at most eight, for one with Info.plist or Contents/Info.plist,
// skipping directories named Contents, MacOS, XPCServices or NAME.xpc
// (parts of a bundle, never its root); it Reads each such bundle and
// returns the first whose main executable or one of whose services'
// executables is exe: the same cleaned path, and the same file
// (os.SameFile, by device and inode).
//
// The error wraps ErrNotBundle when no bundle claims exe. When a
// directory above exe looked like a bundle but did not Read, the nearest
// such error (wrapping ErrBadBundle) is returned instead, so that a broken
// bundle is not mistaken for no bundle.
func Find(exe string) (string, error) {
	if !filepath.IsAbs(exe) {
		return "", &Error{Path: exe, Err: fmt.Errorf("%w: not an absolute path", ErrNotBundle)}
	}
	fi, err := os.Lstat(exe)
	if err != nil {
		return "", &Error{Path: exe, Err: err}
	}
	return FindFile(exe, fi)
}

// FindFile is Find for a running program, whose executable's path may
// have been replaced since it started: fi describes the file the program
// runs (os.Stat of /proc/PID/exe, which reaches that very file), and exe
// is its path (os.Readlink of /proc/PID/exe). The bundle's executable at
// exe must be the file fi describes.
func FindFile(exe string, fi fs.FileInfo) (string, error) {
	b, err := FindBundle(exe, fi)
	if err != nil {
		return "", err
	}
	return b.Root, nil
}

// FindBundle is FindFile returning the bundle as it was read while
// looking, so that the caller does not read it again (and see another
// bundle, if it changed meanwhile).
func FindBundle(exe string, fi fs.FileInfo) (*Bundle, error) {
	if !filepath.IsAbs(exe) {
		return nil, &Error{Path: exe, Err: fmt.Errorf("%w: not an absolute path", ErrNotBundle)}
	}
	exe = filepath.Clean(exe)
	if fi == nil || !fi.Mode().IsRegular() {
		return nil, &Error{Path: exe, Err: fmt.Errorf("%w: not a regular file", ErrNotBundle)}
	}
	var firstBad error
	dir := exe
	for range maxFindDepth {
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
		if notRoot(filepath.Base(dir)) || !looksLikeBundle(dir) {
			continue
		}
		b, err := Read(dir)
		if err != nil {
			if firstBad == nil && errors.Is(err, ErrBadBundle) {
				firstBad = err
			}
			continue
		}
		if b.claims(exe, fi) {
			return b, nil
		}
	}
	if firstBad != nil {
		return nil, firstBad
	}
	return nil, &Error{Path: exe, Err: fmt.Errorf("%w: no bundle above it has it as its executable or a service's", ErrNotBundle)}
}

// notRoot reports whether a directory of this name is a part of a bundle
// rather than the root of one.
func notRoot(name string) bool {
	switch name {
	case "Contents", "MacOS", "XPCServices":
		return true
	}
	return strings.HasSuffix(name, ".xpc")
}

// looksLikeBundle reports whether dir holds either layout's Info.plist,
// without following a link.
func looksLikeBundle(dir string) bool {
	for _, p := range []string{"Info.plist", "Contents/Info.plist"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			return true
		}
	}
	return false
}

// claims reports whether exe, whose Lstat is fi, is b's main executable
// or a service's.
func (b *Bundle) claims(exe string, fi os.FileInfo) bool {
	same := func(p string) bool {
		if p != exe {
			return false
		}
		pi, err := os.Lstat(p)
		return err == nil && os.SameFile(fi, pi)
	}
	if same(b.Executable) {
		return true
	}
	for _, s := range b.Services {
		if same(s.Executable) {
			return true
		}
	}
	return false
}
