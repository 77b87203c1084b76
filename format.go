package xpc

import (
	"encoding/hex"
	"strconv"
	"strings"
)

// Format returns a readable, multi-line description of obj in the manner of
// xpc_copy_description: scalars on one line as <type: value>, containers as
// "{ count = N, contents =" followed by one indented line per entry.
func Format(obj Object) string {
	var b strings.Builder
	formatTo(&b, obj, 0)
	return b.String()
}

func formatTo(b *strings.Builder, obj Object, depth int) {
	switch v := obj.(type) {
	case nil:
		b.WriteString("<nil>")
	case Null:
		b.WriteString("<null>")
	case Bool:
		b.WriteString("<bool: ")
		b.WriteString(strconv.FormatBool(bool(v)))
		b.WriteByte('>')
	case Int64:
		b.WriteString("<int64: ")
		b.WriteString(strconv.FormatInt(int64(v), 10))
		b.WriteByte('>')
	case Uint64:
		b.WriteString("<uint64: ")
		b.WriteString(strconv.FormatUint(uint64(v), 10))
		b.WriteByte('>')
	case Double:
		b.WriteString("<double: ")
		b.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 64))
		b.WriteByte('>')
	case Date:
		b.WriteString("<date: ")
		b.WriteString(v.Time().Format("2006-01-02 15:04:05.999999999 MST"))
		b.WriteByte('>')
	case Data:
		b.WriteString("<data: { length = ")
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteString(" bytes, contents = 0x")
		const show = 32
		if len(v) > show {
			b.WriteString(hex.EncodeToString(v[:show]))
			b.WriteString("...")
		} else {
			b.WriteString(hex.EncodeToString(v))
		}
		b.WriteString(" }>")
	case String:
		b.WriteString("<string: ")
		b.WriteString(strconv.Quote(string(v)))
		b.WriteByte('>')
	case UUID:
		b.WriteString("<uuid: ")
		b.WriteString(v.String())
		b.WriteByte('>')
	case Array:
		b.WriteString("<array> { count = ")
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteString(", contents =\n")
		for i, e := range v {
			indent(b, depth+1)
			b.WriteString(strconv.Itoa(i))
			b.WriteString(": ")
			formatTo(b, e, depth+1)
			b.WriteByte('\n')
		}
		indent(b, depth)
		b.WriteByte('}')
	case *Dictionary:
		formatDict(b, "dictionary", v, depth)
	case *ErrorObject:
		formatDict(b, "error", &v.Dictionary, depth)
	case *FD:
		b.WriteString("<fd: ")
		formatFile(b, v.File())
		b.WriteByte('>')
	case *SharedMemory:
		b.WriteString("<shmem: ")
		b.WriteString(strconv.Itoa(v.Size()))
		b.WriteString(" bytes>")
	case *Endpoint:
		b.WriteString("<endpoint: ")
		formatFile(b, v.File())
		b.WriteByte('>')
	}
}

func formatDict(b *strings.Builder, name string, d *Dictionary, depth int) {
	b.WriteByte('<')
	b.WriteString(name)
	b.WriteString("> { count = ")
	b.WriteString(strconv.Itoa(d.Len()))
	b.WriteString(", contents =\n")
	for _, e := range d.ents {
		k := e.key
		indent(b, depth+1)
		b.WriteString(strconv.Quote(k))
		b.WriteString(" => ")
		formatTo(b, e.val, depth+1)
		b.WriteByte('\n')
	}
	indent(b, depth)
	b.WriteByte('}')
}

func formatFile(b *strings.Builder, f interface{ Fd() uintptr }) {
	if f == nil {
		b.WriteString("none")
		return
	}
	b.WriteString(strconv.FormatUint(uint64(f.Fd()), 10))
}

func indent(b *strings.Builder, depth int) {
	for range depth {
		b.WriteByte('\t')
	}
}
