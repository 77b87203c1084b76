package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/goxpc/xpc"
)

// Plain JSON, as plutil -convert json writes it: dictionaries as objects
// with sorted keys, arrays, strings, numbers (integers exact; a real
// always with a '.' or an exponent, so that it reads back as a real) and
// booleans. Data and dates have no JSON form and are refused, as plutil
// refuses them, naming where they are; so are NaN and the infinities.
// Tagged JSON (--to tagged-json) keeps every value.

// errNoPlainJSON is the kind of a value plain JSON cannot carry.
var errNoPlainJSON = errors.New("no plain JSON form")

// marshalPlainJSON writes obj as indented plain JSON, with a final newline.
func marshalPlainJSON(obj xpc.Object) ([]byte, error) {
	v, err := plainValue(obj, "")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// plainValue is obj as a value encoding/json writes as plain JSON (maps
// are written with sorted keys). path says where obj is, for errors.
func plainValue(obj xpc.Object, path string) (any, error) {
	switch o := obj.(type) {
	case *xpc.Dictionary:
		m := make(map[string]any, o.Len())
		for _, k := range o.Keys() {
			v, err := plainValue(o.Get(k), jsonPathKey(path, k))
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case xpc.Array:
		a := make([]any, len(o))
		for i, e := range o {
			v, err := plainValue(e, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			a[i] = v
		}
		return a, nil
	case xpc.String:
		return string(o), nil
	case xpc.Bool:
		return bool(o), nil
	case xpc.Int64:
		return json.Number(strconv.FormatInt(int64(o), 10)), nil
	case xpc.Uint64:
		return json.Number(strconv.FormatUint(uint64(o), 10)), nil
	case xpc.Double:
		f := float64(o)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, noPlainJSON(path, fmt.Sprintf("the real %v", f))
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		return json.Number(s), nil
	case xpc.Null:
		return nil, nil
	case nil:
		return nil, noPlainJSON(path, "a missing value")
	}
	return nil, noPlainJSON(path, "a "+obj.Type().String())
}

func noPlainJSON(path, what string) error {
	if path == "" {
		path = "the root"
	}
	return fmt.Errorf("%s: %s has %w; --to tagged-json keeps every value", path, what, errNoPlainJSON)
}

// jsonPathKey appends a dictionary key to path, quoted if it holds a '.',
// a bracket, a quote or a control character, or is empty.
func jsonPathKey(path, key string) string {
	if key == "" || strings.ContainsAny(key, ".[]\"") || strings.ContainsFunc(key, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// unmarshalPlainJSON reads a plain JSON document: objects become
// dictionaries, numbers without a fraction or exponent integers (Int64,
// or Uint64 above its range), others reals, null Null. A key given twice,
// nesting deeper than xpc.DefaultMaxDepth, an integer beyond 64 bits and
// anything after the value are errors.
func unmarshalPlainJSON(data []byte) (xpc.Object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	obj, err := plainRead(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("JSON at offset %d: %w", dec.InputOffset(), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("JSON at offset %d: data after the value", dec.InputOffset())
	}
	return obj, nil
}

func plainRead(dec *json.Decoder, depth int) (xpc.Object, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= xpc.DefaultMaxDepth {
			return nil, fmt.Errorf("nested deeper than %d", xpc.DefaultMaxDepth)
		}
		if t == '[' {
			return plainArray(dec, depth)
		}
		return plainObject(dec, depth)
	case string:
		return xpc.String(t), nil
	case bool:
		return xpc.Bool(t), nil
	case nil:
		return xpc.Null{}, nil
	case json.Number:
		return plainNumber(t)
	}
	return nil, fmt.Errorf("unexpected %v", tok)
}

func plainArray(dec *json.Decoder, depth int) (xpc.Object, error) {
	a := xpc.Array{}
	for dec.More() {
		v, err := plainRead(dec, depth+1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
	}
	_, err := dec.Token() // ']'
	return a, err
}

func plainObject(dec *json.Decoder, depth int) (xpc.Object, error) {
	d := xpc.NewDictionary(0)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string)
		if strings.IndexByte(k, 0) >= 0 {
			return nil, fmt.Errorf("key %q holds NUL", k)
		}
		if d.Get(k) != nil {
			return nil, fmt.Errorf("key %q given twice", k)
		}
		v, err := plainRead(dec, depth+1)
		if err != nil {
			return nil, err
		}
		d.Set(k, v)
	}
	_, err := dec.Token() // '}'
	return d, err
}

func plainNumber(n json.Number) (xpc.Object, error) {
	s := n.String()
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return xpc.Int64(i), nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return xpc.Uint64(u), nil
		}
		return nil, fmt.Errorf("integer %s does not fit in 64 bits", s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("number %s: out of range", s)
	}
	return xpc.Double(f), nil
}
