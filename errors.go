package xpc

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of malformed input, reported inside a *DecodeError and testable with
// errors.Is.
var (
	ErrTruncated     = errors.New("truncated input")
	ErrBadMagic      = errors.New("bad magic")
	ErrBadVersion    = errors.New("unsupported version")
	ErrUnknownType   = errors.New("unknown type tag")
	ErrTooDeep       = errors.New("nesting too deep")
	ErrTooLarge      = errors.New("too large")
	ErrBadLength     = errors.New("length does not match contents")
	ErrBadString     = errors.New("malformed string")
	ErrBadKey        = errors.New("malformed dictionary key")
	ErrDuplicateKey  = errors.New("duplicate dictionary key")
	ErrBadValue      = errors.New("malformed value")
	ErrBadPadding    = errors.New("non-zero padding")
	ErrTrailingBytes = errors.New("trailing bytes")
	ErrAttachments   = errors.New("out-of-band objects do not match the body")
)

// DecodeError reports malformed input: what is wrong and the byte offset
// where it was found. errors.Is(err, ErrTruncated) and the like test its kind.
type DecodeError struct {
	Offset int    // byte offset in the input given to the decoder
	Err    error  // one of the Err* kinds above
	Detail string // more about the problem, or ""
}

func (e *DecodeError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("xpc: decode: %v at offset %d (0x%x)", e.Err, e.Offset, e.Offset)
	}
	return fmt.Sprintf("xpc: decode: %v at offset %d (0x%x): %s", e.Err, e.Offset, e.Offset, e.Detail)
}

// Unwrap returns the kind.
func (e *DecodeError) Unwrap() error { return e.Err }

// ErrNilObject is the kind of a nil object where a value belongs, reported
// inside an *EncodeError. A string that cannot be encoded (not valid UTF-8,
// or holding a NUL byte) is ErrBadString, as when decoding.
var ErrNilObject = errors.New("nil object")

// errStringNotValid is the error of a string that cannot be encoded: it is
// ErrBadString, the kind a decoder reports for the same string.
var errStringNotValid = fmt.Errorf("%w: not valid UTF-8, or holds a NUL byte", ErrBadString)

// EncodeError reports an object that cannot be encoded and where it is.
type EncodeError struct {
	Path string // where in the value: "" for the root, "a.b[3]" below it
	Err  error
}

func (e *EncodeError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("xpc: encode: %v", e.Err)
	}
	return fmt.Sprintf("xpc: encode: %s: %v", e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *EncodeError) Unwrap() error { return e.Err }

// causeText is the text of err, the cause of an error of this package, as
// that error shows it: without the "xpc: " that an error of this package
// starts with, on each of its lines (errors.Join puts one error a line),
// so that the package is named once.
func causeText(err error) string {
	s := strings.TrimPrefix(err.Error(), "xpc: ")
	return strings.ReplaceAll(s, "\nxpc: ", "\n")
}
