package xpc

import (
	"fmt"
	"math"
	"time"
)

// Type is an XPC object's type, with the value of its wire tag
// (type index << 12), so a Type converts to the tag directly.
type Type uint32

// The XPC types, valued as their wire tags.
const (
	TypeNull       Type = 0x1000
	TypeBool       Type = 0x2000
	TypeInt64      Type = 0x3000
	TypeUint64     Type = 0x4000
	TypeDouble     Type = 0x5000
	TypeDate       Type = 0x7000
	TypeData       Type = 0x8000
	TypeString     Type = 0x9000
	TypeUUID       Type = 0xA000
	TypeFD         Type = 0xB000
	TypeShmem      Type = 0xC000
	TypeArray      Type = 0xE000
	TypeDictionary Type = 0xF000
	TypeError      Type = 0x10000
	TypeEndpoint   Type = 0x12000
)

var typeNames = [...]struct {
	t    Type
	name string
}{
	{TypeNull, "null"}, {TypeBool, "bool"}, {TypeInt64, "int64"}, {TypeUint64, "uint64"},
	{TypeDouble, "double"}, {TypeDate, "date"}, {TypeData, "data"}, {TypeString, "string"},
	{TypeUUID, "uuid"}, {TypeFD, "fd"}, {TypeShmem, "shmem"}, {TypeArray, "array"},
	{TypeDictionary, "dictionary"}, {TypeError, "error"}, {TypeEndpoint, "endpoint"},
}

// String returns the type's name as the tagged JSON form spells it
// ("int64", "dictionary", ...), or "type(0x...)" for an unknown tag.
func (t Type) String() string {
	for _, n := range typeNames {
		if n.t == t {
			return n.name
		}
	}
	return fmt.Sprintf("type(%#x)", uint32(t))
}

// TypeByName returns the Type named name ("int64", "dictionary", ...).
func TypeByName(name string) (Type, bool) {
	for _, n := range typeNames {
		if n.name == name {
			return n.t, true
		}
	}
	return 0, false
}

// Object is an XPC value. The set of implementations is closed: Null, Bool,
// Int64, Uint64, Double, Date, Data, String, UUID, Array, *Dictionary,
// *ErrorObject, *FD, *SharedMemory and *Endpoint.
type Object interface {
	// Type reports the object's XPC type.
	Type() Type
	isObject()
}

// Null is the XPC null object.
type Null struct{}

// Bool is an XPC boolean.
type Bool bool

// Int64 is an XPC signed 64-bit integer.
type Int64 int64

// Uint64 is an XPC unsigned 64-bit integer.
type Uint64 uint64

// Double is an XPC IEEE-754 double. Encoding writes its bits as they are,
// a NaN's payload and sign included, so that a decoded message re-encodes
// to the same bytes. A NaN read from text (tagged JSON's "NaN", a text or
// XML property list's nan) is the canonical quiet NaN, 0x7FF8000000000000:
// what C's NAN is and what Apple's peers send. Go's math.NaN() is
// 0x7FF8000000000001, and a Double made from it keeps those bits; for C's,
// use Double(math.Float64frombits(0x7FF8000000000000)).
type Double float64

// canonicalNaN is the bits of the canonical quiet NaN (see Double).
const canonicalNaN uint64 = 0x7FF8000000000000

// Date is an XPC date: nanoseconds since 1970-01-01 00:00:00 UTC.
type Date int64

// Data is an XPC byte buffer. Decoded Data aliases nothing: it is a copy.
type Data []byte

// String is an XPC string: valid UTF-8 without NUL bytes.
type String string

// Array is an ordered list of XPC objects. A nil element is not allowed.
type Array []Object

func (Null) Type() Type   { return TypeNull }
func (Bool) Type() Type   { return TypeBool }
func (Int64) Type() Type  { return TypeInt64 }
func (Uint64) Type() Type { return TypeUint64 }
func (Double) Type() Type { return TypeDouble }
func (Date) Type() Type   { return TypeDate }
func (Data) Type() Type   { return TypeData }
func (String) Type() Type { return TypeString }
func (UUID) Type() Type   { return TypeUUID }
func (Array) Type() Type  { return TypeArray }

func (Null) isObject()   {}
func (Bool) isObject()   {}
func (Int64) isObject()  {}
func (Uint64) isObject() {}
func (Double) isObject() {}
func (Date) isObject()   {}
func (Data) isObject()   {}
func (String) isObject() {}
func (UUID) isObject()   {}
func (Array) isObject()  {}

// DateOf returns t as an XPC Date. Times outside the int64 nanosecond range
// (years 1678 to 2262) saturate.
func DateOf(t time.Time) Date {
	if t.Before(minDate) {
		return Date(math.MinInt64)
	}
	if t.After(maxDate) {
		return Date(math.MaxInt64)
	}
	return Date(t.UnixNano())
}

var (
	minDate = time.Unix(0, math.MinInt64)
	maxDate = time.Unix(0, math.MaxInt64)
)

// Time returns d as a time.Time in UTC.
func (d Date) Time() time.Time { return time.Unix(0, int64(d)).UTC() }

// ErrorObject is the XPC error type: a dictionary of details, as libxpc's
// XPC_TYPE_ERROR is. Its wire layout is that of a dictionary under the error
// tag (see docs/PROTOCOL.md). The conventional key for the text is
// "XPCErrorDescription".
type ErrorObject struct {
	Dictionary
}

// ErrorDescriptionKey is the key libxpc stores an error object's text under.
const ErrorDescriptionKey = "XPCErrorDescription"

// NewErrorObject returns an error object whose description is desc.
func NewErrorObject(desc string) *ErrorObject {
	e := &ErrorObject{}
	e.Set(ErrorDescriptionKey, String(desc))
	return e
}

// Description returns the error object's XPCErrorDescription, or "".
func (e *ErrorObject) Description() string {
	s, _ := e.Get(ErrorDescriptionKey).(String)
	return string(s)
}

// Type reports TypeError.
func (*ErrorObject) Type() Type { return TypeError }
