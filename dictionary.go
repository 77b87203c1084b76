package xpc

import (
	"errors"
	"fmt"
	"iter"
	"time"
)

// Dictionary is an XPC dictionary: unique string keys mapped to objects,
// kept in insertion order. A decoded dictionary keeps the order its keys came
// in on the wire, so it re-encodes to the same bytes. The zero value is an
// empty dictionary ready to use. A Dictionary is not safe for concurrent
// mutation.
type Dictionary struct {
	ents  []dictEntry
	index map[string]int // built once the dictionary outgrows linear search
}

type dictEntry struct {
	key string
	val Object
}

// smallDict is a dictionary and the storage of its first entries, allocated
// together: most messages are small, and a dictionary then costs one
// allocation instead of two.
type smallDict struct {
	d   Dictionary
	buf [smallDictLen]dictEntry
}

const smallDictLen = 4

// indexThreshold is the size above which lookups use a map instead of a
// linear scan; small dictionaries (most messages) never allocate one.
const indexThreshold = 12

// NewDictionary returns an empty dictionary with room for n entries.
func NewDictionary(n int) *Dictionary {
	if n <= smallDictLen {
		sd := new(smallDict)
		sd.d.ents = sd.buf[:0]
		return &sd.d
	}
	return &Dictionary{ents: make([]dictEntry, 0, n)}
}

// Dict builds a dictionary from alternating keys and values, converting each
// value with ValueOf. It panics if a key is not a string or a value cannot be
// converted: it is meant for literals written in code. Use ValueOf or
// Dictionary.Set for data that comes from elsewhere.
func Dict(pairs ...any) *Dictionary {
	if len(pairs)%2 != 0 {
		panic("xpc.Dict: odd number of arguments")
	}
	d := NewDictionary(len(pairs) / 2)
	for i := 0; i < len(pairs); i += 2 {
		k, ok := pairs[i].(string)
		if !ok {
			panic(fmt.Sprintf("xpc.Dict: key %d is %T, not string", i/2, pairs[i]))
		}
		v, err := ValueOf(pairs[i+1])
		if err != nil {
			panic(fmt.Sprintf("xpc.Dict: key %q: %v", k, err))
		}
		d.Set(k, v)
	}
	return d
}

// Type reports TypeDictionary.
func (*Dictionary) Type() Type { return TypeDictionary }
func (*Dictionary) isObject()  {}

// Len returns the number of entries.
func (d *Dictionary) Len() int { return len(d.ents) }

func (d *Dictionary) find(key string) int {
	if d.index != nil {
		if i, ok := d.index[key]; ok {
			return i
		}
		return -1
	}
	for i := range d.ents {
		if d.ents[i].key == key {
			return i
		}
	}
	return -1
}

func (d *Dictionary) reindex() {
	if len(d.ents) <= indexThreshold {
		d.index = nil
		return
	}
	d.index = make(map[string]int, len(d.ents))
	for i, e := range d.ents {
		d.index[e.key] = i
	}
}

// Get returns the value under key, or nil if there is none. With a type
// assertion it is the ok-form accessor: n, ok := d.Get("n").(xpc.Int64).
func (d *Dictionary) Get(key string) Object {
	if i := d.find(key); i >= 0 {
		return d.ents[i].val
	}
	return nil
}

// Set puts v under key. A new key goes at the end; an existing key keeps its
// place and gets the new value. A nil v deletes the key.
func (d *Dictionary) Set(key string, v Object) {
	if v == nil {
		d.Delete(key)
		return
	}
	if i := d.find(key); i >= 0 {
		d.ents[i].val = v
		return
	}
	d.add(key, v)
}

// add appends an entry whose key is not in d.
func (d *Dictionary) add(key string, v Object) {
	d.ents = append(d.ents, dictEntry{key, v})
	if d.index != nil {
		d.index[key] = len(d.ents) - 1
	} else if len(d.ents) > indexThreshold {
		d.reindex()
	}
}

// Delete removes key, keeping the order of the others.
func (d *Dictionary) Delete(key string) {
	i := d.find(key)
	if i < 0 {
		return
	}
	d.ents = append(d.ents[:i], d.ents[i+1:]...)
	d.ents[len(d.ents):cap(d.ents)][0] = dictEntry{} // drop the moved-out reference
	if d.index != nil {
		d.reindex()
	}
}

// Keys returns the keys in order, as a new slice.
func (d *Dictionary) Keys() []string {
	keys := make([]string, len(d.ents))
	for i, e := range d.ents {
		keys[i] = e.key
	}
	return keys
}

// All iterates over the entries in order.
func (d *Dictionary) All() iter.Seq2[string, Object] {
	return func(yield func(string, Object) bool) {
		for _, e := range d.ents {
			if !yield(e.key, e.val) {
				return
			}
		}
	}
}

// At returns the i'th entry in order.
func (d *Dictionary) At(i int) (string, Object) { return d.ents[i].key, d.ents[i].val }

// Reset empties the dictionary, keeping its storage for reuse.
func (d *Dictionary) Reset() {
	clear(d.ents)
	d.ents = d.ents[:0]
	d.index = nil
}

// ErrKeyNotFound is returned by the typed accessors when the key is absent.
var ErrKeyNotFound = errors.New("key not found")

// TypeMismatchError reports a value of one XPC type where another was needed.
type TypeMismatchError struct {
	Path string // the key, or a field path such as "config.ports[2]"
	Want Type
	Got  Type
}

func (e *TypeMismatchError) Error() string {
	return fmt.Sprintf("xpc: %s: want %v, have %v", e.Path, e.Want, e.Got)
}

func lookupAs[T Object](d *Dictionary, key string, want Type) (T, error) {
	var zero T
	v := d.Get(key)
	if v == nil {
		return zero, fmt.Errorf("xpc: %w: %q", ErrKeyNotFound, key)
	}
	t, ok := v.(T)
	if !ok {
		return zero, &TypeMismatchError{Path: key, Want: want, Got: v.Type()}
	}
	return t, nil
}

// Bool returns the bool under key; ErrKeyNotFound or *TypeMismatchError otherwise.
func (d *Dictionary) Bool(key string) (bool, error) {
	v, err := lookupAs[Bool](d, key, TypeBool)
	return bool(v), err
}

// Int64 returns the int64 under key; ErrKeyNotFound or *TypeMismatchError otherwise.
func (d *Dictionary) Int64(key string) (int64, error) {
	v, err := lookupAs[Int64](d, key, TypeInt64)
	return int64(v), err
}

// Uint64 returns the uint64 under key; ErrKeyNotFound or *TypeMismatchError otherwise.
func (d *Dictionary) Uint64(key string) (uint64, error) {
	v, err := lookupAs[Uint64](d, key, TypeUint64)
	return uint64(v), err
}

// Double returns the double under key; ErrKeyNotFound or *TypeMismatchError otherwise.
func (d *Dictionary) Double(key string) (float64, error) {
	v, err := lookupAs[Double](d, key, TypeDouble)
	return float64(v), err
}

// Date returns the date under key; ErrKeyNotFound or *TypeMismatchError otherwise.
func (d *Dictionary) Date(key string) (time.Time, error) {
	v, err := lookupAs[Date](d, key, TypeDate)
	if err != nil {
		return time.Time{}, err
	}
	return v.Time(), nil
}

// Data returns the bytes under key (not a copy); ErrKeyNotFound or
// *TypeMismatchError otherwise.
func (d *Dictionary) Data(key string) ([]byte, error) {
	v, err := lookupAs[Data](d, key, TypeData)
	return []byte(v), err
}

// String returns the string under key; ErrKeyNotFound or *TypeMismatchError
// otherwise. (Use Format for the dictionary's description.)
func (d *Dictionary) String(key string) (string, error) {
	v, err := lookupAs[String](d, key, TypeString)
	return string(v), err
}

// UUID returns the uuid under key; ErrKeyNotFound or *TypeMismatchError otherwise.
func (d *Dictionary) UUID(key string) (UUID, error) {
	return lookupAs[UUID](d, key, TypeUUID)
}

// Array returns the array under key; ErrKeyNotFound or *TypeMismatchError otherwise.
func (d *Dictionary) Array(key string) (Array, error) {
	return lookupAs[Array](d, key, TypeArray)
}

// Dictionary returns the dictionary under key; ErrKeyNotFound or
// *TypeMismatchError otherwise.
func (d *Dictionary) Dictionary(key string) (*Dictionary, error) {
	return lookupAs[*Dictionary](d, key, TypeDictionary)
}
