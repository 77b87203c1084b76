package launchd

import (
	"errors"
	"strconv"
	"strings"
)

// The kinds of error Parse, Load and FromDictionary report, each inside an
// *Error and testable with errors.Is.
var (
	// ErrBadFile: the file cannot be used as a job definition: it is not a
	// regular file, or it is larger than MaxFileSize. (Errors from the file
	// system itself, such as fs.ErrNotExist, are wrapped as they are.)
	ErrBadFile = errors.New("unusable job file")
	// ErrNotJob: the input is not a job definition: not a property list
	// (empty, JSON, junk, or OpenStep text that is not a dictionary: the
	// reason begins "not a property list"), or its root is not a
	// dictionary. The property-list parser's error (xpc.ErrBadPlist) is
	// wrapped beside it.
	ErrNotJob = errors.New("not a launchd.plist")
	// ErrMissingKey: a required key is absent (Label; Program,
	// ProgramArguments or BundleProgram).
	ErrMissingKey = errors.New("missing key")
	// ErrBadType: a value has the wrong property-list type, such as a
	// string where a bool belongs.
	ErrBadType = errors.New("wrong type")
	// ErrValueNotAllowed: a value has the right type but is not allowed,
	// such as a relative path, a negative interval or an unknown
	// ProcessType.
	ErrValueNotAllowed = errors.New("value not allowed")
)

// Error is one problem with a job definition. Its message names the file,
// the key and the reason:
//
//	/Library/LaunchDaemons/com.example.foo.plist: KeepAlive.SuccessfulExit: want bool, have string
//
// Key is a path into the document: dictionary keys joined by dots, array
// indexes in brackets ("StartCalendarInterval[1].Hour"). A key that is empty
// or holds white space or control characters is quoted
// (`EnvironmentVariables."A B"`). Key is empty for a problem with the whole
// document, File is empty when the job did not come from a file.
type Error struct {
	File   string // the file, as given to Parse or Load
	Key    string // where in the document, "" for the whole document
	Reason string // what is wrong, for a human
	// Err is the kind (ErrBadType, ...). For ErrNotJob and file-system
	// failures it also wraps the underlying error.
	Err error
}

// Error returns "File: Key: Reason", leaving out an empty File or Key.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns the kind, so errors.Is(err, ErrBadType) works.
func (e *Error) Unwrap() error { return e.Err }

// Errors returns the *Error values inside err: err itself, or each of the
// errors Parse joined. It returns nil when err holds none.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *Error:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

// Warning reports a key that was read but has no effect: a key launchd does
// not know, one launchd deprecated, or one launchd supports and goxpc does
// not (yet); or a valid value that is probably a mistake (ExitTimeOut 0).
// Warnings never stop a job from loading; a tool should show them to the
// user.
type Warning struct {
	Key    string // a path into the document, as in Error
	Reason string
}

// String returns "Key: Reason".
func (w Warning) String() string { return w.Key + ": " + w.Reason }

// keyPath builds the Key of an Error or Warning.
type keyPath string

// dot appends a dictionary key.
func (p keyPath) dot(key string) keyPath {
	if key == "" || strings.IndexFunc(key, needsQuote) >= 0 {
		key = strconv.Quote(key)
	}
	if p == "" {
		return keyPath(key)
	}
	return p + "." + keyPath(key)
}

// index appends an array index.
func (p keyPath) index(i int) keyPath {
	return p + "[" + keyPath(strconv.Itoa(i)) + "]"
}

func needsQuote(r rune) bool {
	return r == '"' || !isGraphic(r)
}
