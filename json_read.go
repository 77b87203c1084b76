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
	"unicode/utf8"
)

// Reading tagged and plain JSON (json.go describes both forms).

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

// more reports whether an object or array has another element, as the
// decoder's More does, except that the end of the input inside it is a
// syntax error rather than its end.
func (r *jsonReader) more() (bool, error) {
	if r.dec.More() {
		return true, nil
	}
	if n := int64(len(r.data)); r.offset() >= n {
		return false, r.fail(n, ErrJSONSyntax, "unexpected end of input")
	}
	return false, nil
}

// closeDelim consumes the '}' or ']' that must follow once more is false.
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
	if more, err := r.more(); err != nil {
		return nil, err
	} else if !more {
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
	if more, err := r.more(); err != nil {
		return nil, err
	} else if more {
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
			return Double(math.Float64frombits(canonicalNaN)), nil
		case "+Inf":
			return Double(math.Inf(1)), nil
		case "-Inf":
			return Double(math.Inf(-1)), nil
		}
		if f, ok := nanWithBits(v); ok {
			return Double(f), nil
		}
	}
	return nil, wrong(`a number, "NaN", "NaN(0x...)", "+Inf" or "-Inf"`)
}

// nanWithBits parses "NaN(0x" 16 hex digits ")", the form tagged JSON
// writes for a NaN other than the canonical one. The bits must be a NaN's.
func nanWithBits(s string) (float64, bool) {
	hex, ok := strings.CutPrefix(s, "NaN(0x")
	if !ok {
		return 0, false
	}
	if hex, ok = strings.CutSuffix(hex, ")"); !ok || len(hex) != 16 {
		return 0, false
	}
	bits, err := strconv.ParseUint(hex, 16, 64)
	if f := math.Float64frombits(bits); err == nil && math.IsNaN(f) {
		return f, true
	}
	return 0, false
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
	for i := 0; ; i++ {
		if more, err := r.more(); err != nil {
			return nil, err
		} else if !more {
			break
		}
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
	for {
		if more, err := r.more(); err != nil {
			return nil, err
		} else if !more {
			break
		}
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

func (r *jsonReader) message() (RemoteMessage, error) {
	var m RemoteMessage
	off := r.offset()
	if err := r.delim('{', ErrNotTagged, `a message {"flags":N,"id":N,"body":VALUE}`); err != nil {
		return m, err
	}
	var seen [3]bool
	for {
		if more, err := r.more(); err != nil {
			return m, err
		} else if !more {
			break
		}
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
