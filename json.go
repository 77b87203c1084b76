package xpc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Tagged JSON is a lossless JSON form of an XPC object, for people and for
// tools. Every value is a JSON object with exactly one key, the type's name
// (Type.String), holding the payload:
//
//	{"null":null}
//	{"bool":true}
//	{"int64":-5}
//	{"uint64":18446744073709551615}      exact integers, never floats
//	{"double":1.5}                       shortest form that parses back to the same bits;
//	{"double":"NaN"}                     "NaN", "+Inf" and "-Inf" as strings
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

func (r *jsonReader) message() (RemoteMessage, error) {
	var m RemoteMessage
	off := r.offset()
	if err := r.delim('{', ErrNotTagged, `a message {"flags":N,"id":N,"body":VALUE}`); err != nil {
		return m, err
	}
	var seen [3]bool
	for r.dec.More() {
		koff := r.offset()
		k, err := r.key()
		if err != nil {
			return m, err
		}
		i := slices.Index(messageKeys[:], k)
		if i < 0 {
			return m, r.fail(koff, ErrNotTagged, "unknown key %q in a message: want flags, id and body", k)
		}
		if seen[i] {
			return m, r.fail(koff, ErrDuplicateKey, "%q", k)
		}
		seen[i] = true
		r.push(k)
		switch k {
		case "flags":
			var v uint64
			v, err = r.uint(32, "flags")
			m.Header.Flags = uint32(v)
		case "id":
			m.Header.ID, err = r.uint(64, "id")
		case "body":
			m.Body, err = r.messageBody()
		}
		r.pop()
		if err != nil {
			return m, err
		}
	}
	for i, name := range messageKeys {
		if !seen[i] {
			return m, r.fail(off, ErrNotTagged, "message has no %q key", name)
		}
	}
	if err := r.closeDelim(); err != nil {
		return m, err
	}
	return m, r.end()
}

var messageKeys = [3]string{"flags", "id", "body"}

func (r *jsonReader) messageBody() (Object, error) {
	if r.peekNull() {
		_, err := r.token()
		return nil, err
	}
	return r.tagged()
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

// jsonWriter appends JSON for objects. Paths for errors are added by
// prefixPath as the recursion unwinds.
type jsonWriter struct {
	b     []byte
	depth int
	plain bool
}

func (w *jsonWriter) open() error {
	w.depth++
	if w.depth > DefaultMaxDepth {
		return &EncodeError{Err: fmt.Errorf("%w: more than %d levels", ErrTooDeep, DefaultMaxDepth)}
	}
	return nil
}

func (w *jsonWriter) tag(name string) {
	w.b = append(w.b, `{"`...)
	w.b = append(w.b, name...)
	w.b = append(w.b, `":`...)
}

func (w *jsonWriter) tagged(obj Object) error {
	switch v := obj.(type) {
	case nil:
		return &EncodeError{Err: ErrNilObject}
	case Null:
		w.b = append(w.b, `{"null":null}`...)
		return nil
	case Bool:
		w.tag("bool")
		w.b = strconv.AppendBool(w.b, bool(v))
	case Int64:
		w.tag("int64")
		w.b = strconv.AppendInt(w.b, int64(v), 10)
	case Uint64:
		w.tag("uint64")
		w.b = strconv.AppendUint(w.b, uint64(v), 10)
	case Double:
		w.tag("double")
		w.double(float64(v))
	case Date:
		w.tag("date")
		w.b = strconv.AppendInt(w.b, int64(v), 10)
	case Data:
		w.tag("data")
		w.base64(v)
	case String:
		if !validCString(string(v)) {
			return &EncodeError{Err: ErrInvalidString}
		}
		w.tag("string")
		w.b = appendJSONString(w.b, string(v))
	case UUID:
		w.tag("uuid")
		w.b = appendJSONString(w.b, v.String())
	case Array:
		w.tag("array")
		if err := w.array(v, w.tagged); err != nil {
			return err
		}
	case *Dictionary:
		if v == nil {
			return &EncodeError{Err: ErrNilObject}
		}
		w.tag("dictionary")
		if err := w.dict(v, w.tagged); err != nil {
			return err
		}
	case *ErrorObject:
		if v == nil {
			return &EncodeError{Err: ErrNilObject}
		}
		w.tag("error")
		if err := w.dict(&v.Dictionary, w.tagged); err != nil {
			return err
		}
	case *FD, *SharedMemory, *Endpoint:
		w.tag(obj.Type().String())
		w.b = append(w.b, "null"...)
	default:
		return &EncodeError{Err: fmt.Errorf("unsupported object type %T", obj)}
	}
	w.b = append(w.b, '}')
	return nil
}

func (w *jsonWriter) plainValue(obj Object) error {
	switch v := obj.(type) {
	case nil:
		return &EncodeError{Err: ErrNilObject}
	case Null, *FD, *SharedMemory, *Endpoint:
		w.b = append(w.b, "null"...)
	case Bool:
		w.b = strconv.AppendBool(w.b, bool(v))
	case Int64:
		w.b = strconv.AppendInt(w.b, int64(v), 10)
	case Uint64:
		w.b = strconv.AppendUint(w.b, uint64(v), 10)
	case Double:
		w.double(float64(v))
	case Date:
		w.b = append(w.b, '"')
		w.b = v.Time().AppendFormat(w.b, time.RFC3339Nano)
		w.b = append(w.b, '"')
	case Data:
		w.base64(v)
	case String:
		if !validCString(string(v)) {
			return &EncodeError{Err: ErrInvalidString}
		}
		w.b = appendJSONString(w.b, string(v))
	case UUID:
		w.b = appendJSONString(w.b, v.String())
	case Array:
		return w.array(v, w.plainValue)
	case *Dictionary:
		if v == nil {
			return &EncodeError{Err: ErrNilObject}
		}
		return w.dict(v, w.plainValue)
	case *ErrorObject:
		if v == nil {
			return &EncodeError{Err: ErrNilObject}
		}
		return w.dict(&v.Dictionary, w.plainValue)
	default:
		return &EncodeError{Err: fmt.Errorf("unsupported object type %T", obj)}
	}
	return nil
}

func (w *jsonWriter) double(f float64) {
	switch {
	case math.IsNaN(f):
		w.b = append(w.b, `"NaN"`...)
	case math.IsInf(f, 1):
		w.b = append(w.b, `"+Inf"`...)
	case math.IsInf(f, -1):
		w.b = append(w.b, `"-Inf"`...)
	default:
		// 'g' with the shortest precision parses back to the same bits and
		// is always a valid JSON number ("1e+21", "-0", "5e-324").
		w.b = strconv.AppendFloat(w.b, f, 'g', -1, 64)
	}
}

func (w *jsonWriter) base64(p []byte) {
	w.b = append(w.b, '"')
	w.b = base64.StdEncoding.AppendEncode(w.b, p)
	w.b = append(w.b, '"')
}

func (w *jsonWriter) array(a Array, elem func(Object) error) error {
	if err := w.open(); err != nil {
		return err
	}
	w.b = append(w.b, '[')
	for i, e := range a {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		if err := elem(e); err != nil {
			return prefixPath(err, "["+strconv.Itoa(i)+"]")
		}
	}
	w.b = append(w.b, ']')
	w.depth--
	return nil
}

func (w *jsonWriter) dict(d *Dictionary, elem func(Object) error) error {
	if err := w.open(); err != nil {
		return err
	}
	w.b = append(w.b, '{')
	for i, e := range d.ents {
		k := e.key
		if !validCString(k) {
			return &EncodeError{Path: strconv.Quote(k), Err: ErrInvalidString}
		}
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, k)
		w.b = append(w.b, ':')
		if err := elem(e.val); err != nil {
			return prefixPath(err, k)
		}
	}
	w.b = append(w.b, '}')
	w.depth--
	return nil
}

// appendJSONString appends s, valid UTF-8, as a JSON string. Unlike
// encoding/json it leaves <, > and & alone: the output is for people and
// tools, not for embedding in HTML.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// jsonReader reads tagged or plain JSON token by token, so that the order
// of an object's keys is the document's. path holds the dictionary keys and
// array indexes above the current value, turned into text only for errors.
type jsonReader struct {
	data  []byte
	dec   *json.Decoder
	depth int
	path  []jsonPathElem
}

type jsonPathElem struct {
	key   string
	index int // -1 for a key
}

func newJSONReader(data []byte) (*jsonReader, error) {
	r := &jsonReader{data: data}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			c, n := utf8.DecodeRune(data[off:])
			if c == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return nil, r.fail(int64(off), ErrJSONSyntax, "invalid UTF-8")
	}
	r.dec = json.NewDecoder(bytes.NewReader(data))
	r.dec.UseNumber()
	return r, nil
}

func (r *jsonReader) push(key string) { r.path = append(r.path, jsonPathElem{key: key, index: -1}) }
func (r *jsonReader) pushIndex(i int) { r.path = append(r.path, jsonPathElem{index: i}) }
func (r *jsonReader) pop()            { r.path = r.path[:len(r.path)-1] }

func (r *jsonReader) pathString() string {
	var b strings.Builder
	for _, e := range r.path {
		if e.index >= 0 {
			fmt.Fprintf(&b, "[%d]", e.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e.key)
	}
	return b.String()
}

func (r *jsonReader) fail(off int64, kind error, format string, args ...any) error {
	err := kind
	if format != "" {
		err = fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))
	}
	return &JSONError{Path: r.pathString(), Offset: off, Err: err}
}

// offset returns where the next token starts: the decoder's position moved
// past white space and the separators it has not consumed yet.
func (r *jsonReader) offset() int64 {
	off := r.dec.InputOffset()
	for off < int64(len(r.data)) {
		switch r.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

// token returns the next token, turning syntax errors into *JSONError.
func (r *jsonReader) token() (json.Token, error) {
	off := r.offset()
	tok, err := r.dec.Token()
	if err == nil {
		return tok, nil
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return nil, r.fail(se.Offset, ErrJSONSyntax, "%s", se.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, r.fail(int64(len(r.data)), ErrJSONSyntax, "unexpected end of input")
	}
	return nil, r.fail(off, ErrJSONSyntax, "%v", err)
}

// peekNull reports whether the next token is the literal null.
func (r *jsonReader) peekNull() bool {
	off := r.offset()
	return bytes.HasPrefix(r.data[off:], []byte("null"))
}

func (r *jsonReader) delim(d json.Delim, kind error, want string) error {
	off := r.offset()
	tok, err := r.token()
	if err != nil {
		return err
	}
	if tok != d {
		return r.fail(off, kind, "want %s, found %s", want, describeToken(tok))
	}
	return nil
}

// closeDelim consumes the '}' or ']' that must follow once More is false.
func (r *jsonReader) closeDelim() error {
	_, err := r.token()
	return err
}

// key reads an object key (the decoder guarantees a string there).
func (r *jsonReader) key() (string, error) {
	tok, err := r.token()
	if err != nil {
		return "", err
	}
	return tok.(string), nil
}

func (r *jsonReader) end() error {
	off := r.offset()
	tok, err := r.dec.Token()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		// A syntax error after a complete value is still data after it.
		return r.fail(off, ErrTrailingBytes, "data after the value")
	}
	return r.fail(off, ErrTrailingBytes, "%s after the value", describeToken(tok))
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return strconv.Quote(v.String())
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + v.String()
	case string:
		return "a string"
	}
	return fmt.Sprintf("%v", tok)
}

func (r *jsonReader) enter(off int64) error {
	r.depth++
	if r.depth > DefaultMaxDepth {
		return r.fail(off, ErrTooDeep, "more than %d levels", DefaultMaxDepth)
	}
	return nil
}

// tagged reads {"TYPE": payload}.
func (r *jsonReader) tagged() (Object, error) {
	off := r.offset()
	if err := r.delim('{', ErrNotTagged, `a tagged value {"TYPE": payload}`); err != nil {
		return nil, err
	}
	if !r.dec.More() {
		return nil, r.fail(off, ErrNotTagged, `empty object: want one key naming the type`)
	}
	koff := r.offset()
	name, err := r.key()
	if err != nil {
		return nil, err
	}
	t, ok := TypeByName(name)
	if !ok {
		return nil, r.fail(koff, ErrNotTagged, "unknown type name %q", name)
	}
	obj, err := r.payload(t)
	if err != nil {
		return nil, err
	}
	if r.dec.More() {
		koff := r.offset()
		k, err := r.key()
		if err != nil {
			return nil, err
		}
		return nil, r.fail(koff, ErrNotTagged, "second key %q in a tagged %s value: want one key naming the type", k, name)
	}
	return obj, r.closeDelim()
}

func (r *jsonReader) payload(t Type) (Object, error) {
	switch t {
	case TypeInt64, TypeDate:
		v, err := r.int(t.String() + " payload")
		if t == TypeDate {
			return Date(v), err
		}
		return Int64(v), err
	case TypeUint64:
		v, err := r.uint(64, "uint64 payload")
		return Uint64(v), err
	case TypeArray:
		return r.array(r.tagged)
	case TypeDictionary:
		return r.dict(r.tagged)
	case TypeError:
		d, err := r.dict(r.tagged)
		if err != nil {
			return nil, err
		}
		return &ErrorObject{Dictionary: *d}, nil
	}
	off := r.offset()
	tok, err := r.token()
	if err != nil {
		return nil, err
	}
	wrong := func(want string) error {
		return r.fail(off, ErrBadValue, "%v payload must be %s, found %s", t, want, describeToken(tok))
	}
	switch t {
	case TypeNull, TypeFD, TypeShmem, TypeEndpoint:
		if tok != nil {
			return nil, wrong("null")
		}
		if t == TypeNull {
			return Null{}, nil
		}
		return nil, r.fail(off, ErrAttachments, "%v object cannot be made from JSON: its descriptor travels beside the body", t)
	case TypeBool:
		b, ok := tok.(bool)
		if !ok {
			return nil, wrong("true or false")
		}
		return Bool(b), nil
	case TypeDouble:
		return r.double(off, tok, wrong)
	}
	s, ok := tok.(string)
	if !ok {
		return nil, wrong("a string")
	}
	switch t {
	case TypeData:
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, r.fail(off, ErrBadValue, "bad base64: %v", err)
		}
		return Data(b), nil
	case TypeUUID:
		u, err := ParseUUID(s)
		if err != nil {
			return nil, r.fail(off, ErrBadValue, "%q is not an 8-4-4-4-12 hex uuid", s)
		}
		return u, nil
	}
	// TypeString
	if strings.IndexByte(s, 0) >= 0 {
		return nil, r.fail(off, ErrBadString, "NUL inside the string")
	}
	return String(s), nil
}

func (r *jsonReader) double(off int64, tok json.Token, wrong func(string) error) (Object, error) {
	switch v := tok.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil, r.fail(off, ErrBadValue, "%s is out of the double range", v)
		}
		return Double(f), nil
	case string:
		switch v {
		case "NaN":
			return Double(math.NaN()), nil
		case "+Inf":
			return Double(math.Inf(1)), nil
		case "-Inf":
			return Double(math.Inf(-1)), nil
		}
	}
	return nil, wrong(`a number, "NaN", "+Inf" or "-Inf"`)
}

// number reads a JSON number token.
func (r *jsonReader) number(what string) (json.Number, int64, error) {
	off := r.offset()
	tok, err := r.token()
	if err != nil {
		return "", off, err
	}
	n, ok := tok.(json.Number)
	if !ok {
		return "", off, r.fail(off, ErrBadValue, "%s must be an integer, found %s", what, describeToken(tok))
	}
	if strings.ContainsAny(string(n), ".eE") {
		return "", off, r.fail(off, ErrBadValue, "%s must be an integer, found %s", what, n)
	}
	return n, off, nil
}

func (r *jsonReader) int(what string) (int64, error) {
	n, off, err := r.number(what)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, r.fail(off, ErrBadValue, "%s is out of the int64 range", n)
	}
	return v, nil
}

func (r *jsonReader) uint(bits int, what string) (uint64, error) {
	n, off, err := r.number(what)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(string(n), 10, bits)
	if err != nil {
		return 0, r.fail(off, ErrBadValue, "%s is out of the uint%d range", n, bits)
	}
	return v, nil
}

func (r *jsonReader) array(elem func() (Object, error)) (Array, error) {
	off := r.offset()
	if err := r.delim('[', ErrBadValue, "an array"); err != nil {
		return nil, err
	}
	if err := r.enter(off); err != nil {
		return nil, err
	}
	a := Array{}
	for i := 0; r.dec.More(); i++ {
		r.pushIndex(i)
		v, err := elem()
		if err != nil {
			return nil, err
		}
		r.pop()
		a = append(a, v)
	}
	r.depth--
	return a, r.closeDelim()
}

func (r *jsonReader) dict(elem func() (Object, error)) (*Dictionary, error) {
	off := r.offset()
	if err := r.delim('{', ErrBadValue, "an object of dictionary entries"); err != nil {
		return nil, err
	}
	if err := r.enter(off); err != nil {
		return nil, err
	}
	d := &Dictionary{}
	for r.dec.More() {
		koff := r.offset()
		k, err := r.key()
		if err != nil {
			return nil, err
		}
		if strings.IndexByte(k, 0) >= 0 {
			return nil, r.fail(koff, ErrBadKey, "NUL inside the key %q", k)
		}
		if d.find(k) >= 0 {
			return nil, r.fail(koff, ErrDuplicateKey, "%q", k)
		}
		r.push(k)
		v, err := elem()
		if err != nil {
			return nil, err
		}
		r.pop()
		d.Set(k, v)
	}
	r.depth--
	return d, r.closeDelim()
}

// plain reads one everyday JSON value.
func (r *jsonReader) plain() (Object, error) {
	off := r.offset()
	tok, err := r.peek()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		return r.dict(r.plain)
	case json.Delim('['):
		return r.array(r.plain)
	}
	if tok, err = r.token(); err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case nil:
		return Null{}, nil
	case bool:
		return Bool(v), nil
	case string:
		if strings.IndexByte(v, 0) >= 0 {
			return nil, r.fail(off, ErrBadString, "NUL inside the string")
		}
		return String(v), nil
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return nil, r.fail(off, ErrBadValue, "%s is out of the double range", v)
			}
			return Double(f), nil
		}
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return Int64(i), nil
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return Uint64(u), nil
		}
		return nil, r.fail(off, ErrBadValue, "integer %s is out of the int64 and uint64 ranges", v)
	}
	return nil, r.fail(off, ErrJSONSyntax, "unexpected %s", describeToken(tok))
}

// peek classifies the next value by its first byte without consuming it:
// it returns json.Delim('{') or json.Delim('[') for containers and nil
// otherwise (the caller then reads the token).
func (r *jsonReader) peek() (json.Token, error) {
	off := r.offset()
	if off >= int64(len(r.data)) {
		return nil, r.fail(off, ErrJSONSyntax, "unexpected end of input")
	}
	switch c := r.data[off]; c {
	case '{', '[':
		return json.Delim(c), nil
	}
	return nil, nil
}
