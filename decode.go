package xpc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Decoder reads serialized bodies. The zero value accepts both body magics
// with the default limits. A Decoder holds no state between calls and is
// safe for concurrent use.
type Decoder struct {
	Limits Limits
	// Strict makes DecodeValue decode as ObjectIntoStrict does: a key with
	// no field, or a field tagged required with no key, is an error. Decode
	// ignores it.
	Strict bool
}

// Decode parses a body holding no out-of-band objects, with default limits.
func Decode(body []byte) (Object, error) {
	var d Decoder
	return d.Decode(body, nil)
}

// Decode parses a body. fds are the descriptors that arrived beside it, one
// for each fd, shmem and endpoint tag in body order. On success the returned
// value owns every one of them; on error the decoder has taken none and the
// caller still owns (and must close) them all.
func (d *Decoder) Decode(body []byte, fds []int) (Object, error) {
	if len(fds) == 0 {
		// The common case, without a source to allocate.
		r := reader{b: body, lim: d.Limits, att: noFDs{}}
		if len(body) <= oneStringMax {
			r.s = string(body)
		}
		obj, err := r.body()
		if err != nil {
			return nil, err
		}
		return obj, nil
	}
	src := &fdSource{fds: fds}
	r := reader{b: body, lim: d.Limits, att: src}
	if len(body) <= oneStringMax {
		r.s = string(body)
	}
	obj, err := r.body()
	if err != nil {
		src.abandon()
		return nil, err
	}
	if err := src.finish(r.off); err != nil {
		return nil, err
	}
	return obj, nil
}

// PeekMagic returns a body's magic (MagicLocal or MagicRemote), or a
// *DecodeError if b does not start with a known one.
func PeekMagic(b []byte) (uint32, error) {
	if len(b) < 4 {
		return 0, &DecodeError{Offset: 0, Err: ErrTruncated, Detail: "no magic"}
	}
	m := binary.LittleEndian.Uint32(b)
	if m != MagicLocal && m != MagicRemote {
		return 0, &DecodeError{Offset: 0, Err: ErrBadMagic, Detail: fmt.Sprintf("%#08x", m)}
	}
	return m, nil
}

// attachSource supplies the out-of-band objects a body's bare tags stand for.
type attachSource interface {
	take(t Type, off int) (Attachment, error)
}

// fdSource turns received descriptors into objects. It builds the objects
// while decoding but gives them their files only in finish, so that a
// decode error leaves every descriptor with the caller.
type fdSource struct {
	fds     []int
	next    int
	pending []Attachment
}

func (s *fdSource) take(t Type, off int) (Attachment, error) {
	if s.next >= len(s.fds) {
		return nil, &DecodeError{Offset: off, Err: ErrAttachments,
			Detail: fmt.Sprintf("%v object #%d but only %d descriptors arrived", t, s.next+1, len(s.fds))}
	}
	fd := s.fds[s.next]
	s.next++
	var a Attachment
	switch t {
	case TypeFD:
		a = &FD{}
	case TypeEndpoint:
		a = &Endpoint{}
	case TypeShmem:
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil, &DecodeError{Offset: off, Err: ErrAttachments,
				Detail: fmt.Sprintf("shmem object #%d: descriptor is not a memory file", s.next)}
		}
		a = receivedSharedMemory(int(st.Size))
	}
	s.pending = append(s.pending, a)
	return a, nil
}

func (s *fdSource) abandon() { s.pending = nil }

// noFDs is the attachSource of a body that came without descriptors.
type noFDs struct{}

func (noFDs) take(t Type, off int) (Attachment, error) {
	return nil, &DecodeError{Offset: off, Err: ErrAttachments,
		Detail: fmt.Sprintf("%v object #1 but only 0 descriptors arrived", t)}
}

func (s *fdSource) finish(off int) error {
	if s.next != len(s.fds) {
		return &DecodeError{Offset: off, Err: ErrAttachments,
			Detail: fmt.Sprintf("%d descriptors arrived but the body uses %d", len(s.fds), s.next)}
	}
	for i, a := range s.pending {
		f := os.NewFile(uintptr(s.fds[i]), "xpc-"+a.Type().String())
		switch v := a.(type) {
		case *FD:
			v.setFile(f)
		case *Endpoint:
			v.setFile(f)
		case *SharedMemory:
			v.setFile(f)
		}
	}
	return nil
}

// reader is the low-level parser shared by the object and struct decoders.
// Every length is checked against the bytes that remain before anything is
// allocated for it.
type reader struct {
	b     []byte
	off   int
	lim   Limits
	depth int
	att   attachSource
	// s is b as one string, for a body no larger than oneStringMax:
	// dictionary keys and strings are then slices of it (text), one
	// allocation for the whole body instead of one each. They keep s
	// alive, which is why large bodies are not converted.
	s string
}

// oneStringMax is the largest body whose keys and strings share one
// allocation: most messages are smaller, and what a kept key or string
// holds on to stays small.
const oneStringMax = 2048

// text returns b, which is r.b[off:off+len(b)], as a string.
func (r *reader) text(off int, b []byte) string {
	if r.s != "" {
		return r.s[off : off+len(b)]
	}
	return string(b)
}

func (r *reader) fail(off int, kind error, format string, args ...any) error {
	return &DecodeError{Offset: off, Err: kind, Detail: fmt.Sprintf(format, args...)}
}

func (r *reader) body() (Object, error) {
	if err := r.header(); err != nil {
		return nil, err
	}
	obj, err := r.object()
	if err != nil {
		return nil, err
	}
	return obj, r.end()
}

func (r *reader) header() error {
	if len(r.b) > r.lim.maxSize() {
		return r.fail(0, ErrTooLarge, "body of %d bytes exceeds the limit of %d", len(r.b), r.lim.maxSize())
	}
	if _, err := PeekMagic(r.b); err != nil {
		return err
	}
	r.off = 4
	v, err := r.u32()
	if err != nil {
		return err
	}
	if v != Version {
		return r.fail(4, ErrBadVersion, "version %d, want %d", v, Version)
	}
	return nil
}

func (r *reader) end() error {
	if r.off != len(r.b) {
		return r.fail(r.off, ErrTrailingBytes, "%d bytes after the root object", len(r.b)-r.off)
	}
	return nil
}

func (r *reader) need(n int) error {
	if n < 0 || n > len(r.b)-r.off {
		return r.truncated(n)
	}
	return nil
}

// truncated is the error for n bytes needed where fewer remain. It is out of
// line so that need, u32 and u64, which run for every object, stay small:
// need is inlined, and u32 and u64 call nothing.
//
//go:noinline
func (r *reader) truncated(n int) error {
	return r.fail(r.off, ErrTruncated, "need %d bytes, %d remain", n, len(r.b)-r.off)
}

func (r *reader) u32() (uint32, error) {
	b := r.b[r.off:]
	if len(b) < 4 {
		return 0, r.truncated(4)
	}
	r.off += 4
	return binary.LittleEndian.Uint32(b), nil
}

func (r *reader) u64() (uint64, error) {
	b := r.b[r.off:]
	if len(b) < 8 {
		return 0, r.truncated(8)
	}
	r.off += 8
	return binary.LittleEndian.Uint64(b), nil
}

// skipPad consumes the zero padding after n payload bytes.
func (r *reader) skipPad(n int) error {
	p := (4 - n&3) & 3
	if err := r.need(p); err != nil {
		return err
	}
	for i := 0; i < p; i++ {
		if r.b[r.off+i] != 0 {
			return r.fail(r.off+i, ErrBadPadding, "byte %#02x", r.b[r.off+i])
		}
	}
	r.off += p
	return nil
}

// payload returns the length-prefixed bytes of a data or string object,
// aliasing the input, and consumes them with their padding.
func (r *reader) payload() ([]byte, error) {
	lenOff := r.off
	n32, err := r.u32()
	if err != nil {
		return nil, err
	}
	n := int(n32)
	if n > len(r.b)-r.off {
		return nil, r.fail(lenOff, ErrTruncated, "length %d but %d bytes remain", n, len(r.b)-r.off)
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, r.skipPad(n)
}

// strPayload reads a string object's payload (after its tag).
func (r *reader) strPayload() (string, error) {
	start := r.off
	p, err := r.payload()
	if err != nil {
		return "", err
	}
	if len(p) == 0 || p[len(p)-1] != 0 {
		return "", r.fail(start, ErrBadString, "not NUL-terminated")
	}
	p = p[:len(p)-1]
	if i := bytes.IndexByte(p, 0); i >= 0 {
		return "", r.fail(start+4+i, ErrBadString, "NUL inside the string")
	}
	if !utf8.Valid(p) {
		return "", r.fail(start+4, ErrBadString, "not valid UTF-8")
	}
	return r.text(start+4, p), nil
}

func (r *reader) tag() (Type, int, error) {
	off := r.off
	t, err := r.u32()
	return Type(t), off, err
}

func (r *reader) object() (Object, error) {
	t, off, err := r.tag()
	if err != nil {
		return nil, err
	}
	return r.value(t, off)
}

// value reads the object whose tag t, at off, has just been consumed.
func (r *reader) value(t Type, off int) (Object, error) {
	switch t {
	case TypeNull:
		return Null{}, nil
	case TypeBool:
		v, err := r.u32()
		if err != nil {
			return nil, err
		}
		if v > 1 {
			return nil, r.fail(off+4, ErrBadValue, "bool value %d", v)
		}
		return Bool(v == 1), nil
	case TypeInt64, TypeUint64, TypeDouble, TypeDate:
		v, err := r.u64()
		if err != nil {
			return nil, err
		}
		switch t {
		case TypeInt64:
			return Int64(v), nil
		case TypeUint64:
			return Uint64(v), nil
		case TypeDouble:
			return Double(math.Float64frombits(v)), nil
		}
		return Date(v), nil
	case TypeData:
		p, err := r.payload()
		if err != nil {
			return nil, err
		}
		return Data(bytes.Clone(p)), nil
	case TypeString:
		s, err := r.strPayload()
		return String(s), err
	case TypeUUID:
		if err := r.need(16); err != nil {
			return nil, err
		}
		var u UUID
		copy(u[:], r.b[r.off:])
		r.off += 16
		return u, nil
	case TypeArray:
		return r.array()
	case TypeDictionary:
		return r.dict()
	case TypeError:
		d, err := r.dictionary(TypeError)
		if err != nil {
			return nil, err
		}
		return &ErrorObject{Dictionary: *d}, nil
	case TypeFD, TypeShmem, TypeEndpoint:
		if r.att == nil {
			return nil, r.fail(off, ErrAttachments, "%v object where none can arrive", t)
		}
		return r.att.take(t, off)
	}
	return nil, r.fail(off, ErrUnknownType, "tag %#x", uint32(t))
}

func (r *reader) array() (Object, error) {
	var w walk
	if err := w.open(r, TypeArray); err != nil {
		return nil, err
	}
	a := make(Array, w.count)
	for w.more(r) {
		var err error
		if a[w.i], err = r.object(); err != nil {
			return nil, err
		}
	}
	return a, w.close(r)
}

func (r *reader) dict() (Object, error) { return r.dictionary(TypeDictionary) }

func (r *reader) dictionary(t Type) (*Dictionary, error) {
	var w walk
	if err := w.open(r, t); err != nil {
		return nil, err
	}
	d := NewDictionary(w.count)
	for w.more(r) && w.readKey(r) {
		if d.findBytes(w.key) >= 0 {
			return nil, w.duplicate(r)
		}
		v, err := r.object()
		if err != nil {
			return nil, err
		}
		d.add(r.text(w.keyOff, w.key), v)
	}
	return d, w.close(r)
}

// findBytes is find for a key still in the input, without converting it.
func (d *Dictionary) findBytes(k []byte) int {
	if d.index != nil {
		if i, ok := d.index[string(k)]; ok {
			return i
		}
		return -1
	}
	for i := range d.ents {
		if d.ents[i].key == string(k) {
			return i
		}
	}
	return -1
}
