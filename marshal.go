package xpc

// Go values <-> XPC objects, by reflection, like encoding/json. The
// conversion rules, the struct tags and the errors are documented in the
// package documentation, section "Go values" (doc.go).

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Marshaler is implemented by types that convert themselves to an XPC
// object. A nil Object result encodes as null.
type Marshaler interface {
	MarshalXPC() (Object, error)
}

// Unmarshaler is implemented by types that set themselves from an XPC
// object (usually with a pointer receiver). It receives Null{} for a null.
// Out-of-band objects it receives get their descriptors only once the whole
// body has decoded, so it should keep them, not use them, during the call.
type Unmarshaler interface {
	UnmarshalXPC(Object) error
}

// Causes of a *FieldError, testable with errors.Is.
var (
	ErrUnsupportedType = errors.New("unsupported Go type")
	ErrOverflow        = errors.New("value does not fit the Go type")
	ErrNotPointer      = errors.New("target is not a non-nil pointer")
	// ErrUnknownKey: strict decoding (ObjectIntoStrict) met a dictionary
	// key that no field of the struct has.
	ErrUnknownKey = errors.New("unknown key")
	// ErrRequiredKey: strict decoding (ObjectIntoStrict) found no key for a
	// field tagged required.
	ErrRequiredKey = errors.New("missing required key")
)

// FieldError reports a problem converting between a Go value and XPC at one
// place in the value.
type FieldError struct {
	Path string // "" for the root; "Config.Ports[2]" below it (keys and indexes)
	Err  error  // the cause: an Err* value, a *TypeMismatchError, a method's error
}

// Error returns "xpc: <path>: <cause>".
func (e *FieldError) Error() string {
	msg := ""
	if tm, ok := e.Err.(*TypeMismatchError); ok {
		msg = "want " + tm.Want.String() + ", have " + tm.Got.String()
	} else if e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Path == "" {
		return "xpc: " + msg
	}
	return "xpc: " + e.Path + ": " + msg
}

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

// methodError is the error of a Go value's own conversion method
// (MarshalXPC, UnmarshalText, ...), which may be an error of this package
// (an UnmarshalXPC that calls ObjectInto): the *FieldError around it names
// the package, so its text does not name it again.
type methodError struct {
	method string // "pkg.T.MarshalXPC"
	err    error
}

func (e *methodError) Error() string { return e.method + ": " + causeText(e.err) }

func (e *methodError) Unwrap() error { return e.err }

// methodFailed is the error of the conversion method method of a value of
// type t that failed with err.
func methodFailed(t reflect.Type, method string, err error) error {
	return &FieldError{Err: &methodError{method: t.String() + "." + method, err: err}}
}

// asFieldError gives err the form Marshal and Unmarshal report: *FieldError
// for problems at a place in the value, *DecodeError unchanged.
func asFieldError(err error) error {
	switch e := err.(type) {
	case nil, *FieldError, *DecodeError:
		return err
	case *EncodeError:
		return &FieldError{Path: e.Path, Err: e.Err}
	}
	return &FieldError{Err: err}
}

// prefixField puts elem (a key, or "[i]") in front of the path of err as it
// unwinds. *DecodeError passes through: its offset locates it.
func prefixField(err error, elem string) error {
	err = asFieldError(err)
	fe, ok := err.(*FieldError)
	if !ok {
		return err
	}
	fe.Path = joinPath(elem, fe.Path)
	if tm, ok := fe.Err.(*TypeMismatchError); ok {
		tm.Path = fe.Path
	}
	return fe
}

func prefixIndex(err error, i int) error { return prefixField(err, "["+strconv.Itoa(i)+"]") }

func mismatch(want, got Type) error {
	return &FieldError{Err: &TypeMismatchError{Want: want, Got: got}}
}

func unsupported(t reflect.Type) error {
	return &FieldError{Err: fmt.Errorf("%w %v", ErrUnsupportedType, t)}
}

// Marshal serializes v (usually a struct or a pointer to one) as a local
// ("@XPC") body, by the conversion rules in the package documentation ("Go
// values"): a struct becomes a dictionary of its exported fields, keyed by
// name or `xpc:"name"` tag (case-sensitive), with the options omitempty,
// omitzero and required. It returns an error if v holds out-of-band objects
// (fd, shmem, endpoint), which need a transport: use Encoder.EncodeValue for
// those.
func Marshal(v any) ([]byte, error) {
	var w writer
	w.reset(make([]byte, 0, 128), Limits{})
	if err := w.bodyValue(MagicLocal, v); err != nil {
		return nil, err
	}
	if len(w.att) > 0 {
		return nil, &EncodeError{Err: fmt.Errorf("%w: %d out-of-band objects need a transport", ErrAttachments, len(w.att))}
	}
	return w.b, nil
}

// EncodeValue serializes the Go value v as a body, by the conversion rules
// of Marshal, into the Encoder's reused buffer: encoding a struct does not
// allocate once the buffer has grown. The result is valid until the next
// call on e. Out-of-band objects are left in Attachments.
func (e *Encoder) EncodeValue(v any) ([]byte, error) {
	e.w.reset(e.w.b[:0], e.Limits)
	if err := e.w.bodyValue(e.magic(), v); err != nil {
		return nil, err
	}
	return e.w.b, nil
}

// bodyValue writes a body holding the Go value v.
func (w *writer) bodyValue(magic uint32, v any) error {
	w.u32(magic)
	w.u32(Version)
	if err := encodeGo(w, v); err != nil {
		return err
	}
	return w.checkSize()
}

// encodeGo writes the Go value v as one object.
func encodeGo(w *writer, v any) error {
	if v == nil {
		w.u32(uint32(TypeNull))
		return nil
	}
	rv := reflect.ValueOf(v)
	return asFieldError(codecFor(rv.Type()).enc(w, rv, 0))
}

// The encoders. Each writes one object for v; ind counts the pointer and
// interface indirections since the last container, so that a pointer cycle
// with no container in it ends in ErrTooDeep rather than a stack overflow
// (containers are counted by writer.open).

func tooDeep(limit int) error {
	return &FieldError{Err: fmt.Errorf("%w: more than %d indirections", ErrTooDeep, limit)}
}

func encNull(w *writer, _ reflect.Value, _ int) error {
	w.u32(uint32(TypeNull))
	return nil
}

func encBool(w *writer, v reflect.Value, _ int) error {
	w.u32(uint32(TypeBool))
	if v.Bool() {
		w.u32(1)
	} else {
		w.u32(0)
	}
	return nil
}

func encInt(w *writer, v reflect.Value, _ int) error {
	w.u32(uint32(TypeInt64))
	w.u64(uint64(v.Int()))
	return nil
}

func encUint(w *writer, v reflect.Value, _ int) error {
	w.u32(uint32(TypeUint64))
	w.u64(v.Uint())
	return nil
}

func encFloat(w *writer, v reflect.Value, _ int) error {
	w.u32(uint32(TypeDouble))
	w.u64(math.Float64bits(v.Float()))
	return nil
}

func encString(w *writer, v reflect.Value, _ int) error {
	if err := w.str(v.String()); err != nil {
		return asFieldError(err)
	}
	return nil
}

func encBytes(w *writer, v reflect.Value, _ int) error {
	if err := w.data(v.Bytes()); err != nil {
		return asFieldError(err)
	}
	return nil
}

// encByteArray writes a [N]byte as data.
func encByteArray(w *writer, v reflect.Value, _ int) error {
	if v.CanAddr() {
		return encBytes(w, v, 0)
	}
	n := v.Len()
	w.u32(uint32(TypeData))
	w.u32(uint32(n))
	for i := range n {
		w.b = append(w.b, byte(v.Index(i).Uint()))
	}
	w.pad()
	return nil
}

func encTime(w *writer, v reflect.Value, _ int) error {
	t, _ := reflect.TypeAssert[time.Time](v)
	w.u32(uint32(TypeDate))
	w.u64(uint64(DateOf(t)))
	return nil
}

func encDate(w *writer, v reflect.Value, _ int) error {
	w.u32(uint32(TypeDate))
	w.u64(uint64(v.Int()))
	return nil
}

func encUUID(w *writer, v reflect.Value, _ int) error {
	u, _ := reflect.TypeAssert[UUID](v)
	w.u32(uint32(TypeUUID))
	w.b = append(w.b, u[:]...)
	return nil
}

// encObject writes a value whose Go type is one of the Object types (a
// pointer, or Array) as Encode would; a nil pointer is null.
func encObject(w *writer, v reflect.Value, _ int) error {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		w.u32(uint32(TypeNull))
		return nil
	}
	obj, _ := reflect.TypeAssert[Object](v)
	return asFieldError(w.object(obj))
}

// encObjectStruct writes a Dictionary or ErrorObject held by value.
func encObjectStruct(w *writer, v reflect.Value, _ int) error {
	return encObject(w, addressable(v).Addr(), 0)
}

// addressable returns v, or an addressable copy of it.
func addressable(v reflect.Value) reflect.Value {
	if v.CanAddr() {
		return v
	}
	p := reflect.New(v.Type())
	p.Elem().Set(v)
	return p.Elem()
}

func encMarshaler(w *writer, v reflect.Value, _ int) error {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		w.u32(uint32(TypeNull))
		return nil
	}
	m, _ := reflect.TypeAssert[Marshaler](v)
	return writeMarshaled(w, v.Type(), m)
}

// encAddrMarshaler calls a MarshalXPC method with a pointer receiver.
func encAddrMarshaler(w *writer, v reflect.Value, _ int) error {
	m, _ := reflect.TypeAssert[Marshaler](addressable(v).Addr())
	return writeMarshaled(w, v.Type(), m)
}

func writeMarshaled(w *writer, t reflect.Type, m Marshaler) error {
	obj, err := m.MarshalXPC()
	if err != nil {
		return methodFailed(t, "MarshalXPC", err)
	}
	if obj == nil {
		w.u32(uint32(TypeNull))
		return nil
	}
	return asFieldError(w.object(obj))
}

func encText(w *writer, v reflect.Value, _ int) error {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		w.u32(uint32(TypeNull))
		return nil
	}
	m, _ := reflect.TypeAssert[encoding.TextMarshaler](v)
	return writeText(w, v.Type(), m)
}

func encAddrText(w *writer, v reflect.Value, _ int) error {
	m, _ := reflect.TypeAssert[encoding.TextMarshaler](addressable(v).Addr())
	return writeText(w, v.Type(), m)
}

func writeText(w *writer, t reflect.Type, m encoding.TextMarshaler) error {
	b, err := m.MarshalText()
	if err != nil {
		return methodFailed(t, "MarshalText", err)
	}
	return asFieldError(w.str(string(b)))
}

func encInterface(w *writer, v reflect.Value, ind int) error {
	if v.IsNil() {
		w.u32(uint32(TypeNull))
		return nil
	}
	if ind >= w.lim.maxDepth() {
		return tooDeep(w.lim.maxDepth())
	}
	e := v.Elem()
	return codecFor(e.Type()).enc(w, e, ind+1)
}

func (c *ptrCodec) encode(w *writer, v reflect.Value, ind int) error {
	if v.IsNil() {
		w.u32(uint32(TypeNull))
		return nil
	}
	if ind >= w.lim.maxDepth() {
		return tooDeep(w.lim.maxDepth())
	}
	return c.elem.enc(w, v.Elem(), ind+1)
}

// encode writes a slice or array (other than of bytes) as an array.
func (c *seqCodec) encode(w *writer, v reflect.Value, _ int) error {
	pos, err := w.open(TypeArray)
	if err != nil {
		return asFieldError(err)
	}
	n := v.Len()
	for i := range n {
		if err := c.elem.enc(w, v.Index(i), 0); err != nil {
			return prefixIndex(err, i)
		}
	}
	return asFieldError(w.close(pos, n))
}

// encode writes a map as a dictionary with its keys in sorted order.
func (c *mapCodec) encode(w *writer, v reflect.Value, _ int) error {
	pos, err := w.open(TypeDictionary)
	if err != nil {
		return asFieldError(err)
	}
	keys := v.MapKeys()
	slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		ks := k.String()
		if !validCString(ks) {
			return &FieldError{Path: ks, Err: errStringNotValid}
		}
		w.cstr(ks)
		if err := c.elem.enc(w, v.MapIndex(k), 0); err != nil {
			return prefixField(err, ks)
		}
	}
	return asFieldError(w.close(pos, len(keys)))
}

// encode writes a struct as a dictionary, one entry per field, in field
// order. Keys were checked and padded when the codec was built.
func (c *structCodec) encode(w *writer, v reflect.Value, _ int) error {
	pos, err := w.open(TypeDictionary)
	if err != nil {
		return asFieldError(err)
	}
	n := 0
	for i := range c.fields {
		f := &c.fields[i]
		var fv reflect.Value
		if len(f.index) == 1 {
			fv = v.Field(f.index[0])
		} else if fv = embeddedField(v, f.index); !fv.IsValid() {
			continue
		}
		if f.omitEmpty && isEmptyValue(fv) || f.omitZero && f.isZero(fv) {
			continue
		}
		w.b = append(w.b, f.key...)
		if err := f.codec.enc(w, fv, 0); err != nil {
			return prefixField(err, f.name)
		}
		n++
	}
	return asFieldError(w.close(pos, n))
}

// embeddedField follows index through embedded structs, returning the zero
// Value if it passes through a nil pointer.
func embeddedField(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

// isEmptyValue is omitempty's test, as in encoding/json.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
