package xpc

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Body magics and the format version (docs/PROTOCOL.md §1).
const (
	MagicLocal  uint32 = 0x40585043 // "@XPC": local XPC, and goxpc's own transport
	MagicRemote uint32 = 0x42133742 // RemoteXPC
	Version     uint32 = 5
)

// Default limits (see Limits).
const (
	DefaultMaxSize  = 64 << 20
	DefaultMaxDepth = 64
)

// Limits bound what an encoder writes and a decoder accepts. The zero value
// means the defaults.
type Limits struct {
	MaxSize  int // body bytes, header included; 0 means DefaultMaxSize
	MaxDepth int // container nesting; 0 means DefaultMaxDepth
}

func (l Limits) maxSize() int {
	if l.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return l.MaxSize
}

func (l Limits) maxDepth() int {
	if l.MaxDepth <= 0 {
		return DefaultMaxDepth
	}
	return l.MaxDepth
}

// Encoder writes serialized bodies into a buffer it reuses, so that encoding
// in a loop does not allocate. The zero value writes local ("@XPC") bodies
// with default limits. An Encoder is not safe for concurrent use.
type Encoder struct {
	Magic  uint32 // 0 means MagicLocal
	Limits Limits
	w      writer
}

// Encode serializes obj as a body. The result is valid until the next call
// on e. Out-of-band objects are left in Attachments.
func (e *Encoder) Encode(obj Object) ([]byte, error) {
	e.w.reset(e.w.b[:0], e.Limits)
	if err := e.w.body(e.magic(), obj); err != nil {
		return nil, err
	}
	return e.w.b, nil
}

// Attachments returns the out-of-band objects of the last body encoded, in
// the order their tags appear in it. The slice is reused by the next call.
func (e *Encoder) Attachments() []Attachment { return e.w.att }

func (e *Encoder) magic() uint32 {
	if e.Magic == 0 {
		return MagicLocal
	}
	return e.Magic
}

// Encode serializes obj as a local body. It returns an error if obj holds
// out-of-band objects (fd, shmem, endpoint), which need a transport: use an
// Encoder, or AppendBody, to get them.
func Encode(obj Object) ([]byte, error) {
	b, att, err := AppendBody(nil, MagicLocal, obj)
	if err != nil {
		return nil, err
	}
	if len(att) > 0 {
		return nil, &EncodeError{Err: fmt.Errorf("%w: %d out-of-band objects need a transport", ErrAttachments, len(att))}
	}
	return b, nil
}

// AppendBody appends the serialized body of obj, with the given magic, to dst
// and returns the extended buffer and the out-of-band objects in body order
// (nil when there are none).
func AppendBody(dst []byte, magic uint32, obj Object) ([]byte, []Attachment, error) {
	var w writer
	w.reset(dst, Limits{})
	if err := w.body(magic, obj); err != nil {
		return dst, nil, err
	}
	return w.b, w.att, nil
}

// writer is the low-level serializer shared by the object and struct
// encoders. It appends to b and records attachments; depth guards against
// cyclic or absurdly deep values.
type writer struct {
	b     []byte
	att   []Attachment
	lim   Limits
	depth int
	start int
}

func (w *writer) reset(dst []byte, lim Limits) {
	w.b = dst
	clear(w.att)
	w.att = w.att[:0]
	w.lim = lim
	w.depth = 0
	w.start = len(dst)
}

func (w *writer) body(magic uint32, obj Object) error {
	w.u32(magic)
	w.u32(Version)
	if err := w.object(obj); err != nil {
		return err
	}
	return w.checkSize()
}

func (w *writer) checkSize() error {
	if n := len(w.b) - w.start; n > w.lim.maxSize() {
		return &EncodeError{Err: fmt.Errorf("%w: body of %d bytes exceeds the limit of %d", ErrTooLarge, n, w.lim.maxSize())}
	}
	return nil
}

func (w *writer) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }

func (w *writer) pad() {
	for len(w.b)&3 != 0 {
		w.b = append(w.b, 0)
	}
}

// cstr writes s, a NUL and padding: the layout of keys and string payloads.
func (w *writer) cstr(s string) {
	w.b = append(w.b, s...)
	w.b = append(w.b, 0)
	w.pad()
}

func validCString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			rest := s[i:]
			return strings.IndexByte(rest, 0) < 0 && utf8.ValidString(rest)
		}
	}
	return true
}

func (w *writer) str(s string) error {
	if !validCString(s) {
		return &EncodeError{Err: errStringNotValid}
	}
	if len(s) >= math.MaxUint32 {
		return &EncodeError{Err: ErrTooLarge}
	}
	w.u32(uint32(TypeString))
	w.u32(uint32(len(s) + 1))
	w.cstr(s)
	return nil
}

func (w *writer) data(b []byte) error {
	if len(b) > math.MaxUint32 {
		return &EncodeError{Err: ErrTooLarge}
	}
	w.u32(uint32(TypeData))
	w.u32(uint32(len(b)))
	w.b = append(w.b, b...)
	w.pad()
	return nil
}

func (w *writer) key(k string) error {
	if !validCString(k) {
		return &EncodeError{Path: strconv.Quote(k), Err: errStringNotValid}
	}
	w.cstr(k)
	return nil
}

// open starts a container: tag, a byte-length placeholder and a count
// placeholder. It returns the placeholder's position for close.
func (w *writer) open(t Type) (int, error) {
	w.depth++
	if w.depth > w.lim.maxDepth() {
		return 0, &EncodeError{Err: fmt.Errorf("%w: more than %d levels", ErrTooDeep, w.lim.maxDepth())}
	}
	w.u32(uint32(t))
	pos := len(w.b)
	w.u64(0)
	return pos, nil
}

// close fills in a container's byte length (the count word and what follows)
// and count.
func (w *writer) close(pos, count int) error {
	w.depth--
	n := len(w.b) - pos - 4
	if n > w.lim.maxSize() || count > math.MaxUint32 {
		return &EncodeError{Err: fmt.Errorf("%w: container of %d bytes", ErrTooLarge, n)}
	}
	binary.LittleEndian.PutUint32(w.b[pos:], uint32(n))
	binary.LittleEndian.PutUint32(w.b[pos+4:], uint32(count))
	return nil
}

func (w *writer) attach(a Attachment) {
	w.att = append(w.att, a)
	w.u32(uint32(a.Type()))
}

func (w *writer) object(obj Object) error {
	switch v := obj.(type) {
	case nil:
		return &EncodeError{Err: ErrNilObject}
	case Null:
		w.u32(uint32(TypeNull))
	case Bool:
		w.u32(uint32(TypeBool))
		if v {
			w.u32(1)
		} else {
			w.u32(0)
		}
	case Int64:
		w.u32(uint32(TypeInt64))
		w.u64(uint64(v))
	case Uint64:
		w.u32(uint32(TypeUint64))
		w.u64(uint64(v))
	case Double:
		w.u32(uint32(TypeDouble))
		w.u64(math.Float64bits(float64(v)))
	case Date:
		w.u32(uint32(TypeDate))
		w.u64(uint64(v))
	case Data:
		return w.data(v)
	case String:
		return w.str(string(v))
	case UUID:
		w.u32(uint32(TypeUUID))
		w.b = append(w.b, v[:]...)
	case Array:
		return w.array(v)
	case *Dictionary:
		if v == nil {
			return &EncodeError{Err: ErrNilObject}
		}
		return w.dict(TypeDictionary, v)
	case *ErrorObject:
		if v == nil {
			return &EncodeError{Err: ErrNilObject}
		}
		return w.dict(TypeError, &v.Dictionary)
	case Attachment:
		if isNilAttachment(v) {
			return &EncodeError{Err: ErrNilObject}
		}
		w.attach(v)
	default:
		return &EncodeError{Err: fmt.Errorf("unsupported object type %T", obj)}
	}
	return nil
}

func (w *writer) array(a Array) error {
	pos, err := w.open(TypeArray)
	if err != nil {
		return err
	}
	for i, e := range a {
		if err := w.object(e); err != nil {
			return prefixPath(err, "["+strconv.Itoa(i)+"]")
		}
	}
	return w.close(pos, len(a))
}

func (w *writer) dict(t Type, d *Dictionary) error {
	pos, err := w.open(t)
	if err != nil {
		return err
	}
	for _, e := range d.ents {
		k := e.key
		if err := w.key(k); err != nil {
			return err
		}
		if err := w.object(e.val); err != nil {
			return prefixPath(err, k)
		}
	}
	return w.close(pos, len(d.ents))
}

// prefixPath puts elem in front of an EncodeError's path as it unwinds.
func prefixPath(err error, elem string) error {
	e, ok := err.(*EncodeError)
	if !ok {
		return err
	}
	e.Path = joinPath(elem, e.Path)
	return e
}

// joinPath puts elem (a key, or "[i]") in front of path: "a" + "b[2]" is
// "a.b[2]", "a" + "[2].b" is "a[2].b". Every error that names where in a
// value it happened spells the place this way.
func joinPath(elem, path string) string {
	switch {
	case path == "":
		return elem
	case path[0] == '[':
		return elem + path
	default:
		return elem + "." + path
	}
}
