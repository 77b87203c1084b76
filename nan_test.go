package xpc_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/goxpc/xpc"
)

// NaNs as peers send them: C's NAN (what Apple's peers write), the default
// NaN x86 computes for 0/0, a signalling NaN, and Go's math.NaN().
const (
	nanC       = 0x7FF8000000000000
	nanX86     = 0xFFF8000000000000
	nanSignal  = 0x7FF4000000000001
	nanGo      = 0x7FF8000000000001
	nanTestKey = "n"
)

// nanTestMessage builds, byte by byte as a peer writes it, a RemoteXPC
// message whose body is a dictionary {"n": [doubles with the given bits]}.
func nanTestMessage(bits ...uint64) []byte {
	le := binary.LittleEndian
	var arr []byte
	arr = le.AppendUint32(arr, uint32(xpc.TypeArray))
	arr = le.AppendUint32(arr, uint32(4+12*len(bits)))
	arr = le.AppendUint32(arr, uint32(len(bits)))
	for _, b := range bits {
		arr = le.AppendUint32(arr, uint32(xpc.TypeDouble))
		arr = le.AppendUint64(arr, b)
	}
	var body []byte
	body = le.AppendUint32(body, xpc.MagicRemote)
	body = le.AppendUint32(body, xpc.Version)
	body = le.AppendUint32(body, uint32(xpc.TypeDictionary))
	body = le.AppendUint32(body, uint32(4+4+len(arr)))
	body = le.AppendUint32(body, 1)
	body = append(body, nanTestKey+"\x00\x00\x00"...)
	body = append(body, arr...)
	return append(xpc.AppendWrapper(nil, xpc.FlagAlwaysSet|xpc.FlagDataPresent, 1, len(body)), body...)
}

// TestNaNRoundTripThroughJSON: a message holding NaNs, decoded, printed as
// tagged JSON, read back and encoded, gives back the same bytes: C's NAN
// as "NaN", every other NaN with its bits.
func TestNaNRoundTripThroughJSON(t *testing.T) {
	raw := nanTestMessage(nanC, nanX86, nanSignal, nanGo, math.Float64bits(1.5))
	m, err := xpc.DecodeWrapped(raw)
	if err != nil {
		t.Fatal(err)
	}
	js, err := xpc.MarshalTaggedJSONMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"flags":257,"id":1,"body":{"dictionary":{"n":{"array":[{"double":"NaN"},` +
		`{"double":"NaN(0xfff8000000000000)"},{"double":"NaN(0x7ff4000000000001)"},` +
		`{"double":"NaN(0x7ff8000000000001)"},{"double":1.5}]}}}}`
	if string(js) != want {
		t.Errorf("tagged JSON\n got %s\nwant %s", js, want)
	}
	back, err := xpc.UnmarshalTaggedJSONMessage(js)
	if err != nil {
		t.Fatal(err)
	}
	out, err := xpc.EncodeWrapped(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, raw) {
		t.Errorf("decode -> JSON -> encode changed the bytes\n got % x\nwant % x", out, raw)
	}
}

// TestNaNFromText: a NaN that comes from text is C's NAN, whatever NaN the
// parser underneath produces (strconv gives math.NaN()).
func TestNaNFromText(t *testing.T) {
	fromJSON, err := xpc.UnmarshalTaggedJSON([]byte(`{"double":"NaN"}`))
	if err != nil {
		t.Fatal(err)
	}
	xmlPlist := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>n</key><real>nan</real></dict></plist>`)
	fromXML, _, err := xpc.FromPlist(xmlPlist)
	if err != nil {
		t.Fatal(err)
	}
	fromText, _, err := xpc.FromPlist([]byte(`{ n = <*Rnan>; }`))
	if err != nil {
		t.Fatal(err)
	}
	for name, obj := range map[string]xpc.Object{
		"tagged JSON":  fromJSON,
		"XML plist":    fromXML.(*xpc.Dictionary).Get(nanTestKey),
		"GNUstep text": fromText.(*xpc.Dictionary).Get(nanTestKey),
	} {
		d, ok := obj.(xpc.Double)
		if !ok || math.Float64bits(float64(d)) != nanC {
			t.Errorf("%s: NaN read as %#v (bits %#x), want bits %#x", name, obj, math.Float64bits(float64(d)), uint64(nanC))
			continue
		}
		body, err := xpc.Encode(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := binary.LittleEndian.Uint64(body[12:]); got != nanC {
			t.Errorf("%s: encoded as %#x, want %#x", name, got, uint64(nanC))
		}
	}
}

// TestNaNKeptWhereNotText: NaNs that do not come from text keep their bits:
// a binary plist's, and a float64 a program marshals.
func TestNaNKeptWhereNotText(t *testing.T) {
	real := binary.BigEndian.AppendUint64([]byte{0x23}, nanSignal)
	bin := plistTestBinary([][]byte{real}, 1, 0)
	obj, format, err := xpc.FromPlist(bin)
	if err != nil || format != xpc.PlistBinary {
		t.Fatalf("binary plist: %v %v", format, err)
	}
	if got := math.Float64bits(float64(obj.(xpc.Double))); got != nanSignal {
		t.Errorf("binary plist NaN read as %#x, want %#x", got, uint64(nanSignal))
	}

	type msg struct{ F float64 }
	body, err := xpc.Marshal(msg{F: math.NaN()})
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint64(body[len(body)-8:]); got != nanGo {
		t.Errorf("Marshal(math.NaN()) wrote %#x, want the bits as given, %#x", got, uint64(nanGo))
	}
	var back msg
	if err := xpc.Unmarshal(body, &back); err != nil || math.Float64bits(back.F) != nanGo {
		t.Errorf("Unmarshal: %#x %v", math.Float64bits(back.F), err)
	}
}

// TestNaNJSONErrors: "NaN(0x...)" must hold 16 hex digits of a NaN.
func TestNaNJSONErrors(t *testing.T) {
	for _, in := range []string{
		`{"double":"NaN(0x7ff0000000000000)"}`, // +Inf's bits
		`{"double":"NaN(0x3ff0000000000000)"}`, // 1.0's bits
		`{"double":"NaN(0x7ff8)"}`,
		`{"double":"NaN(0x7ff80000000000000)"}`,
		`{"double":"NaN(7ff8000000000001)"}`,
		`{"double":"NaN(0x7ff800000000000g)"}`,
		`{"double":"NaN(0x7ff8000000000001"}`,
		`{"double":"0x7ff8000000000001)"}`,
		`{"double":"nan"}`,
	} {
		_, err := xpc.UnmarshalTaggedJSON([]byte(in))
		var je *xpc.JSONError
		if !errors.As(err, &je) || !errors.Is(err, xpc.ErrBadValue) {
			t.Errorf("%s: error %v, want a *JSONError wrapping ErrBadValue", in, err)
		}
	}
	if obj, err := xpc.UnmarshalTaggedJSON([]byte(`{"double":"NaN(0x7FF8000000000001)"}`)); err != nil ||
		math.Float64bits(float64(obj.(xpc.Double))) != nanGo {
		t.Errorf("upper-case hex: %v %v", obj, err)
	}
}
