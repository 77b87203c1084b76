package xpc

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Writing tagged and plain JSON (json.go describes both forms).

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
			return &EncodeError{Err: errStringNotValid}
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
			return &EncodeError{Err: errStringNotValid}
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

// double writes f. A NaN is "NaN" if it is the canonical one (see Double)
// or in plain JSON; in tagged JSON, which keeps every bit, another NaN is
// "NaN(0x...)" with its 16 hex digits.
func (w *jsonWriter) double(f float64) {
	switch {
	case math.IsNaN(f) && !w.plain && math.Float64bits(f) != canonicalNaN:
		w.b = append(w.b, `"NaN(0x`...)
		w.b = appendHex64(w.b, math.Float64bits(f))
		w.b = append(w.b, `)"`...)
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

// appendHex64 appends v as 16 lower-case hex digits.
func appendHex64(b []byte, v uint64) []byte {
	const hex = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hex[v>>uint(shift)&0xF])
	}
	return b
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
			return &EncodeError{Path: strconv.Quote(k), Err: errStringNotValid}
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
