package xpc

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
)

// The decoders of the Go types that hold other values: pointers, slices,
// Go arrays, maps and structs. Arrays and dictionaries are read through
// walk (walk.go), like every other container; typeCodec.decode has checked
// the tag against the codec's want (TypeArray or TypeDictionary).

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
func (c *seqCodec) decodeSlice(d *decState, v reflect.Value, _ Type, _, _ int) error {
	var w walk
	if err := w.open(&d.r, TypeArray); err != nil {
		return err
	}
	if v.IsNil() {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	v.SetLen(0)
	if size := v.Type().Elem().Size(); size == 0 || uintptr(w.count) <= maxPrealloc/size {
		v.Grow(w.count)
	}
	for w.more(&d.r) {
		if w.i == v.Cap() {
			v.Grow(1)
		}
		v.SetLen(w.i + 1)
		if err := c.decodeElem(d, v.Index(w.i), w.i); err != nil {
			return err
		}
	}
	return w.close(&d.r)
}

// decodeArray fills a Go array with as many elements as fit; the rest of
// the input's are checked and skipped, the rest of the Go array's zeroed.
func (c *seqCodec) decodeArray(d *decState, v reflect.Value, _ Type, _, _ int) error {
	var w walk
	if err := w.open(&d.r, TypeArray); err != nil {
		return err
	}
	l := v.Len()
	for w.more(&d.r) {
		var err error
		if w.i < l {
			err = c.decodeElem(d, v.Index(w.i), w.i)
		} else {
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
	for i := w.count; i < l; i++ {
		v.Index(i).SetZero()
	}
	return w.close(&d.r)
}

// decodeElem reads the next object into ev, element i of a slice or array.
func (c *seqCodec) decodeElem(d *decState, ev reflect.Value, i int) error {
	ev.SetZero()
	t, off, err := d.r.tag()
	if err != nil {
		return err
	}
	if err := c.elem.decode(d, ev, t, off, 0); err != nil {
		return prefixIndex(err, i)
	}
	return nil
}

// decode adds the dictionary's entries to the map, making it if nil.
func (c *mapCodec) decode(d *decState, v reflect.Value, _ Type, _, _ int) error {
	var w walk
	if err := w.open(&d.r, TypeDictionary); err != nil {
		return err
	}
	mt := v.Type()
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(mt, min(w.count, maxSizeHint)))
	}
	ev := reflect.New(mt.Elem()).Elem()
	var keys keySet
	for w.more(&d.r) && w.readKey(&d.r) {
		if !keys.add(w.key) {
			return w.duplicate(&d.r)
		}
		t, off, err := d.r.tag()
		if err != nil {
			return err
		}
		ev.SetZero()
		if err := c.elem.decode(d, ev, t, off, 0); err != nil {
			return prefixField(err, string(w.key))
		}
		kv := reflect.ValueOf(string(w.key))
		if kv.Type() != mt.Key() {
			kv = kv.Convert(mt.Key())
		}
		v.SetMapIndex(kv, ev)
	}
	return w.close(&d.r)
}

// decode sets the struct's fields from the dictionary's entries. Keys with
// no field are checked and skipped; a key seen twice is ErrDuplicateKey.
func (c *structCodec) decode(d *decState, v reflect.Value, _ Type, _, _ int) error {
	var w walk
	if err := w.open(&d.r, TypeDictionary); err != nil {
		return err
	}
	var fields fieldSet
	fields.init(len(c.fields))
	var unknown keySet
	next := 0 // the field expected next: encoders write them in order
	for w.more(&d.r) {
		fi, known := next, false
		if next < len(c.fields) && bytes.HasPrefix(w.rest(&d.r), c.fields[next].key) {
			w.took(&d.r, len(c.fields[next].name), len(c.fields[next].key))
			known = true
		} else if !w.readKey(&d.r) {
			break
		} else {
			fi, known = c.byName[string(w.key)]
		}
		if known && !fields.add(fi) || !known && !unknown.add(w.key) {
			return w.duplicate(&d.r)
		}
		if !known {
			if d.strict {
				return c.unknownKey(string(w.key))
			}
			if err := d.skip(); err != nil {
				return err
			}
			continue
		}
		next = fi + 1
		t, off, err := d.r.tag()
		if err != nil {
			return err
		}
		f := &c.fields[fi]
		fv := v
		if len(f.index) == 1 {
			fv = v.Field(f.index[0])
		} else if fv, err = embeddedFieldAlloc(v, f.index); err != nil {
			return prefixField(err, f.name)
		}
		if err := f.codec.decode(d, fv, t, off, 0); err != nil {
			return prefixField(err, f.name)
		}
	}
	if err := w.close(&d.r); err != nil || !d.strict || !c.anyRequired {
		return err
	}
	return c.missingKey(&fields)
}

// unknownKey is strict decoding's error for a key with no field, naming
// the field whose key differs from it only in case, if there is one.
func (c *structCodec) unknownKey(key string) error {
	for i := range c.fields {
		if strings.EqualFold(c.fields[i].name, key) {
			return &FieldError{Path: key, Err: fmt.Errorf("%w; keys are case-sensitive: did you mean %s?", ErrUnknownKey, c.fields[i].name)}
		}
	}
	return &FieldError{Path: key, Err: ErrUnknownKey}
}

// missingKey is strict decoding's error for the first field tagged
// required that the dictionary did not set, or nil.
func (c *structCodec) missingKey(set *fieldSet) error {
	for i := range c.fields {
		if c.fields[i].required && !set.has(i) {
			return &FieldError{Path: c.fields[i].name, Err: ErrRequiredKey}
		}
	}
	return nil
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

// has reports whether field i is marked.
func (s *fieldSet) has(i int) bool {
	w := s.small
	if s.more != nil {
		w = s.more[i>>6]
	}
	return w&(uint64(1)<<(i&63)) != 0
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
