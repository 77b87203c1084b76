package xpc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// A binary property list stores each object once and refers to it by index,
// so one small file can name the same array many times over: seven nested
// arrays of ten references each to the next, some 130 bytes, read as ten
// million values. howett.net/plist resolves the references into a Go tree,
// copying shared containers wherever they appear, so such a file would take
// the reader's time and memory without bound; and given references zero
// bytes wide it allocates a slice as long as the count claims, terabytes,
// before finding the array contains itself. checkBinaryPlist walks the
// object graph first, counting each object's expanded size once, and refuses
// a document whose tree would be too big, that refers to itself, or that
// nests too deeply for the parser's recursion. It is not a parser: it reads
// the trailer, the offset table, and for arrays, sets and dictionaries the
// count and the references; every other object counts as one value, and
// howett.net/plist judges the rest.
//
// Writers share leaves (strings, numbers, data) but not containers, so an
// honest document's tree has at most one value per reference plus the top,
// fewer than its length in bytes: the limit is the larger of
// maxPlistObjects and the length.
const (
	maxPlistObjects = 1 << 20 // values in the expanded tree, keys included
	maxPlistNesting = 512     // containers inside one another
)

// Markers of the containers in a binary plist's object table, in the high
// nibble; the low nibble is the count, or 0xF for a count in an integer
// object that follows.
const (
	bplistArray = 0xA
	bplistSet   = 0xC
	bplistDict  = 0xD
)

// bplistFrame is a container on checkBinaryPlist's stack.
type bplistFrame struct {
	index uint64 // object index
	next  uint64 // offset of the next reference to read
	left  uint64 // references not yet read
	sum   uint64 // values so far: itself and the children read
}

// bplistScan is checkBinaryPlist's state.
type bplistScan struct {
	data        []byte
	offsetSize  uint64 // bytes in an offset table entry
	refSize     uint64 // bytes in an object reference
	numObjects  uint64
	tableOffset uint64 // where the offset table starts; objects end there

	// expanded holds, per object index, 0 until the container is reached,
	// bplistVisiting while it is on the stack, then its expanded size.
	// Leaves are not recorded: they count one.
	expanded []uint64
	stack    []bplistFrame
}

const bplistVisiting = math.MaxUint64

func badBplist(format string, args ...any) error {
	return &PlistError{Err: fmt.Errorf("%w: binary plist: "+format, append([]any{ErrBadPlist}, args...)...)}
}

// checkBinaryPlist vets data, which begins "bplist", as described above. Its
// time is linear in the references it reads, which are no more than the
// limit, and its memory in the number of objects. Every document it refuses
// howett.net/plist would refuse too, or FromPlist would refuse for nesting
// too deep, or would expand past the limit.
func checkBinaryPlist(data []byte) error {
	// The trailer: 6 unused bytes, the offset size, the reference size,
	// then big-endian 64-bit object count, top object and offset table
	// offset. The checks are howett.net/plist's, without its overflows.
	if len(data) < 40 {
		return badBplist("not enough data")
	}
	trailer := uint64(len(data) - 32)
	t := data[trailer:]
	s := &bplistScan{
		data:        data,
		offsetSize:  uint64(t[6]),
		refSize:     uint64(t[7]),
		numObjects:  binary.BigEndian.Uint64(t[8:]),
		tableOffset: binary.BigEndian.Uint64(t[24:]),
	}
	top := binary.BigEndian.Uint64(t[16:])
	switch {
	case s.tableOffset >= trailer:
		return badBplist("offset table at 0x%x is not before the trailer at 0x%x", s.tableOffset, trailer)
	case s.tableOffset < 9:
		return badBplist("offset table at 0x%x begins inside the header", s.tableOffset)
	case !bplistIntSize(s.offsetSize):
		return badBplist("offset size %d is not 1 to 8 or 16", s.offsetSize)
	}
	if n := trailer - s.tableOffset; n%s.offsetSize != 0 || n/s.offsetSize != s.numObjects {
		return badBplist("offset table of %d bytes does not hold %d offsets of %d bytes", n, s.numObjects, s.offsetSize)
	}
	// howett.net/plist computes the reference limit in 8-bit arithmetic;
	// mirrored, so that what it accepts passes here.
	if shift := uint8(8 * s.refSize); shift >= 64 || s.numObjects > 1<<shift {
		return badBplist("%d objects are too many for references of %d bytes", s.numObjects, s.refSize)
	}
	if s.offsetSize < 8 && 1<<(8*s.offsetSize) <= s.tableOffset {
		return badBplist("offsets of %d bytes cannot address the offset table at 0x%x", s.offsetSize, s.tableOffset)
	}
	if top >= s.numObjects {
		return badBplist("top object #%d out of range (%d objects)", top, s.numObjects)
	}
	return s.walk(top, max(maxPlistObjects, uint64(len(data))))
}

// bplistIntSize reports whether howett.net/plist reads a sized integer of n
// bytes: 16-byte ones it reads as their low 8 bytes.
func bplistIntSize(n uint64) bool { return n >= 1 && n <= 8 || n == 16 }

// readUint reads the n-byte big-endian integer at off, n being 0 to 8 or 16.
func (s *bplistScan) readUint(off, n uint64) (uint64, bool) {
	if off > uint64(len(s.data)) || n > uint64(len(s.data))-off {
		return 0, false
	}
	if n == 16 {
		off, n = off+8, 8
	}
	if n > 8 {
		return 0, false
	}
	var v uint64
	for _, c := range s.data[off : off+n] {
		v = v<<8 | uint64(c)
	}
	return v, true
}

// walk computes the expanded size of object top by a depth-first walk with
// an explicit stack, refusing the document once anything exceeds limit.
func (s *bplistScan) walk(top, limit uint64) error {
	s.expanded = make([]uint64, s.numObjects)
	n, err := s.enter(top)
	if err != nil || n > 0 {
		return err
	}
	var reads uint64
	for {
		f := &s.stack[len(s.stack)-1]
		if f.left == 0 {
			s.expanded[f.index] = f.sum
			n = f.sum
			s.stack = s.stack[:len(s.stack)-1]
			if len(s.stack) == 0 {
				return nil
			}
		} else {
			// Every container reached adds at least its references to
			// the tree, so reading more than limit of them means the tree
			// is bigger than limit, however they are shared.
			if reads++; reads > limit {
				return tooBigBplist(limit)
			}
			ref, ok := s.readUint(f.next, s.refSize)
			if !ok {
				return badBplist("reference at 0x%x out of range", f.next)
			}
			if ref >= s.numObjects {
				return badBplist("reference at 0x%x to object #%d out of range (%d objects)", f.next, ref, s.numObjects)
			}
			f.next += s.refSize
			f.left--
			if n, err = s.enter(ref); err != nil {
				return err
			}
			if n == 0 {
				continue // a container pushed: walk it first
			}
		}
		f = &s.stack[len(s.stack)-1]
		if f.sum += n; f.sum > limit || f.sum < n {
			return tooBigBplist(limit)
		}
	}
}

func tooBigBplist(limit uint64) error {
	return &PlistError{Err: fmt.Errorf("%w: %w: binary plist expands to more than %d objects", ErrBadPlist, ErrTooLarge, limit)}
}

// enter reaches object i from its parent. It returns the expanded size of a
// leaf, an empty container or a container already walked, or 0 having
// pushed a container onto the stack.
func (s *bplistScan) enter(i uint64) (uint64, error) {
	switch e := s.expanded[i]; e {
	case 0:
	case bplistVisiting:
		return 0, badBplist("object #%d contains itself", i)
	default:
		return e, nil
	}
	off, ok := s.readUint(s.tableOffset+i*s.offsetSize, s.offsetSize)
	if !ok || off >= s.tableOffset {
		return 0, badBplist("object #%d at 0x%x is not before the offset table at 0x%x", i, off, s.tableOffset)
	}
	marker := s.data[off]
	kind := marker >> 4
	if kind != bplistArray && kind != bplistSet && kind != bplistDict {
		return 1, nil
	}
	count, start := uint64(marker&0xF), off+1
	if count == 0xF {
		// An integer object follows: marker 0x1n, then 2^n bytes.
		if start >= s.tableOffset {
			return 0, badBplist("container at 0x%x: count out of range", off)
		}
		size := uint64(1) << (s.data[start] & 0xF)
		if !bplistIntSize(size) {
			return 0, badBplist("container at 0x%x: count of %d bytes", off, size)
		}
		if count, ok = s.readUint(start+1, size); !ok {
			return 0, badBplist("container at 0x%x: count out of range", off)
		}
		start += 1 + size
	}
	refs := count
	if kind == bplistDict {
		if count > math.MaxUint64/2 {
			return 0, badBplist("dictionary at 0x%x: %d entries is too many", off, count)
		}
		refs = 2 * count // keys, then values
	}
	if start > s.tableOffset || s.refSize > 0 && refs > (s.tableOffset-start)/s.refSize {
		return 0, badBplist("container at 0x%x: %d references run past the offset table at 0x%x", off, refs, s.tableOffset)
	}
	if refs == 0 {
		s.expanded[i] = 1
		return 1, nil
	}
	if s.refSize > 8 {
		return 0, badBplist("references of %d bytes", s.refSize)
	}
	if len(s.stack) >= maxPlistNesting {
		return 0, &PlistError{Err: fmt.Errorf("%w: binary plist nests more than %d levels", ErrTooDeep, maxPlistNesting)}
	}
	s.expanded[i] = bplistVisiting
	s.stack = append(s.stack, bplistFrame{index: i, next: start, left: refs, sum: 1})
	return 0, nil
}

// checkTextPlistNesting bounds the nesting of an XML or text plist before
// the parser sees it. It does not parse: it counts opening and closing
// container tags (<array>, <dict>, and the text forms' parentheses and
// braces) and rejects a document whose count ever exceeds maxPlistNesting.
// Brackets inside strings or comments can only make the count higher, so
// an honest document within the limit is never refused unless it holds
// hundreds of unmatched brackets in its text.
func checkTextPlistNesting(data []byte) error {
	depth, worst := 0, 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '(', '{':
			depth++
		case ')', '}':
			depth--
		case '<':
			rest := data[i+1:]
			switch {
			case bytes.HasPrefix(rest, []byte("array")) || bytes.HasPrefix(rest, []byte("dict")):
				if end := bytes.IndexByte(rest, '>'); end > 0 && rest[end-1] == '/' {
					continue // <array/>
				}
				depth++
			case bytes.HasPrefix(rest, []byte("/array")) || bytes.HasPrefix(rest, []byte("/dict")):
				depth--
			}
		}
		if depth > worst {
			worst = depth
			if worst > maxPlistNesting {
				return &PlistError{Err: fmt.Errorf("%w: %w: property list nests more than %d levels", ErrBadPlist, ErrTooDeep, maxPlistNesting)}
			}
		}
	}
	return nil
}
