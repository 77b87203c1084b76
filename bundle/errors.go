package bundle

import "errors"

// The kinds of error Read, Find and Identify return, inside an *Error and
// testable with errors.Is.
var (
	// ErrNotBundle: the directory is not an application bundle: neither
	// layout's Info.plist is there.
	ErrNotBundle = errors.New("not an application bundle")
	// ErrBadBundle: the directory is an application bundle, but something
	// in it breaks the rules: a missing or invalid key, an executable
	// outside the bundle or that is a symbolic link, a symbolic link or
	// FIFO where a property list belongs, too many services, a bad
	// signature.
	ErrBadBundle = errors.New("malformed application bundle")
)

// Error is a problem with a bundle, naming the file or directory at fault.
type Error struct {
	Path string // the file or directory at fault
	// Err wraps ErrNotBundle or ErrBadBundle and says why, or is an error
	// of the file system (fs.ErrNotExist, fs.ErrPermission, ...).
	Err error
}

// Error returns "bundle: Path: Err".
func (e *Error) Error() string { return "bundle: " + e.Path + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }
