package xpc

import (
	"bytes"
	"encoding"
	"fmt"
	"math"
	"reflect"
	"time"
)

// The decoders of the Go types that take one object whole: booleans,
// numbers, strings, bytes, times, uuids, objects, and the types with their
// own conversion. Each reads the object whose tag t, at off, has just been
// consumed, into the settable v. typeCodec.decode has turned null into the
// zero value and checked the tag against the codec's want, unless the codec
// sees null or wants no one tag (see typeCodec). The decoders of containers
// are in unmarshal_containers.go.

func decNull(_ *decState, _ reflect.Value, t Type, _, _ int) error {
	return mismatch(TypeNull, t)
}

func decBool(d *decState, v reflect.Value, _ Type, off, _ int) error {
	b, err := d.boolValue(off)
	if err == nil {
		v.SetBool(b)
	}
	return err
}

func overflow(x any, t reflect.Type) error {
	return &FieldError{Err: fmt.Errorf("%w: %v does not fit in %v", ErrOverflow, x, t)}
}

func decInt(d *decState, v reflect.Value, t Type, _, _ int) error {
	if t != TypeInt64 && t != TypeUint64 {
		return mismatch(TypeInt64, t)
	}
	u, err := d.r.u64()
	if err != nil {
		return err
	}
	if t == TypeUint64 && u > math.MaxInt64 {
		return overflow(u, v.Type())
	}
	if v.OverflowInt(int64(u)) {
		if t == TypeUint64 {
			return overflow(u, v.Type())
		}
		return overflow(int64(u), v.Type())
	}
	v.SetInt(int64(u))
	return nil
}

func decUint(d *decState, v reflect.Value, t Type, _, _ int) error {
	if t != TypeInt64 && t != TypeUint64 {
		return mismatch(TypeUint64, t)
	}
	u, err := d.r.u64()
	if err != nil {
		return err
	}
	if t == TypeInt64 && int64(u) < 0 {
		return overflow(int64(u), v.Type())
	}
	if v.OverflowUint(u) {
		return overflow(u, v.Type())
	}
	v.SetUint(u)
	return nil
}

// decFloat reads a double, or an integer as the nearest double.
func decFloat(d *decState, v reflect.Value, t Type, _, _ int) error {
	if t != TypeDouble && t != TypeInt64 && t != TypeUint64 {
		return mismatch(TypeDouble, t)
	}
	u, err := d.r.u64()
	if err != nil {
		return err
	}
	f := math.Float64frombits(u)
	switch t {
	case TypeInt64:
		f = float64(int64(u))
	case TypeUint64:
		f = float64(u)
	}
	if v.OverflowFloat(f) {
		return overflow(f, v.Type())
	}
	v.SetFloat(f)
	return nil
}

func decString(d *decState, v reflect.Value, _ Type, _, _ int) error {
	s, err := d.r.strPayload()
	if err == nil {
		v.SetString(s)
	}
	return err
}

func decBytes(d *decState, v reflect.Value, _ Type, _, _ int) error {
	p, err := d.r.payload()
	if err == nil {
		v.SetBytes(bytes.Clone(p))
	}
	return err
}

func decByteArray(d *decState, v reflect.Value, _ Type, _, _ int) error {
	p, err := d.r.payload()
	switch {
	case err != nil:
		return err
	case len(p) != v.Len():
		return &FieldError{Err: fmt.Errorf("%w: %d bytes of data for %v", ErrOverflow, len(p), v.Type())}
	}
	copy(v.Bytes(), p)
	return nil
}

func decTime(d *decState, v reflect.Value, _ Type, _, _ int) error {
	u, err := d.r.u64()
	if err == nil {
		tp, _ := reflect.TypeAssert[*time.Time](v.Addr())
		*tp = dateTime(Date(u))
	}
	return err
}

// dateTime is the time.Time of a date. The zero time.Time saturates to the
// minimum date when encoded, so the minimum date decodes as the zero
// time.Time, and zero round-trips.
func dateTime(d Date) time.Time {
	if d == math.MinInt64 {
		return time.Time{}
	}
	return d.Time()
}

func decDate(d *decState, v reflect.Value, _ Type, _, _ int) error {
	u, err := d.r.u64()
	if err == nil {
		v.SetInt(int64(u))
	}
	return err
}

// decUUID reads a uuid, or a string in the 8-4-4-4-12 form (property lists
// have no uuid type).
func decUUID(d *decState, v reflect.Value, t Type, _, _ int) error {
	var u UUID
	switch t {
	case TypeUUID:
		var err error
		if u, err = d.uuidValue(); err != nil {
			return err
		}
	case TypeString:
		s, err := d.r.strPayload()
		if err != nil {
			return err
		}
		if u, err = ParseUUID(s); err != nil {
			return &FieldError{Err: fmt.Errorf("%w: %q", ErrBadUUID, s)}
		}
	default:
		return mismatch(TypeUUID, t)
	}
	up, _ := reflect.TypeAssert[*UUID](v.Addr())
	*up = u
	return nil
}

// decObject takes an object as it is into a field of its own Go type.
func decObject(d *decState, v reflect.Value, t Type, off, _ int) error {
	obj, err := d.r.value(t, off)
	if err == nil {
		v.Set(reflect.ValueOf(obj))
	}
	return err
}

// decObjectStruct takes a dictionary or error object into a Dictionary or
// ErrorObject held by value.
func decObjectStruct(d *decState, v reflect.Value, t Type, off, _ int) error {
	obj, err := d.r.value(t, off)
	if err == nil {
		v.Set(reflect.ValueOf(obj).Elem())
	}
	return err
}

func decUnmarshaler(d *decState, v reflect.Value, t Type, off, _ int) error {
	obj, err := d.r.value(t, off)
	if err != nil {
		return err
	}
	u, _ := reflect.TypeAssert[Unmarshaler](v.Addr())
	if err := u.UnmarshalXPC(obj); err != nil {
		return methodFailed(v.Type(), "UnmarshalXPC", err)
	}
	return nil
}

func decText(d *decState, v reflect.Value, _ Type, _, _ int) error {
	s, err := d.r.strPayload()
	if err != nil {
		return err
	}
	u, _ := reflect.TypeAssert[encoding.TextUnmarshaler](v.Addr())
	if err := u.UnmarshalText([]byte(s)); err != nil {
		return methodFailed(v.Type(), "UnmarshalText", err)
	}
	return nil
}
