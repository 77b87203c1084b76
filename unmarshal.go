package xpc

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"sync"
)

// Unmarshal parses a body straight into the Go value v points to, by the
// conversion rules of Marshal. v must be a non-nil pointer. The body may not
// hold out-of-band objects: use Decoder.DecodeValue for those.
func Unmarshal(body []byte, v any) error {
	var d Decoder
	return d.DecodeValue(body, nil, v)
}

// DecodeValue parses a body straight into the Go value v points to (v must
// be a non-nil pointer), without building objects on the way. fds are the
// descriptors that arrived beside the body, as for Decode, with the same
// ownership: on success the decoded value owns every one of them (those of
// out-of-band objects under keys with no field are closed); on error the
// decoder has taken none and the caller still owns them all.
func (dec *Decoder) DecodeValue(body []byte, fds []int, v any) error {
	rv, err := target(v)
	if err != nil {
		return err
	}
	d := decStatePool.Get().(*decState)
	d.r = reader{b: body, lim: dec.Limits}
	d.fds = fdSource{fds: fds, pending: d.fds.pending[:0]}
	d.r.att = &d.fds
	d.strict = dec.Strict
	err = d.run(rv)
	if err != nil {
		d.fds.abandon()
	} else {
		err = d.fds.finish(d.r.off)
	}
	if err == nil {
		for _, a := range d.skipped {
			a.Close()
		}
	}
	d.release()
	return err
}

// decStatePool keeps decoding state between calls, so that decoding a
// struct allocates only what the struct itself holds.
var decStatePool = sync.Pool{New: func() any { return new(decState) }}

func (d *decState) release() {
	clear(d.fds.pending)
	clear(d.skipped)
	*d = decState{fds: fdSource{pending: d.fds.pending[:0]}, skipped: d.skipped[:0]}
	decStatePool.Put(d)
}

// ObjectInto stores the object obj in the Go value v points to (v must be a
// non-nil pointer), by the conversion rules of Marshal: it is the inverse of
// ValueOf. Out-of-band objects in obj are placed in v as they are (the same
// *FD pointers), still owned by obj's holder.
func ObjectInto(obj Object, v any) error {
	return objectInto(obj, v, false, false)
}

// ObjectIntoStrict is ObjectInto that also refuses what ObjectInto lets
// pass, for a peer that must send exactly what the Go type describes: a
// dictionary key with no field in a struct (ErrUnknownKey, saying which
// field it differs from only in case, if one), and a struct field tagged
// `xpc:",required"` whose key is absent (ErrRequiredKey). Both are the cause
// of a *FieldError naming the key's path. The rule holds in nested and
// embedded structs and in structs inside maps, slices and arrays.
func ObjectIntoStrict(obj Object, v any) error {
	return objectInto(obj, v, true, false)
}

// objectInto is ObjectInto, strict or not. With own, v's holder owns obj's
// descriptors: on success those with no place in v (under keys with no
// field, past the end of a Go array) are closed.
func objectInto(obj Object, v any, strict, own bool) error {
	rv, err := target(v)
	if err != nil {
		return err
	}
	w := getScratch()
	defer putScratch(w)
	if err := w.body(MagicLocal, obj); err != nil {
		return err
	}
	d := decStatePool.Get().(*decState)
	d.replay = replaySource{att: w.att}
	d.r = reader{b: w.b, lim: w.lim, att: &d.replay}
	d.strict = strict
	err = d.run(rv)
	if err == nil && own {
		for _, a := range d.skipped {
			_ = a.Close()
		}
	}
	d.release()
	return err
}

// scratchPool keeps the buffers that ValueOf and ObjectInto convert values
// through (the wire form is the one definition of what a value becomes), so
// that a conversion allocates only what its result holds.
var scratchPool = sync.Pool{New: func() any { return new(writer) }}

// maxScratch is the largest buffer scratchPool keeps.
const maxScratch = 64 << 10

// getScratch returns an empty writer without a size limit.
func getScratch() *writer {
	w := scratchPool.Get().(*writer)
	w.reset(w.b[:0], Limits{MaxSize: math.MaxInt})
	return w
}

func putScratch(w *writer) {
	if cap(w.b) > maxScratch {
		w.b = nil
	}
	w.reset(w.b[:0], Limits{})
	scratchPool.Put(w)
}

func target(v any) (reflect.Value, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return rv, &FieldError{Err: fmt.Errorf("%w: %T", ErrNotPointer, v)}
	}
	return rv, nil
}

// replaySource hands back, in order, the out-of-band objects an encoder
// collected, so a value converted through bytes keeps the very same ones.
type replaySource struct {
	att  []Attachment
	next int
}

func (s *replaySource) take(t Type, off int) (Attachment, error) {
	if s.next >= len(s.att) || s.att[s.next].Type() != t {
		return nil, &DecodeError{Offset: off, Err: ErrAttachments, Detail: fmt.Sprintf("%v object #%d", t, s.next+1)}
	}
	a := s.att[s.next]
	s.next++
	return a, nil
}

// decState is one decoding of a body into a Go value.
type decState struct {
	r       reader
	fds     fdSource     // the source of out-of-band objects, for DecodeValue
	skipped []Attachment // out-of-band objects under keys with no field
	replay  replaySource // the source of out-of-band objects, for ObjectInto
	strict  bool         // ObjectIntoStrict's rules: unknown keys and missing required keys are errors
}

func (d *decState) run(rv reflect.Value) error {
	if err := d.r.header(); err != nil {
		return err
	}
	t, off, err := d.r.tag()
	if err != nil {
		return err
	}
	if err := codecFor(rv.Type().Elem()).decode(d, rv.Elem(), t, off, 0); err != nil {
		return asFieldError(err)
	}
	return d.r.end()
}

// skip reads and checks the next object, which has no place in the Go
// value. Its out-of-band objects are remembered so that they can be closed.
func (d *decState) skip() error {
	t, off, err := d.r.tag()
	if err != nil {
		return err
	}
	obj, err := d.r.value(t, off)
	if err != nil {
		return err
	}
	switch t {
	case TypeArray, TypeDictionary, TypeError, TypeFD, TypeShmem, TypeEndpoint:
		walkAttachments(obj, func(a Attachment) { d.skipped = append(d.skipped, a) })
	}
	return nil
}

func (d *decState) boolValue(off int) (bool, error) {
	v, err := d.r.u32()
	if err != nil {
		return false, err
	}
	if v > 1 {
		return false, d.r.fail(off+4, ErrBadValue, "bool value %d", v)
	}
	return v == 1, nil
}

func (d *decState) uuidValue() (UUID, error) {
	var u UUID
	if err := d.r.need(16); err != nil {
		return u, err
	}
	copy(u[:], d.r.b[d.r.off:])
	d.r.off += 16
	return u, nil
}

// decInterface fills an interface: an empty one with the natural Go value,
// a non-empty one (Object, Attachment) with the object if it fits.
func decInterface(d *decState, v reflect.Value, t Type, off, ind int) error {
	if ind >= d.r.lim.maxDepth() {
		return tooDeep(d.r.lim.maxDepth())
	}
	empty := v.NumMethod() == 0
	if t == TypeNull {
		if !empty && nullType.Implements(v.Type()) {
			v.Set(reflect.ValueOf(Null{}))
		} else {
			v.SetZero()
		}
		return nil
	}
	if !v.IsNil() {
		if e := v.Elem(); e.Kind() == reflect.Pointer && !e.IsNil() && !isObjectType(e.Type()) {
			// Decode through the pointer (a settable copy of it, since the
			// codec may also replace it, as for *FD).
			p := reflect.New(e.Type()).Elem()
			p.Set(e)
			if err := codecFor(e.Type()).decode(d, p, t, off, ind+1); err != nil {
				return err
			}
			v.Set(p)
			return nil
		}
	}
	if empty {
		x, err := d.natural(t, off)
		if err != nil {
			return err
		}
		if x == nil {
			v.SetZero()
		} else {
			v.Set(reflect.ValueOf(x))
		}
		return nil
	}
	obj, err := d.r.value(t, off)
	if err != nil {
		return err
	}
	ov := reflect.ValueOf(obj)
	if !ov.Type().Implements(v.Type()) {
		return &FieldError{Err: fmt.Errorf("%w: %v object in a %v", ErrUnsupportedType, t, v.Type())}
	}
	v.Set(ov)
	return nil
}

func isObjectType(t reflect.Type) bool {
	_, ok := objectTypes[t]
	return ok
}

// natural reads an object as the Go value an empty interface receives.
func (d *decState) natural(t Type, off int) (any, error) {
	r := &d.r
	switch t {
	case TypeNull:
		return nil, nil
	case TypeBool:
		return d.boolValue(off)
	case TypeInt64, TypeUint64, TypeDouble, TypeDate:
		u, err := r.u64()
		if err != nil {
			return nil, err
		}
		switch t {
		case TypeInt64:
			return int64(u), nil
		case TypeUint64:
			return u, nil
		case TypeDouble:
			return math.Float64frombits(u), nil
		}
		return dateTime(Date(u)), nil
	case TypeData:
		p, err := r.payload()
		if err != nil {
			return nil, err
		}
		return bytes.Clone(p), nil
	case TypeString:
		return r.strPayload()
	case TypeUUID:
		return d.uuidValue()
	case TypeArray:
		return d.naturalArray()
	case TypeDictionary:
		return d.naturalMap()
	}
	obj, err := r.value(t, off) // error objects, out-of-band objects, bad tags
	if err != nil {
		return nil, err
	}
	return obj, nil
}

func (d *decState) naturalArray() (any, error) {
	var w walk
	if err := w.open(&d.r, TypeArray); err != nil {
		return nil, err
	}
	a := make([]any, w.count)
	for w.more(&d.r) {
		t, off, err := d.r.tag()
		if err != nil {
			return nil, err
		}
		if a[w.i], err = d.natural(t, off); err != nil {
			return nil, err
		}
	}
	return a, w.close(&d.r)
}

func (d *decState) naturalMap() (any, error) {
	var w walk
	if err := w.open(&d.r, TypeDictionary); err != nil {
		return nil, err
	}
	m := make(map[string]any, min(w.count, maxSizeHint))
	for w.more(&d.r) && w.readKey(&d.r) {
		if _, dup := m[string(w.key)]; dup {
			return nil, w.duplicate(&d.r)
		}
		t, off, err := d.r.tag()
		if err != nil {
			return nil, err
		}
		x, err := d.natural(t, off)
		if err != nil {
			return nil, err
		}
		m[string(w.key)] = x
	}
	return m, w.close(&d.r)
}
