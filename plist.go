package xpc

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"howett.net/plist"
)

// Property lists, read and written with howett.net/plist, convert to and
// from objects by these rules.
//
// Reading (FromPlist):
//
//	plist                  XPC
//	dict                   *Dictionary, keys sorted
//	array                  Array
//	string                 String
//	integer                Int64; Uint64 above the int64 range
//	real                   Double
//	true, false            Bool
//	data                   Data
//	date                   Date
//	UID (keyed archives)   *Dictionary {"CF$UID": integer}, as XML spells it
//
// Writing (ToPlist):
//
//	XPC                    plist
//	*Dictionary            dict, keys sorted
//	Array                  array
//	String                 string
//	Int64, Uint64          integer
//	Double                 real
//	Bool                   true, false
//	Data                   data
//	Date                   date
//	UUID                   string, upper-case 8-4-4-4-12
//	Null, *ErrorObject,    error wrapping ErrNotRepresentable, naming the path:
//	fd, shmem, endpoint    plists have no such values
//
// What does not round-trip, and why:
//   - Key order. A plist dictionary's order means nothing and howett.net/plist
//     does not keep it, so FromPlist sorts keys (byte order), and the writer
//     sorts them in every format whatever the Dictionary's order.
//   - Integer types. A plist integer is just an integer, so a Uint64 that fits
//     in an int64 reads back as Int64.
//   - UUIDs become strings: plists have no uuid type.
//   - Dates. XML stores whole seconds (RFC 3339), so the nanoseconds are
//     lost; binary stores float64 seconds since 2001, exact to about a tenth
//     of a microsecond for present-day dates.
//   - Strings. XML cannot carry most control characters; ToPlist refuses
//     such a string in XML (use binary) rather than let it be replaced. A
//     plist string or key holding NUL or invalid UTF-8 (possible in binary)
//     has no XPC form and FromPlist refuses it.
//   - NaN payloads. XML writes every NaN as nan, which reads back as the
//     canonical NaN (see Double); a binary plist's NaN keeps its bits.
//   - Binary limits of howett.net/plist, refused by ToPlist rather than
//     written wrong: a NaN; 0.0 and -0.0 in one document; two different
//     data values with the same CRC-32. XML carries all three.
//   - OpenStep plists store only strings, data, arrays and dictionaries, so
//     their numbers and booleans read as strings.

// PlistFormat is a property list's encoding.
type PlistFormat int

// The property list formats, valued as howett.net/plist's constants. ToPlist
// writes PlistXML and PlistBinary; FromPlist reads all four.
const (
	PlistXML      PlistFormat = plist.XMLFormat
	PlistBinary   PlistFormat = plist.BinaryFormat
	PlistOpenStep PlistFormat = plist.OpenStepFormat
	PlistGNUStep  PlistFormat = plist.GNUStepFormat
)

// String returns "xml", "binary", "openstep" or "gnustep".
func (f PlistFormat) String() string {
	switch f {
	case PlistXML:
		return "xml"
	case PlistBinary:
		return "binary"
	case PlistOpenStep:
		return "openstep"
	case PlistGNUStep:
		return "gnustep"
	}
	return "plistformat(" + strconv.Itoa(int(f)) + ")"
}

// Kinds of property-list failure, reported inside a *PlistError and testable
// with errors.Is (ErrTooDeep is used too).
var (
	// ErrBadPlist: the input is not a well-formed property list. The
	// parser's own error is wrapped beside it.
	ErrBadPlist = errors.New("malformed property list")
	// ErrNotRepresentable: a value has no form on the other side, such as
	// Null in a plist or a NUL-holding plist string in XPC.
	ErrNotRepresentable = errors.New("not representable")
)

// PlistError reports a property list that cannot be read, or an object that
// cannot be written as one, and where.
type PlistError struct {
	Path string // "" for the whole document, "MachServices.com.example[2]" below it
	Err  error
}

func (e *PlistError) Error() string {
	if e.Path == "" {
		return "xpc: plist: " + e.Err.Error()
	}
	return "xpc: plist: " + e.Path + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *PlistError) Unwrap() error { return e.Err }

// FromPlist parses an XML, binary, OpenStep or GNUstep property list and
// converts it by the rules above. It reports the format it found. Errors are
// *PlistError.
//
// Nesting deeper than DefaultMaxDepth is refused (ErrTooDeep). A binary
// plist refers to objects by index, so a small file can name the same
// container many times over; before parsing one, FromPlist refuses it if its
// values, expanded into a tree, would number more than 2^20 or the length of
// data in bytes, whichever is larger (ErrBadPlist and ErrTooLarge), if it
// contains itself (ErrBadPlist), or if it nests more than 512 levels
// (ErrTooDeep).
func FromPlist(data []byte) (Object, PlistFormat, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		// howett.net/plist reads nothing as an empty text dictionary.
		return nil, 0, &PlistError{Err: fmt.Errorf("%w: empty input", ErrBadPlist)}
	}
	if bytes.HasPrefix(data, []byte("bplist")) {
		// howett.net/plist reads anything so marked as binary, expanding
		// shared objects into a tree: vet the size of that tree first.
		if err := checkBinaryPlist(data); err != nil {
			return nil, 0, err
		}
	} else if err := checkTextPlistNesting(data); err != nil {
		// howett.net/plist's XML and text parsers recurse once per level
		// and overflow the stack (a fatal error, not a panic) on deep
		// enough nesting.
		return nil, 0, err
	}
	v, format, err := plistUnmarshal(data)
	if err != nil {
		return nil, 0, &PlistError{Err: fmt.Errorf("%w: %w", ErrBadPlist, err)}
	}
	if v == nil {
		return nil, 0, &PlistError{Err: fmt.Errorf("%w: no value in the document", ErrBadPlist)}
	}
	obj, err := plistReader{text: format != plist.BinaryFormat}.value(v, 0)
	if err != nil {
		return nil, 0, err
	}
	return obj, PlistFormat(format), nil
}

// plistUnmarshal runs the parser. howett.net/plist turns its own panics into
// errors but lets runtime errors through; a parser bug must not crash a
// program that reads untrusted files, so those are caught here too.
func plistUnmarshal(data []byte) (v any, format int, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("parser failed: %v", p)
		}
	}()
	format, err = plist.Unmarshal(data, &v)
	return v, format, err
}

// plistReader converts the values howett.net/plist reads to objects.
type plistReader struct {
	// text: the document is XML or text, where a NaN is written "nan" and
	// becomes the canonical NaN (see Double); a binary one keeps its bits.
	text bool
}

func (p plistReader) value(v any, depth int) (Object, error) {
	switch v := v.(type) {
	case string:
		if !validCString(v) {
			return nil, &PlistError{Err: fmt.Errorf("%w: a string holding NUL or invalid UTF-8 has no XPC form", ErrNotRepresentable)}
		}
		return String(v), nil
	case int64:
		return Int64(v), nil
	case uint64:
		if v <= math.MaxInt64 {
			return Int64(v), nil
		}
		return Uint64(v), nil
	case float64:
		return p.double(v), nil
	case float32:
		return p.double(float64(v)), nil
	case bool:
		return Bool(v), nil
	case []byte:
		return Data(v), nil
	case time.Time:
		return DateOf(v), nil
	case plist.UID:
		// A UID reads as a dictionary ({"CF$UID": n}): a container, which
		// counts as a level as the writer counts it.
		if err := plistDepth(depth); err != nil {
			return nil, err
		}
		d := &Dictionary{}
		if v <= math.MaxInt64 {
			d.Set("CF$UID", Int64(v))
		} else {
			d.Set("CF$UID", Uint64(v))
		}
		return d, nil
	case []any:
		if err := plistDepth(depth); err != nil {
			return nil, err
		}
		a := make(Array, len(v))
		for i, e := range v {
			o, err := p.value(e, depth+1)
			if err != nil {
				return nil, prefixPlistPath(err, "["+strconv.Itoa(i)+"]")
			}
			a[i] = o
		}
		return a, nil
	case map[string]any:
		if err := plistDepth(depth); err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		d := NewDictionary(len(keys))
		for _, k := range keys {
			if !validCString(k) {
				return nil, &PlistError{Path: strconv.Quote(k), Err: fmt.Errorf("%w: a key holding NUL or invalid UTF-8 has no XPC form", ErrNotRepresentable)}
			}
			o, err := p.value(v[k], depth+1)
			if err != nil {
				return nil, prefixPlistPath(err, k)
			}
			d.Set(k, o)
		}
		return d, nil
	}
	return nil, &PlistError{Err: fmt.Errorf("%w: unexpected %T from the parser", ErrNotRepresentable, v)}
}

// plistDepth refuses a container at depth DefaultMaxDepth, reading and
// writing alike, so that what FromPlist reads ToPlist can write.
func plistDepth(depth int) error {
	if depth >= DefaultMaxDepth {
		return &PlistError{Err: fmt.Errorf("%w: more than %d levels", ErrTooDeep, DefaultMaxDepth)}
	}
	return nil
}

func (p plistReader) double(f float64) Double {
	if p.text && math.IsNaN(f) {
		return Double(math.Float64frombits(canonicalNaN))
	}
	return Double(f)
}

// prefixPlistPath puts elem in front of a PlistError's path as it unwinds.
func prefixPlistPath(err error, elem string) error {
	e, ok := err.(*PlistError)
	if !ok {
		return err
	}
	e.Path = joinPath(elem, e.Path)
	return e
}

// ToPlist writes obj as a property list in format, PlistXML (tab-indented,
// ending in a newline) or PlistBinary, by the rules above. Errors are
// *PlistError.
func ToPlist(obj Object, format PlistFormat) ([]byte, error) {
	if format != PlistXML && format != PlistBinary {
		return nil, &PlistError{Err: fmt.Errorf("%w: cannot write the %v format; use xml or binary", ErrNotRepresentable, format)}
	}
	w := plistWriter{xml: format == PlistXML}
	v, err := w.value(obj, 0)
	if err != nil {
		return nil, err
	}
	var out []byte
	if format == PlistXML {
		out, err = plist.MarshalIndent(v, plist.XMLFormat, "\t")
		if err == nil && (len(out) == 0 || out[len(out)-1] != '\n') {
			out = append(out, '\n')
		}
	} else {
		out, err = plist.Marshal(v, plist.BinaryFormat)
	}
	if err != nil {
		return nil, &PlistError{Err: err}
	}
	return out, nil
}

func notRepresentable(what string) error {
	return &PlistError{Err: fmt.Errorf("%w: %s has no property-list form", ErrNotRepresentable, what)}
}

// plistWriter converts objects to the values howett.net/plist marshals.
// Writing binary, it refuses what that library's binary writer would get
// wrong: it unifies equal-looking values through a map, so a NaN cannot be
// found again (the write fails), 0.0 and -0.0 become one value, and two
// different data values with the same CRC-32 become one.
type plistWriter struct {
	xml   bool
	zeros int               // binary: bit 1 for a +0.0 seen, bit 2 for a -0.0
	crcs  map[uint32][]byte // binary: the data value seen for each CRC-32
}

func (w *plistWriter) double(f float64) (any, error) {
	if w.xml {
		return f, nil
	}
	switch {
	case math.IsNaN(f):
		return nil, &PlistError{Err: fmt.Errorf("%w: howett.net/plist cannot write NaN in a binary plist; use xml", ErrNotRepresentable)}
	case f == 0:
		if math.Signbit(f) {
			w.zeros |= 2
		} else {
			w.zeros |= 1
		}
		if w.zeros == 3 {
			return nil, &PlistError{Err: fmt.Errorf("%w: howett.net/plist cannot write both 0.0 and -0.0 in one binary plist; use xml", ErrNotRepresentable)}
		}
	}
	return f, nil
}

func (w *plistWriter) data(b []byte) (any, error) {
	if w.xml {
		return b, nil
	}
	sum := crc32.ChecksumIEEE(b)
	if prev, ok := w.crcs[sum]; ok && !bytes.Equal(prev, b) {
		return nil, &PlistError{Err: fmt.Errorf("%w: howett.net/plist cannot write two different data values with the same CRC-32 in one binary plist; use xml", ErrNotRepresentable)}
	}
	if w.crcs == nil {
		w.crcs = make(map[uint32][]byte)
	}
	w.crcs[sum] = b
	return b, nil
}

func toPlistString(s string, xml bool) (string, error) {
	if !validCString(s) {
		return "", &PlistError{Err: errStringNotValid}
	}
	if xml {
		for _, c := range s {
			if !xmlChar(c) {
				return "", &PlistError{Err: fmt.Errorf("%w: XML cannot carry the character %U; use the binary format", ErrNotRepresentable, c)}
			}
		}
	}
	return s, nil
}

// xmlChar reports whether c may appear in an XML 1.0 document.
func xmlChar(c rune) bool {
	switch {
	case c == '\t' || c == '\n' || c == '\r':
		return true
	case c < 0x20:
		return false
	case c <= 0xD7FF:
		return true
	case c >= 0xE000 && c <= 0xFFFD:
		return true
	}
	return c >= 0x10000 && c <= utf8.MaxRune
}

func (w *plistWriter) value(obj Object, depth int) (any, error) {
	switch v := obj.(type) {
	case nil:
		return nil, &PlistError{Err: ErrNilObject}
	case Null:
		return nil, notRepresentable("null")
	case Bool:
		return bool(v), nil
	case Int64:
		return int64(v), nil
	case Uint64:
		return uint64(v), nil
	case Double:
		return w.double(float64(v))
	case Date:
		return v.Time(), nil
	case Data:
		return w.data(v)
	case String:
		return toPlistString(string(v), w.xml)
	case UUID:
		return v.String(), nil
	case Array:
		if err := plistDepth(depth); err != nil {
			return nil, err
		}
		a := make([]any, len(v))
		for i, e := range v {
			pv, err := w.value(e, depth+1)
			if err != nil {
				return nil, prefixPlistPath(err, "["+strconv.Itoa(i)+"]")
			}
			a[i] = pv
		}
		return a, nil
	case *Dictionary:
		if v == nil {
			return nil, &PlistError{Err: ErrNilObject}
		}
		if err := plistDepth(depth); err != nil {
			return nil, err
		}
		m := make(map[string]any, v.Len())
		for k, e := range v.All() {
			if _, err := toPlistString(k, w.xml); err != nil {
				return nil, prefixPlistPath(err, strconv.Quote(k))
			}
			pv, err := w.value(e, depth+1)
			if err != nil {
				return nil, prefixPlistPath(err, k)
			}
			m[k] = pv
		}
		return m, nil
	}
	return nil, notRepresentable(obj.Type().String())
}
