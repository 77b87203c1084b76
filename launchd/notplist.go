package launchd

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/goxpc/xpc"
)

// notPlistReason begins the reason of an input that is no property list.
const notPlistReason = "not a property list"

// notPlist is the error of data that FromPlist refused with err. A
// malformed document (xpc.ErrBadPlist) is "not a property list", with
// the parser's detail, or "JSON" for a JSON document that no plist parser
// reads (a JSON object is mostly not OpenStep text); a value with no XPC
// form, or nesting too deep, is reported where it is.
func notPlist(path string, data []byte, err error) error {
	e := &Error{File: path, Reason: err.Error(), Err: fmt.Errorf("%w: %w", ErrNotJob, err)}
	var pe *xpc.PlistError
	if !errors.As(err, &pe) {
		return e
	}
	e.Key, e.Reason = pe.Path, pe.Err.Error()
	if errors.Is(err, xpc.ErrBadPlist) && pe.Path == "" {
		detail := strings.TrimPrefix(e.Reason, xpc.ErrBadPlist.Error()+": ")
		if json.Valid(data) {
			detail = "JSON"
		}
		e.Reason = notPlistReason + ": " + strings.TrimPrefix(detail, "plist: ")
	}
	return e
}
