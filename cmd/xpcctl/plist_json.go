package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
// Tagged JSON (--to tagged-json) keeps every value. (xpc.ToPlainJSON,
// call's form, writes data and dates as strings, keeps a dictionary's
// order and writes the real 2 as an integer; xpc.FromPlainJSON reads
// plain JSON back.)

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
