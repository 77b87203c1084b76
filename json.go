package xpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Tagged JSON is a lossless JSON form of an XPC object, for people and for
// tools. Every value is a JSON object with exactly one key, the type's name
// (Type.String), holding the payload:
//
//	{"null":null}
//	{"bool":true}
//	{"int64":-5}
//	{"uint64":18446744073709551615}      exact integers, never floats
//	{"double":1.5}                       shortest form that parses back to the same bits
//	{"double":"NaN"}                     also "+Inf", "-Inf"; "NaN" is the canonical NaN (see Double)
//	{"double":"NaN(0x7ff8000000000001)"} any other NaN: its 64 bits in hex
//	{"date":1700000000000000000}         int64 nanoseconds since 1970 UTC
//	{"data":"AAEC"}                      standard base64, padded
//	{"string":"text"}
//	{"uuid":"A7DD28AC-2911-4549-811D-85917B9AC72F"}   written upper-case, read in either case
//	{"array":[{"int64":1},{"string":"x"}]}
//	{"dictionary":{"key":{"bool":true}}} keys in the dictionary's order
//	{"error":{"XPCErrorDescription":{"string":"..."}}}
//	{"fd":null}  {"shmem":null}  {"endpoint":null}
//
// A RemoteXPC message (see RemoteMessage) is {"flags":N,"id":N,"body":VALUE}, with a
// null body for a header-only message.
//
// Reading keeps the order of a dictionary's keys as the JSON document has
// them, so a decoded body printed as tagged JSON and read back encodes to
// the same bytes. Out-of-band objects are printed, but reading
// {"fd":null}, {"shmem":null} or {"endpoint":null} fails with an error
// wrapping ErrAttachments: such an object stands for a descriptor that
// travels beside the body, and JSON has no descriptor to give it. A
// placeholder object without one would only fail later, far from the input,
// when it is encoded or used.

// Kinds of malformed JSON, reported inside a *JSONError and testable with
// errors.Is. Other kinds used there: ErrBadValue (wrong JSON type for the
// payload, integer out of range, bad base64 or uuid), ErrBadString and
// ErrBadKey (NUL byte), ErrDuplicateKey, ErrTooDeep, ErrTrailingBytes and
// ErrAttachments.
var (
	ErrJSONSyntax = errors.New("invalid JSON")
	ErrNotTagged  = errors.New("not a tagged value")
)

// JSONError reports JSON input that is malformed or does not describe an
// XPC object: where it is (a path of dictionary keys and array indexes, and
// the byte offset in the input) and what is wrong.
type JSONError struct {
	Path   string // "" for the root, "CoreDevice.input.options[3]" below it
	Offset int64  // byte offset in the input where the offending token starts
	Err    error  // wraps one of the kinds listed above
}

func (e *JSONError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("xpc: json: %v at offset %d", e.Err, e.Offset)
	}
	return fmt.Sprintf("xpc: json: %s: %v at offset %d", e.Path, e.Err, e.Offset)
}

// Unwrap returns the cause.
func (e *JSONError) Unwrap() error { return e.Err }

// MarshalTaggedJSON returns obj in compact tagged JSON. Objects that cannot
// be encoded (a nil object, an invalid string) give an *EncodeError.
func MarshalTaggedJSON(obj Object) ([]byte, error) { return AppendTaggedJSON(nil, obj) }

// AppendTaggedJSON appends obj in compact tagged JSON to dst.
func AppendTaggedJSON(dst []byte, obj Object) ([]byte, error) {
	w := jsonWriter{b: dst}
	if err := w.tagged(obj); err != nil {
		return dst, err
	}
	return w.b, nil
}

// MarshalTaggedJSONIndent is MarshalTaggedJSON with each element on its own
// line, as json.MarshalIndent lays it out.
func MarshalTaggedJSONIndent(obj Object, prefix, indent string) ([]byte, error) {
	b, err := MarshalTaggedJSON(obj)
	if err != nil {
		return nil, err
	}
	return jsonIndent(b, prefix, indent)
}

// MarshalTaggedJSONMessage returns m as {"flags":N,"id":N,"body":VALUE},
// compact; the body is null when m.Body is nil.
func MarshalTaggedJSONMessage(m RemoteMessage) ([]byte, error) {
	w := jsonWriter{b: make([]byte, 0, 256)}
	w.b = append(w.b, `{"flags":`...)
	w.b = strconv.AppendUint(w.b, uint64(m.Header.Flags), 10)
	w.b = append(w.b, `,"id":`...)
	w.b = strconv.AppendUint(w.b, m.Header.ID, 10)
	w.b = append(w.b, `,"body":`...)
	if m.Body == nil {
		w.b = append(w.b, "null"...)
	} else if err := w.tagged(m.Body); err != nil {
		return nil, prefixPath(err, "body")
	}
	w.b = append(w.b, '}')
	return w.b, nil
}

func jsonIndent(b []byte, prefix, indent string) ([]byte, error) {
	var out bytes.Buffer
	if err := json.Indent(&out, b, prefix, indent); err != nil {
		return nil, err // cannot happen: the writer's output is valid JSON
	}
	return out.Bytes(), nil
}

// UnmarshalTaggedJSON reads one value in tagged JSON. Errors are *JSONError.
func UnmarshalTaggedJSON(data []byte) (Object, error) {
	r, err := newJSONReader(data)
	if err != nil {
		return nil, err
	}
	obj, err := r.tagged()
	if err != nil {
		return nil, err
	}
	return obj, r.end()
}

// UnmarshalTaggedJSONMessage reads a RemoteXPC message in the form
// MarshalTaggedJSONMessage writes. All three keys are required, in any
// order; a null body makes a header-only message. Errors are *JSONError.
func UnmarshalTaggedJSONMessage(data []byte) (RemoteMessage, error) {
	r, err := newJSONReader(data)
	if err != nil {
		return RemoteMessage{}, err
	}
	m, err := r.message()
	if err != nil {
		return RemoteMessage{}, err
	}
	return m, nil
}

// Plain JSON is the everyday form, for typing a message on a command line or
// printing one for a person. It is not lossless; the conversions are:
//
//	JSON                     XPC (FromPlainJSON)         XPC                   JSON (ToPlainJSON)
//	object                   Dictionary, in JSON order   Dictionary, error     object, in order
//	array                    Array                       Array                 array
//	string                   String                      String                string
//	integer (no . or e)      Int64, or Uint64 above      Int64, Uint64         exact integer
//	                         the int64 range
//	other number             Double                      Double                number; "NaN", "+Inf", "-Inf"
//	true, false              Bool                        Bool                  true, false
//	null                     Null                        Null                  null
//	                                                     Data                  standard base64 string
//	                                                     Date                  RFC 3339 string, UTC, ns
//	                                                     UUID                  "8-4-4-4-12" string
//	                                                     fd, shmem, endpoint   null

// FromPlainJSON converts an everyday JSON document to an XPC object by the
// table above. An integer outside both the int64 and uint64 ranges is an
// error, not a rounded double. Errors are *JSONError.
func FromPlainJSON(data []byte) (Object, error) {
	r, err := newJSONReader(data)
	if err != nil {
		return nil, err
	}
	obj, err := r.plain()
	if err != nil {
		return nil, err
	}
	return obj, r.end()
}

// ToPlainJSON converts obj to compact everyday JSON by the table above.
// Objects that cannot be written give an *EncodeError.
func ToPlainJSON(obj Object) ([]byte, error) {
	w := jsonWriter{plain: true}
	if err := w.plainValue(obj); err != nil {
		return nil, err
	}
	return w.b, nil
}
