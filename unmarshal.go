package xpc

import (
	"bytes"
	"encoding"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"
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
	rv, err := target(v)
	if err != nil {
		return err
	}
	lim := Limits{MaxSize: math.MaxInt}
	var w writer
	w.reset(nil, lim)
	if err := w.body(MagicLocal, obj); err != nil {
		return err
	}
	d := &decState{r: reader{b: w.b, lim: lim, att: &replaySource{att: w.att}}}
	return d.run(rv)
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

// skip reads and checks an object that has no place in the Go value. Its
// out-of-band objects are remembered so that they can be closed.
func (d *decState) skip(t Type, off int) error {
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

// The decoders. Each reads the object whose tag t, at off, has just been
// consumed, into the settable v. Null has been handled unless the codec
// sees it (typeCodec.decode).

func decNull(_ *decState, _ reflect.Value, t Type, _, _ int) error {
	return mismatch(TypeNull, t)
}

func decBool(d *decState, v reflect.Value, t Type, off, _ int) error {
	if t != TypeBool {
		return mismatch(TypeBool, t)
	}
	b, err := d.boolValue(off)
	if err != nil {
		return err
	}
	v.SetBool(b)
	return nil
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

func decFloat(d *decState, v reflect.Value, t Type, _, _ int) error {
	if t != TypeDouble && t != TypeInt64 && t != TypeUint64 {
		return mismatch(TypeDouble, t)
	}
	u, err := d.r.u64()
	if err != nil {
		return err
	}
	var f float64
	switch t {
	case TypeDouble:
		f = math.Float64frombits(u)
	case TypeInt64:
		f = float64(int64(u))
	default:
		f = float64(u)
	}
	if v.OverflowFloat(f) {
		return overflow(f, v.Type())
	}
	v.SetFloat(f)
	return nil
}

func decString(d *decState, v reflect.Value, t Type, _, _ int) error {
	if t != TypeString {
		return mismatch(TypeString, t)
	}
	s, err := d.r.strPayload()
	if err != nil {
		return err
	}
	v.SetString(s)
	return nil
}

func decBytes(d *decState, v reflect.Value, t Type, _, _ int) error {
	if t != TypeData {
		return mismatch(TypeData, t)
	}
	p, err := d.r.payload()
	if err != nil {
		return err
	}
	v.SetBytes(bytes.Clone(p))
	return nil
}

func decByteArray(d *decState, v reflect.Value, t Type, _, _ int) error {
	if t != TypeData {
		return mismatch(TypeData, t)
	}
	p, err := d.r.payload()
	if err != nil {
		return err
	}
	if len(p) != v.Len() {
		return &FieldError{Err: fmt.Errorf("%w: %d bytes of data for %v", ErrOverflow, len(p), v.Type())}
	}
	copy(v.Bytes(), p)
	return nil
}

func decTime(d *decState, v reflect.Value, t Type, _, _ int) error {
	if t != TypeDate {
		return mismatch(TypeDate, t)
	}
	u, err := d.r.u64()
	if err != nil {
		return err
	}
	tp, _ := reflect.TypeAssert[*time.Time](v.Addr())
	*tp = dateTime(Date(u))
	return nil
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

func decDate(d *decState, v reflect.Value, t Type, _, _ int) error {
	if t != TypeDate {
		return mismatch(TypeDate, t)
	}
	u, err := d.r.u64()
	if err != nil {
		return err
	}
	v.SetInt(int64(u))
	return nil
}

// decUUID reads a uuid, or a string in the 8-4-4-4-12 form (property lists
// have no uuid type).
func decUUID(d *decState, v reflect.Value, t Type, _, _ int) error {
	up, _ := reflect.TypeAssert[*UUID](v.Addr())
	switch t {
	case TypeUUID:
		u, err := d.uuidValue()
		if err != nil {
			return err
		}
		*up = u
		return nil
	case TypeString:
		s, err := d.r.strPayload()
		if err != nil {
			return err
		}
		u, err := ParseUUID(s)
		if err != nil {
			return &FieldError{Err: err}
		}
		*up = u
		return nil
	}
	return mismatch(TypeUUID, t)
}

// decObject takes an object as it is into a field of its own Go type.
func decObject(want Type) decodeFunc {
	return func(d *decState, v reflect.Value, t Type, off, _ int) error {
		if t != want {
			return mismatch(want, t)
		}
		obj, err := d.r.value(t, off)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(obj))
		return nil
	}
}

// decObjectStruct takes a dictionary or error object into a Dictionary or
// ErrorObject held by value.
func decObjectStruct(want Type) decodeFunc {
	return func(d *decState, v reflect.Value, t Type, off, _ int) error {
		if t != want {
			return mismatch(want, t)
		}
		obj, err := d.r.value(t, off)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(obj).Elem())
		return nil
	}
}

func decUnmarshaler(d *decState, v reflect.Value, t Type, off, _ int) error {
	obj, err := d.r.value(t, off)
	if err != nil {
		return err
	}
	u, _ := reflect.TypeAssert[Unmarshaler](v.Addr())
	if err := u.UnmarshalXPC(obj); err != nil {
		return &FieldError{Err: fmt.Errorf("%v.UnmarshalXPC: %w", v.Type(), err)}
	}
	return nil
}

func decText(d *decState, v reflect.Value, t Type, _, _ int) error {
	if t != TypeString {
		return mismatch(TypeString, t)
	}
	s, err := d.r.strPayload()
	if err != nil {
		return err
	}
	u, _ := reflect.TypeAssert[encoding.TextUnmarshaler](v.Addr())
	if err := u.UnmarshalText([]byte(s)); err != nil {
		return &FieldError{Err: fmt.Errorf("%v.UnmarshalText: %w", v.Type(), err)}
	}
	return nil
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
	r := &d.r
	end, n, err := r.container(TypeArray, 4)
	if err != nil {
		return nil, err
	}
	a := make([]any, n)
	for i := range a {
		t, off, err := r.tag()
		if err != nil {
			return nil, err
		}
		if a[i], err = d.natural(t, off); err != nil {
			return nil, err
		}
		if r.off > end {
			return nil, r.fail(end, ErrBadLength, "array element %d runs past the array's end", i)
		}
	}
	return a, r.closeContainer(TypeArray, end)
}

func (d *decState) naturalMap() (any, error) {
	r := &d.r
	end, n, err := r.container(TypeDictionary, 8)
	if err != nil {
		return nil, err
	}
	m := make(map[string]any, min(n, maxSizeHint))
	for range n {
		koff := r.off
		kb, err := r.keyBytes(end)
		if err != nil {
			return nil, err
		}
		if _, dup := m[string(kb)]; dup {
			return nil, r.fail(koff, ErrDuplicateKey, "%q", kb)
		}
		t, off, err := r.tag()
		if err != nil {
			return nil, err
		}
		x, err := d.natural(t, off)
		if err != nil {
			return nil, err
		}
		if r.off > end {
			return nil, r.fail(end, ErrBadLength, "value of %q runs past the dictionary's end", kb)
		}
		m[string(kb)] = x
	}
	return m, r.closeContainer(TypeDictionary, end)
}

// maxSizeHint caps the room made ahead for a map from a count in the input,
// which is hostile; maps grow past it as entries actually arrive.
const maxSizeHint = 256

// maxPrealloc caps the bytes a slice gets ahead of its elements arriving.
const maxPrealloc = 1 << 20

func (c *ptrCodec) decode(d *decState, v reflect.Value, t Type, off, ind int) error {
	if ind >= d.r.lim.maxDepth() {
		return tooDeep(d.r.lim.maxDepth())
	}
	if v.IsNil() {
		v.Set(reflect.New(v.Type().Elem()))
	}
	return c.elem.decode(d, v.Elem(), t, off, ind+1)
}

// decodeSlice replaces the slice's contents with the array's elements,
// reusing its storage.
func (c *seqCodec) decodeSlice(d *decState, v reflect.Value, t Type, off, _ int) error {
	if t != TypeArray {
		return mismatch(TypeArray, t)
	}
	r := &d.r
	end, n, err := r.container(TypeArray, 4)
	if err != nil {
		return err
	}
	if v.IsNil() {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	v.SetLen(0)
	if size := v.Type().Elem().Size(); size == 0 || uintptr(n) <= maxPrealloc/size {
		v.Grow(n)
	}
	for i := range n {
		if i == v.Cap() {
			v.Grow(1)
		}
		v.SetLen(i + 1)
		e := v.Index(i)
		e.SetZero()
		t, off, err := r.tag()
		if err != nil {
			return err
		}
		if err := c.elem.decode(d, e, t, off, 0); err != nil {
			return prefixIndex(err, i)
		}
		if r.off > end {
			return r.fail(end, ErrBadLength, "array element %d runs past the array's end", i)
		}
	}
	return r.closeContainer(TypeArray, end)
}

// decodeArray fills a Go array with as many elements as fit; the rest of
// the input's are checked and skipped, the rest of the Go array's zeroed.
func (c *seqCodec) decodeArray(d *decState, v reflect.Value, t Type, off, _ int) error {
	if t != TypeArray {
		return mismatch(TypeArray, t)
	}
	r := &d.r
	end, n, err := r.container(TypeArray, 4)
	if err != nil {
		return err
	}
	l := v.Len()
	for i := range n {
		t, off, err := r.tag()
		if err != nil {
			return err
		}
		if i < l {
			e := v.Index(i)
			e.SetZero()
			if err := c.elem.decode(d, e, t, off, 0); err != nil {
				return prefixIndex(err, i)
			}
		} else if err := d.skip(t, off); err != nil {
			return err
		}
		if r.off > end {
			return r.fail(end, ErrBadLength, "array element %d runs past the array's end", i)
		}
	}
	for i := n; i < l; i++ {
		v.Index(i).SetZero()
	}
	return r.closeContainer(TypeArray, end)
}

// decode adds the dictionary's entries to the map, making it if nil.
func (c *mapCodec) decode(d *decState, v reflect.Value, t Type, off, _ int) error {
	if t != TypeDictionary {
		return mismatch(TypeDictionary, t)
	}
	r := &d.r
	end, n, err := r.container(TypeDictionary, 8)
	if err != nil {
		return err
	}
	mt := v.Type()
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(mt, min(n, maxSizeHint)))
	}
	ev := reflect.New(mt.Elem()).Elem()
	var seen keySet
	for range n {
		koff := r.off
		kb, err := r.keyBytes(end)
		if err != nil {
			return err
		}
		if !seen.add(kb) {
			return r.fail(koff, ErrDuplicateKey, "%q", kb)
		}
		t, off, err := r.tag()
		if err != nil {
			return err
		}
		ev.SetZero()
		if err := c.elem.decode(d, ev, t, off, 0); err != nil {
			return prefixField(err, string(kb))
		}
		if r.off > end {
			return r.fail(end, ErrBadLength, "value of %q runs past the dictionary's end", kb)
		}
		kv := reflect.ValueOf(string(kb))
		if kv.Type() != mt.Key() {
			kv = kv.Convert(mt.Key())
		}
		v.SetMapIndex(kv, ev)
	}
	return r.closeContainer(TypeDictionary, end)
}

// decode sets the struct's fields from the dictionary's entries. Keys with
// no field are checked and skipped; a key seen twice is ErrDuplicateKey.
func (c *structCodec) decode(d *decState, v reflect.Value, t Type, off, _ int) error {
	if t != TypeDictionary {
		return mismatch(TypeDictionary, t)
	}
	r := &d.r
	end, n, err := r.container(TypeDictionary, 8)
	if err != nil {
		return err
	}
	var seen fieldSet
	seen.init(len(c.fields))
	var unknown keySet
	next := 0 // the field expected next: encoders write them in order
	for range n {
		koff := r.off
		fi := -1
		var kb []byte
		if next < len(c.fields) && bytes.HasPrefix(r.b[r.off:end], c.fields[next].key) {
			// Fast path: the field encoders write next, matched with its
			// padded key as a whole (valid UTF-8, NUL, zero padding).
			f := &c.fields[next]
			kb = r.b[r.off : r.off+len(f.name)]
			r.off += len(f.key)
			fi = next
		} else {
			if kb, err = r.keyBytes(end); err != nil {
				return err
			}
			if i, ok := c.byName[string(kb)]; ok {
				fi = i
			}
		}
		if fi < 0 {
			if !unknown.add(kb) {
				return r.fail(koff, ErrDuplicateKey, "%q", kb)
			}
		} else if !seen.add(fi) {
			return r.fail(koff, ErrDuplicateKey, "%q", kb)
		}
		t, toff, err := r.tag()
		if err != nil {
			return err
		}
		if fi < 0 {
			if err := d.skip(t, toff); err != nil {
				return err
			}
		} else {
			next = fi + 1
			f := &c.fields[fi]
			fv := v
			if len(f.index) == 1 {
				fv = v.Field(f.index[0])
			} else if fv, err = embeddedFieldAlloc(v, f.index); err != nil {
				return prefixField(err, f.name)
			}
			if err := f.codec.decode(d, fv, t, toff, 0); err != nil {
				return prefixField(err, f.name)
			}
		}
		if r.off > end {
			return r.fail(end, ErrBadLength, "value of %q runs past the dictionary's end", kb)
		}
	}
	return r.closeContainer(TypeDictionary, end)
}

// embeddedFieldAlloc follows index through embedded structs, allocating nil
// embedded pointers on the way.
func embeddedFieldAlloc(v reflect.Value, index []int) (reflect.Value, error) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return v, &FieldError{Err: fmt.Errorf("%w: nil embedded pointer to unexported %v", ErrUnsupportedType, v.Type().Elem())}
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, nil
}

// fieldSet records which fields of a struct a dictionary has set; it needs
// no allocation for structs of up to 64 fields.
type fieldSet struct {
	small uint64
	more  []uint64
}

func (s *fieldSet) init(n int) {
	if n > 64 {
		s.more = make([]uint64, (n+63)/64)
	}
}

// add marks field i, reporting false if it was marked already.
func (s *fieldSet) add(i int) bool {
	w, bit := &s.small, uint64(1)<<(i&63)
	if s.more != nil {
		w = &s.more[i>>6]
	}
	if *w&bit != 0 {
		return false
	}
	*w |= bit
	return true
}

// keySet records the keys of a dictionary seen so far, as slices of the
// input; it allocates nothing until a key is added and switches to a map
// when it grows, so hostile input cannot make checking quadratic.
type keySet struct {
	list [][]byte
	m    map[string]struct{}
}

const keySetListMax = 16

// add records k, reporting false if it was recorded already.
func (s *keySet) add(k []byte) bool {
	if s.m != nil {
		if _, ok := s.m[string(k)]; ok {
			return false
		}
		s.m[string(k)] = struct{}{}
		return true
	}
	for _, x := range s.list {
		if bytes.Equal(x, k) {
			return false
		}
	}
	if len(s.list) < keySetListMax {
		s.list = append(s.list, k)
		return true
	}
	s.m = make(map[string]struct{}, 2*keySetListMax)
	for _, x := range s.list {
		s.m[string(x)] = struct{}{}
	}
	s.m[string(k)] = struct{}{}
	s.list = nil
	return true
}
