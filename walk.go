package xpc

import (
	"bytes"
	"unicode/utf8"
)

// Every decoding path reads a container (array, dictionary or error object)
// through one walk, whatever it builds from it: objects (reader.value),
// natural Go values (decState.natural), or a slice, Go array, map or struct
// (the codecs in unmarshal_containers.go):
//
//	var w walk
//	if err := w.open(r, t); err != nil {
//		return err
//	}
//	for w.more(r) && w.readKey(r) { // an array's elements: for w.more(r)
//		// if w.key came before in this dictionary: return w.duplicate(r)
//		// read the value: its tag, then the object
//	}
//	return w.close(r)
//
// The walk owns every check of the container's shape, in this order:
//
//   - open: the nesting limit, the byte length (at least 4, a multiple of
//     4, within the input) and the count (no more entries than the byte
//     length can hold, so that nothing is allocated for entries that cannot
//     be there);
//   - more, before each entry and once after the last: that the previous
//     entry's value ended inside the container;
//   - readKey, in a dictionary: the key (UTF-8, its NUL within the
//     container, zero padding);
//   - close: that the entries filled the byte length exactly, unless an
//     error ended the walk early, which close returns.
//
// What differs between the paths is left to them: how to tell a key that
// came before (each holds the keys it has kept, in its own form), and what
// to do with each value. A struct, which knows the key encoders write next,
// may compare it with the input (rest) and take it whole (took) instead of
// reading it.
//
// The methods a path calls for every entry (more, rest, took) are kept small
// enough to be inlined, so that the walk costs no more than the loops it
// replaced; more is at the inliner's limit (go build -gcflags=-m shows it).

// walk is one container being read.
type walk struct {
	t     Type
	end   int // the offset where the entries must end
	count int // the entries the container announces, checked against its byte length
	i     int // the current entry's index; -1 before the first
	last  int // count-1, the index of the last entry: it keeps more inlined
	// keyOff and keyLen locate the current entry's key in a dictionary,
	// and key is that key, aliasing the input, once readKey has read it
	// (took leaves it alone: the reader that took a key knows it).
	keyOff, keyLen int
	key            []byte
	err            error // what ended the walk early, for close to return
}

// open reads the byte length and count of a container whose tag t has just
// been read. The count is checked against the fewest bytes an entry can
// take, so that a count the length cannot hold is refused before anything
// is allocated for it.
func (w *walk) open(r *reader, t Type) error {
	minEntry := 8 // a key's NUL and padding, and a tag
	if t == TypeArray {
		minEntry = 4 // a tag
	}
	r.depth++
	if r.depth > r.lim.maxDepth() {
		return r.fail(r.off-4, ErrTooDeep, "more than %d levels", r.lim.maxDepth())
	}
	lenOff := r.off
	n32, err := r.u32()
	if err != nil {
		return err
	}
	n := int(n32)
	if n < 4 || n&3 != 0 {
		return r.fail(lenOff, ErrBadLength, "%v byte length %d", t, n)
	}
	if n > len(r.b)-r.off {
		return r.fail(lenOff, ErrTruncated, "%v byte length %d but %d bytes remain", t, n, len(r.b)-r.off)
	}
	end := r.off + n
	c32, err := r.u32()
	if err != nil {
		return err
	}
	if uint64(c32)*uint64(minEntry) > uint64(n-4) {
		return r.fail(lenOff+4, ErrBadLength, "%v count %d cannot fit in %d bytes", t, c32, n)
	}
	w.t, w.end, w.count, w.i, w.last = t, end, int(c32), -1, int(c32)-1
	return nil
}

// more moves to the next entry. It reports false when there is none left,
// or when the previous entry's value ran past the container's end: close
// then says which.
func (w *walk) more(r *reader) bool {
	if r.off > w.end || w.i == w.last {
		return w.stop(r)
	}
	w.i++
	return true
}

// stop is more at the end of the entries, or past the container's end.
func (w *walk) stop(r *reader) bool {
	if r.off > w.end {
		if w.t == TypeArray {
			w.err = r.fail(w.end, ErrBadLength, "array element %d runs past the array's end", w.i)
		} else {
			w.err = r.fail(w.end, ErrBadLength, "value of %q runs past the dictionary's end", r.b[w.keyOff:w.keyOff+w.keyLen])
		}
	}
	return false
}

// readKey reads the current entry's key: UTF-8, NUL-terminated before the
// container's end, padded with zeros. It reports false when the key is
// malformed: close then says how.
func (w *walk) readKey(r *reader) bool {
	off := r.off
	n := bytes.IndexByte(r.b[off:w.end], 0)
	if n < 0 {
		w.err = r.fail(off, ErrBadKey, "no NUL before the end of the dictionary")
		return false
	}
	k := r.b[off : off+n]
	if !utf8.Valid(k) {
		w.err = r.fail(off, ErrBadKey, "not valid UTF-8")
		return false
	}
	w.keyOff, w.keyLen, w.key = off, n, k
	r.off = off + n + 1
	if err := r.skipPad(n + 1); err != nil {
		w.err = err
		return false
	}
	return true
}

// rest returns the bytes of the container from the current offset on: a
// reader that knows the key to expect compares it with them.
func (w *walk) rest(r *reader) []byte { return r.b[r.off:w.end] }

// took takes the current entry's key in place of readKey: a valid key of
// n bytes that the reader found at the start of rest, laid out in padded
// bytes (the key, NUL, zero padding).
func (w *walk) took(r *reader, n, padded int) {
	w.keyOff, w.keyLen = r.off, n
	r.off += padded
}

// duplicate is the error for a current key that came before in the
// container.
func (w *walk) duplicate(r *reader) error {
	return r.fail(w.keyOff, ErrDuplicateKey, "%q", r.b[w.keyOff:w.keyOff+w.keyLen])
}

// close ends the walk once more has reported false: the error that stopped
// it, or a check that the entries filled the container exactly.
func (w *walk) close(r *reader) error {
	if w.err != nil {
		return w.err
	}
	r.depth--
	if r.off != w.end {
		return r.fail(r.off, ErrBadLength, "%v entries end at %d, byte length says %d", w.t, r.off, w.end)
	}
	return nil
}
