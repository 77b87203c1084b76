package xpc_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"golang.org/x/sys/unix"
)

// typicalRequest is the struct form of the typical request the codec
// benchmarks use (benchTypicalDict in codec_bench_test.go): ten fields,
// strings, int64s, a uint64, a bool, 64 bytes of data and a nested struct.
type typicalRequest struct {
	Method     string        `xpc:"method"`
	Service    string        `xpc:"service"`
	Path       string        `xpc:"path"`
	ID         int64         `xpc:"id"`
	TimeoutMS  int64         `xpc:"timeout_ms"`
	Priority   int64         `xpc:"priority"`
	Seq        uint64        `xpc:"seq"`
	WantsReply bool          `xpc:"wants_reply"`
	Payload    []byte        `xpc:"payload"`
	Caller     typicalCaller `xpc:"caller"`
}

type typicalCaller struct {
	PID  int64  `xpc:"pid"`
	UID  int64  `xpc:"uid"`
	Name string `xpc:"name"`
}

func newTypicalRequest() *typicalRequest {
	payload := make([]byte, 64)
	for i := range payload {
		payload[i] = byte(i)
	}
	return &typicalRequest{
		Method: "Launch", Service: "com.example.agent", Path: "/org/example/Agent/1",
		ID: 123456789, TimeoutMS: 30000, Priority: -5, Seq: 1<<40 + 7, WantsReply: true,
		Payload: payload,
		Caller:  typicalCaller{PID: 4242, UID: 501, Name: "com.example.client"},
	}
}

// typicalDict is the same request built as objects.
func typicalDict() *xpc.Dictionary {
	payload := make(xpc.Data, 64)
	for i := range payload {
		payload[i] = byte(i)
	}
	return xpc.Dict(
		"method", xpc.String("Launch"),
		"service", xpc.String("com.example.agent"),
		"path", xpc.String("/org/example/Agent/1"),
		"id", xpc.Int64(123456789),
		"timeout_ms", xpc.Int64(30000),
		"priority", xpc.Int64(-5),
		"seq", xpc.Uint64(1<<40+7),
		"wants_reply", xpc.Bool(true),
		"payload", payload,
		"caller", xpc.Dict("pid", xpc.Int64(4242), "uid", xpc.Int64(501), "name", xpc.String("com.example.client")),
	)
}

func mustEncode(t testing.TB, obj xpc.Object) []byte {
	t.Helper()
	b, err := xpc.Encode(obj)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := xpc.Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%T): %v", v, err)
	}
	return b
}

// TestMarshalExact checks that a struct encodes to exactly the bytes of the
// equivalent dictionary, keys in field order.
func TestMarshalExact(t *testing.T) {
	want := mustEncode(t, typicalDict())
	if got := mustMarshal(t, newTypicalRequest()); !bytes.Equal(got, want) {
		t.Errorf("Marshal(&req):\n got %x\nwant %x", got, want)
	}
	if got := mustMarshal(t, *newTypicalRequest()); !bytes.Equal(got, want) {
		t.Errorf("Marshal(req):\n got %x\nwant %x", got, want)
	}
	var e xpc.Encoder
	got, err := e.EncodeValue(newTypicalRequest())
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("EncodeValue: %x, %v", got, err)
	}
	// A small struct, byte for byte.
	type small struct {
		A int32
		B string `xpc:"bee"`
	}
	le := binary.LittleEndian
	var w []byte
	for _, u := range []uint32{xpc.MagicLocal, xpc.Version, 0xF000, 36, 2} {
		w = le.AppendUint32(w, u)
	}
	w = append(w, "A\x00\x00\x00"...)
	w = le.AppendUint32(w, 0x3000)
	w = le.AppendUint64(w, uint64(math.MaxUint64-6)) // -7
	w = append(w, "bee\x00"...)
	w = le.AppendUint32(w, 0x9000)
	w = le.AppendUint32(w, 3)
	w = append(w, "hi\x00\x00"...)
	if got := mustMarshal(t, small{A: -7, B: "hi"}); !bytes.Equal(got, w) {
		t.Errorf("Marshal(small):\n got %x\nwant %x", got, w)
	}
}

// TestEncodeValueAllocs: a reused Encoder encodes the typical struct
// without allocating.
func TestEncodeValueAllocs(t *testing.T) {
	req := newTypicalRequest()
	var e xpc.Encoder
	var err error
	allocs := testing.AllocsPerRun(200, func() {
		_, err = e.EncodeValue(req)
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("EncodeValue(typicalRequest): %v allocs/op, want 0", allocs)
	}
}

type (
	rtInner struct {
		N    int
		Tags []string
	}
	rtEmbedded struct {
		E1 string
		E2 int
	}
	rtAll struct {
		B    bool
		I    int
		I8   int8
		I16  int16
		I32  int32
		I64  int64
		U    uint
		U8   uint8
		U16  uint16
		U32  uint32
		U64  uint64
		Uptr uintptr
		F32  float32
		F64  float64
		S    string
		Data []byte
		Arr  [3]int
		Hash [4]byte
		UUID xpc.UUID
		When time.Time
		Dur  time.Duration
		Date xpc.Date
		In   rtInner
		PIn  *rtInner
		Nil  *rtInner
		M    map[string]int
		MS   map[string]rtInner
		Sl   []rtInner
		SP   []*int
		Any  any
		Obj  xpc.Object
		Dict *xpc.Dictionary
		rtEmbedded
		unexported int //lint:ignore U1000 there to be skipped: Marshal ignores unexported fields
		Skip       int `xpc:"-"`
	}
)

func TestRoundTrip(t *testing.T) {
	seven := 7
	cases := []any{
		newTypicalRequest(),
		&rtAll{
			B: true, I: -1, I8: -128, I16: 32767, I32: -1 << 31, I64: math.MinInt64,
			U: 1, U8: 255, U16: 65535, U32: math.MaxUint32, U64: math.MaxUint64, Uptr: 12,
			F32: 1.5, F64: math.Inf(-1), S: "héllo", Data: []byte{0, 1, 2},
			Arr: [3]int{1, 2, 3}, Hash: [4]byte{9, 8, 7, 6}, UUID: xpc.UUID{1, 2, 3, 15: 0xff},
			When: time.Date(2024, 2, 29, 12, 0, 0, 5, time.UTC), Dur: 3 * time.Second, Date: 42,
			In: rtInner{N: 1, Tags: []string{"a", "b"}}, PIn: &rtInner{N: 2, Tags: []string{}},
			M: map[string]int{"z": 1, "a": 2}, MS: map[string]rtInner{"k": {N: 3, Tags: []string{"x"}}},
			Sl: []rtInner{{N: 4, Tags: []string{}}}, SP: []*int{&seven, nil},
			Any: map[string]any{"n": int64(1), "l": []any{"s", 1.5, true, nil}},
			Obj: xpc.Uint64(9), Dict: xpc.Dict("k", xpc.String("v")),
			rtEmbedded: rtEmbedded{E1: "e", E2: 2},
		},
		&rtAll{Data: []byte{}, In: rtInner{Tags: []string{}}, M: map[string]int{}, MS: map[string]rtInner{},
			Sl: []rtInner{}, SP: []*int{}, Obj: xpc.Null{}},
	}
	for i, c := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			b := mustMarshal(t, c)
			out := reflect.New(reflect.TypeOf(c).Elem())
			if err := xpc.Unmarshal(b, out.Interface()); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(out.Interface(), c) {
				t.Errorf("round trip:\n got %+v\nwant %+v", out.Elem(), reflect.ValueOf(c).Elem())
			}
			// Through objects as well.
			obj, err := xpc.ValueOf(c)
			if err != nil {
				t.Fatalf("ValueOf: %v", err)
			}
			out2 := reflect.New(reflect.TypeOf(c).Elem())
			if err := xpc.ObjectInto(obj, out2.Interface()); err != nil {
				t.Fatalf("ObjectInto: %v", err)
			}
			if !reflect.DeepEqual(out2.Interface(), c) {
				t.Errorf("object round trip:\n got %+v\nwant %+v", out2.Elem(), reflect.ValueOf(c).Elem())
			}
			if b2 := mustEncode(t, obj); !bytes.Equal(b2, b) {
				t.Errorf("Encode(ValueOf(v)) differs from Marshal(v)")
			}
		})
	}
}

type textThing struct{ s string }

func (x textThing) MarshalText() ([]byte, error) { return []byte("<" + x.s + ">"), nil }
func (x *textThing) UnmarshalText(b []byte) error {
	x.s = strings.Trim(string(b), "<>")
	return nil
}

// TestMappingRules checks what each Go type becomes, against objects.
func TestMappingRules(t *testing.T) {
	when := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	type named string
	type withPtr struct{ P *int }
	type withOmit struct {
		P *int      `xpc:"p,omitempty"`
		S string    `xpc:",omitempty"`
		N int       `xpc:"n,omitempty"`
		L []int     `xpc:"l,omitempty"`
		A any       `xpc:"a,omitempty"`
		T time.Time `xpc:"t,omitempty"`
		Z time.Time `xpc:"z,omitzero"`
		Q [2]int    `xpc:"q,omitzero"`
	}
	cases := []struct {
		name string
		v    any
		want xpc.Object
	}{
		{"nil", nil, xpc.Null{}},
		{"bool", true, xpc.Bool(true)},
		{"int", -3, xpc.Int64(-3)},
		{"int8", int8(-3), xpc.Int64(-3)},
		{"uint16", uint16(3), xpc.Uint64(3)},
		{"uintptr", uintptr(3), xpc.Uint64(3)},
		{"float32", float32(0.5), xpc.Double(0.5)},
		{"string", "s", xpc.String("s")},
		{"named string", named("s"), xpc.String("s")},
		{"bytes", []byte("ab"), xpc.Data("ab")},
		{"nil bytes", []byte(nil), xpc.Data{}},
		{"byte array", [3]byte{1, 2, 3}, xpc.Data{1, 2, 3}},
		{"uuid", xpc.UUID{1}, xpc.UUID{1}},
		{"time", when, xpc.DateOf(when)},
		{"time saturates", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), xpc.Date(math.MaxInt64)},
		{"duration", 2 * time.Millisecond, xpc.Int64(2e6)},
		{"slice", []int{1, 2}, xpc.Array{xpc.Int64(1), xpc.Int64(2)}},
		{"nil slice", []string(nil), xpc.Array{}},
		{"array", [2]string{"a", "b"}, xpc.Array{xpc.String("a"), xpc.String("b")}},
		{"map sorted", map[string]int{"b": 2, "a": 1, "c": 3}, xpc.Dict("a", 1, "b", 2, "c", 3)},
		{"nil map", map[string]int(nil), xpc.NewDictionary(0)},
		{"nil pointer field", withPtr{}, xpc.Dict("P", xpc.Null{})},
		{"omitempty", withOmit{}, xpc.Dict("t", xpc.DateOf(time.Time{}))},
		{"omitempty set", withOmit{S: "x", N: 1, L: []int{1}, A: 0, Z: when, Q: [2]int{0, 1}},
			xpc.Dict("S", "x", "n", 1, "l", xpc.Array{xpc.Int64(1)}, "a", 0, "t", xpc.DateOf(time.Time{}),
				"z", xpc.DateOf(when), "q", xpc.Array{xpc.Int64(0), xpc.Int64(1)})},
		{"any", []any{1, "x", nil, uint8(2)}, xpc.Array{xpc.Int64(1), xpc.String("x"), xpc.Null{}, xpc.Uint64(2)}},
		{"objects", []xpc.Object{xpc.Date(5), xpc.Dict("k", 1)}, xpc.Array{xpc.Date(5), xpc.Dict("k", 1)}},
		{"object types", struct {
			D  xpc.Date
			DV xpc.Dictionary
			A  xpc.Array
			N  xpc.Null
			E  *xpc.ErrorObject
		}{D: 1, DV: *xpc.Dict("k", 1), A: xpc.Array{xpc.Bool(false)}, E: xpc.NewErrorObject("bad")},
			xpc.Dict("D", xpc.Date(1), "DV", xpc.Dict("k", 1), "A", xpc.Array{xpc.Bool(false)}, "N", xpc.Null{},
				"E", xpc.NewErrorObject("bad"))},
		{"text marshaler", textThing{"t"}, xpc.String("<t>")},
		{"text marshaler key", map[string]textThing{"k": {"v"}}, xpc.Dict("k", "<v>")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := mustEncode(t, c.want)
			if got := mustMarshal(t, c.v); !bytes.Equal(got, want) {
				t.Errorf("Marshal:\n got %x\nwant %x", got, want)
			}
			obj, err := xpc.ValueOf(c.v)
			if err != nil {
				t.Fatal(err)
			}
			if got := mustEncode(t, obj); !bytes.Equal(got, want) {
				t.Errorf("ValueOf: %#v", obj)
			}
		})
	}
}

// TestDecodeRules checks what each XPC type becomes, including the lenient
// conversions and null.
func TestDecodeRules(t *testing.T) {
	type target struct {
		I   int64
		I8  int8
		U   uint64
		U16 uint16
		F   float64
		F32 float32
		S   string
		P   *int
		T   time.Time
		ID  xpc.UUID
		H   [2]byte
		L   []int
		M   map[string]string
		A   any
		O   xpc.Object
		Tx  textThing
	}
	check := func(t *testing.T, in *xpc.Dictionary, start target, want target) {
		t.Helper()
		got := start
		if err := xpc.Unmarshal(mustEncode(t, in), &got); err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	}
	t.Run("lenient numbers", func(t *testing.T) {
		check(t, xpc.Dict("I", xpc.Uint64(5), "U", xpc.Int64(6), "F", xpc.Int64(-2), "F32", xpc.Uint64(3)),
			target{}, target{I: 5, U: 6, F: -2, F32: 3})
	})
	t.Run("null to zero", func(t *testing.T) {
		one := 1
		check(t, xpc.Dict("I", xpc.Null{}, "S", xpc.Null{}, "P", xpc.Null{}, "L", xpc.Null{}, "M", xpc.Null{},
			"A", xpc.Null{}, "O", xpc.Null{}),
			target{I: 1, S: "x", P: &one, L: []int{1}, M: map[string]string{}, A: 1},
			target{O: xpc.Null{}})
	})
	t.Run("uuid from string", func(t *testing.T) {
		u := xpc.UUID{0xde, 0xad, 15: 1}
		check(t, xpc.Dict("ID", xpc.String(u.String())), target{}, target{ID: u})
	})
	t.Run("any natural", func(t *testing.T) {
		when := time.Unix(5, 0).UTC()
		in := xpc.Dict("A", xpc.Dict(
			"b", true, "i", xpc.Int64(-1), "u", xpc.Uint64(1), "d", xpc.Double(0.5), "t", xpc.DateOf(when),
			"data", xpc.Data("x"), "s", "s", "id", xpc.UUID{1}, "n", xpc.Null{},
			"a", xpc.Array{xpc.Int64(1)}, "e", xpc.NewErrorObject("oops")))
		check(t, in, target{}, target{A: map[string]any{
			"b": true, "i": int64(-1), "u": uint64(1), "d": 0.5, "t": when, "data": []byte("x"), "s": "s",
			"id": xpc.UUID{1}, "n": nil, "a": []any{int64(1)}, "e": xpc.NewErrorObject("oops"),
		}})
	})
	t.Run("into existing pointer in interface", func(t *testing.T) {
		var n int
		got := target{A: &n}
		if err := xpc.Unmarshal(mustEncode(t, xpc.Dict("A", 9)), &got); err != nil {
			t.Fatal(err)
		}
		if n != 9 {
			t.Errorf("n = %d", n)
		}
	})
	t.Run("object interface holding a pointer", func(t *testing.T) {
		check(t, xpc.Dict("O", "s", "A", xpc.Dict("k", 1)), target{O: xpc.NewDictionary(0), A: xpc.NewDictionary(0)},
			target{O: xpc.String("s"), A: map[string]any{"k": int64(1)}})
	})
	t.Run("slices replaced, maps added to, text", func(t *testing.T) {
		check(t, xpc.Dict("L", xpc.Array{xpc.Int64(7)}, "M", xpc.Dict("b", "2"), "Tx", "<q>", "H", xpc.Data{1, 2}),
			target{L: []int{1, 2, 3}, M: map[string]string{"a": "1"}},
			target{L: []int{7}, M: map[string]string{"a": "1", "b": "2"}, Tx: textThing{"q"}, H: [2]byte{1, 2}})
	})
	t.Run("fields absent stay", func(t *testing.T) {
		check(t, xpc.Dict("S", "new"), target{I: 3, S: "old"}, target{I: 3, S: "new"})
	})
	t.Run("arrays", func(t *testing.T) {
		var a [2]int
		if err := xpc.ObjectInto(xpc.Array{xpc.Int64(1), xpc.Int64(2), xpc.Int64(3)}, &a); err != nil || a != [2]int{1, 2} {
			t.Errorf("long: %v %v", a, err)
		}
		a = [2]int{5, 5}
		if err := xpc.ObjectInto(xpc.Array{xpc.Int64(1)}, &a); err != nil || a != [2]int{1, 0} {
			t.Errorf("short: %v %v", a, err)
		}
	})
	t.Run("top level", func(t *testing.T) {
		var s string
		if err := xpc.Unmarshal(mustEncode(t, xpc.String("x")), &s); err != nil || s != "x" {
			t.Errorf("%q %v", s, err)
		}
		var o xpc.Object
		if err := xpc.Unmarshal(mustEncode(t, xpc.Dict("k", 1)), &o); err != nil {
			t.Fatal(err)
		}
		if d, ok := o.(*xpc.Dictionary); !ok || d.Len() != 1 {
			t.Errorf("%#v", o)
		}
	})
}

// TestDecodeErrors checks the typed errors and their field paths.
func TestDecodeErrors(t *testing.T) {
	type leaf struct {
		Ports []uint16
		Small int8
		F32   float32
		H     [2]byte
		Ch    chan int
		ID    xpc.UUID
		Att   xpc.Attachment
	}
	type root struct{ Config leaf }
	cases := []struct {
		name string
		in   xpc.Object
		path string
		is   error
		want xpc.Type // for a type mismatch
	}{
		{"overflow", xpc.Dict("Config", xpc.Dict("Ports", xpc.Array{xpc.Int64(1), xpc.Int64(2), xpc.Int64(70000)})),
			"Config.Ports[2]", xpc.ErrOverflow, 0},
		{"negative into unsigned", xpc.Dict("Config", xpc.Dict("Ports", xpc.Array{xpc.Int64(-1)})),
			"Config.Ports[0]", xpc.ErrOverflow, 0},
		{"int8", xpc.Dict("Config", xpc.Dict("Small", xpc.Int64(128))), "Config.Small", xpc.ErrOverflow, 0},
		{"big uint into int", xpc.Dict("Config", xpc.Dict("Small", xpc.Uint64(math.MaxUint64))), "Config.Small", xpc.ErrOverflow, 0},
		{"float32", xpc.Dict("Config", xpc.Dict("F32", xpc.Double(1e300))), "Config.F32", xpc.ErrOverflow, 0},
		{"byte array length", xpc.Dict("Config", xpc.Dict("H", xpc.Data{1})), "Config.H", xpc.ErrOverflow, 0},
		{"mismatch", xpc.Dict("Config", xpc.Dict("Ports", xpc.Array{xpc.String("x")})), "Config.Ports[0]", nil, xpc.TypeUint64},
		{"mismatch struct", xpc.Dict("Config", xpc.Int64(1)), "Config", nil, xpc.TypeDictionary},
		{"mismatch root", xpc.Array{}, "", nil, xpc.TypeDictionary},
		{"unsupported", xpc.Dict("Config", xpc.Dict("Ch", xpc.Int64(1))), "Config.Ch", xpc.ErrUnsupportedType, 0},
		{"bad uuid", xpc.Dict("Config", xpc.Dict("ID", xpc.String("nope"))), "Config.ID", xpc.ErrBadUUID, 0},
		{"interface", xpc.Dict("Config", xpc.Dict("Att", xpc.Int64(1))), "Config.Att", xpc.ErrUnsupportedType, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r root
			err := xpc.Unmarshal(mustEncode(t, c.in), &r)
			var fe *xpc.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v (%T), want *FieldError", err, err)
			}
			if fe.Path != c.path {
				t.Errorf("path %q, want %q (%v)", fe.Path, c.path, err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("err = %v, want %v", err, c.is)
			}
			if c.want != 0 {
				var tm *xpc.TypeMismatchError
				if !errors.As(err, &tm) || tm.Want != c.want || tm.Path != c.path {
					t.Errorf("err = %v, want mismatch wanting %v", err, c.want)
				}
			}
			// ObjectInto reports the same.
			var r2 root
			if err2 := xpc.ObjectInto(c.in, &r2); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("ObjectInto: %v, Unmarshal: %v", err2, err)
			}
		})
	}
	t.Run("message", func(t *testing.T) {
		var r root
		err := xpc.Unmarshal(mustEncode(t, xpc.Dict("Config", xpc.Dict("Ports", xpc.Array{xpc.String("x")}))), &r)
		if got, want := fmt.Sprint(err), "xpc: Config.Ports[0]: want uint64, have string"; got != want {
			t.Errorf("%q, want %q", got, want)
		}
	})
	t.Run("not pointer", func(t *testing.T) {
		var r root
		body := mustEncode(t, xpc.Dict())
		for _, v := range []any{r, nil, (*root)(nil)} {
			if err := xpc.Unmarshal(body, v); !errors.Is(err, xpc.ErrNotPointer) {
				t.Errorf("Unmarshal(%T): %v", v, err)
			}
		}
	})
}

// TestDecodeMalformed: bad bytes give *DecodeError, as from Decode.
func TestDecodeMalformed(t *testing.T) {
	good := mustMarshal(t, newTypicalRequest())
	var req typicalRequest
	for n := range len(good) {
		err := xpc.Unmarshal(good[:n], &req)
		var de *xpc.DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("Unmarshal(good[:%d]) = %v, want *DecodeError", n, err)
		}
	}
	bad := bytes.Clone(good)
	bad = append(bad, 0, 0, 0, 0)
	if err := xpc.Unmarshal(bad, &req); !errors.Is(err, xpc.ErrTrailingBytes) {
		t.Errorf("trailing: %v", err)
	}
}

func TestUnknownAndDuplicateKeys(t *testing.T) {
	type small struct {
		A int
		B string
	}
	t.Run("unknown skipped", func(t *testing.T) {
		var s small
		in := xpc.Dict("x", xpc.Dict("deep", xpc.Array{xpc.String("y")}), "B", "b", "z", 1, "A", 2)
		if err := xpc.Unmarshal(mustEncode(t, in), &s); err != nil || s != (small{2, "b"}) {
			t.Errorf("%+v %v", s, err)
		}
	})
	t.Run("unknown still checked", func(t *testing.T) {
		// An unknown key whose value is a malformed string.
		b := mustEncode(t, xpc.Dict("x", "abc"))
		b[len(b)-1] = 'x' // padding/NUL byte
		var s small
		var de *xpc.DecodeError
		if err := xpc.Unmarshal(b, &s); !errors.As(err, &de) {
			t.Errorf("%v", err)
		}
	})
	dup := func(key string) []byte {
		b := mustEncode(t, xpc.Dict("A", 1, "C", 2, "D", 3))
		return bytes.Replace(b, []byte("D\x00"), []byte(key+"\x00"), 1)
	}
	for _, key := range []string{"A", "C"} {
		t.Run("duplicate "+key, func(t *testing.T) {
			var s small
			if err := xpc.Unmarshal(dup(key), &s); !errors.Is(err, xpc.ErrDuplicateKey) {
				t.Errorf("%v", err)
			}
			var m map[string]int
			if err := xpc.Unmarshal(dup(key), &m); !errors.Is(err, xpc.ErrDuplicateKey) {
				t.Errorf("map: %v", err)
			}
			var a any
			if err := xpc.Unmarshal(dup(key), &a); !errors.Is(err, xpc.ErrDuplicateKey) {
				t.Errorf("any: %v", err)
			}
		})
	}
	t.Run("many unknown keys", func(t *testing.T) {
		d := xpc.NewDictionary(100)
		for i := range 100 {
			d.Set(fmt.Sprintf("k%03d", i), xpc.Int64(i))
		}
		b := mustEncode(t, d)
		var s small
		if err := xpc.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		var m map[string]int
		if err := xpc.Unmarshal(b, &m); err != nil || len(m) != 100 {
			t.Fatal(len(m), err)
		}
		b = bytes.Replace(b, []byte("k099"), []byte("k042"), 1)
		if err := xpc.Unmarshal(b, &s); !errors.Is(err, xpc.ErrDuplicateKey) {
			t.Errorf("%v", err)
		}
		if err := xpc.Unmarshal(b, &m); !errors.Is(err, xpc.ErrDuplicateKey) {
			t.Errorf("map: %v", err)
		}
	})
}

type (
	embedBase struct {
		ID   int
		Name string
		Over string
	}
	EmbedExported struct {
		Extra  bool
		Tagged string `xpc:"tagged"`
	}
	embedA     struct{ Clash int }
	embedB     struct{ Clash int }
	embedOuter struct {
		embedBase
		*EmbedExported
		embedA
		embedB
		Over  string    // shadows embedBase.Over
		Named embedBase `xpc:"named"`
	}
)

func TestEmbedded(t *testing.T) {
	v := embedOuter{
		embedBase:     embedBase{ID: 1, Name: "n", Over: "inner"},
		EmbedExported: &EmbedExported{Extra: true, Tagged: "t"},
		embedA:        embedA{1}, embedB: embedB{2},
		Over:  "outer",
		Named: embedBase{ID: 2},
	}
	want := xpc.Dict("ID", 1, "Name", "n", "Extra", true, "tagged", "t", "Over", "outer",
		"named", xpc.Dict("ID", 2, "Name", "", "Over", ""))
	if got := mustMarshal(t, &v); !bytes.Equal(got, mustEncode(t, want)) {
		o, _ := xpc.ValueOf(&v)
		t.Errorf("got %v", o.(*xpc.Dictionary).Keys())
	}
	var back embedOuter
	if err := xpc.Unmarshal(mustMarshal(t, &v), &back); err != nil {
		t.Fatal(err)
	}
	v.embedA, v.embedB, v.embedBase.Over = embedA{}, embedB{}, ""
	if !reflect.DeepEqual(back, v) {
		t.Errorf("got %+v\nwant %+v", back, v)
	}
	// A nil embedded pointer contributes nothing.
	v.EmbedExported = nil
	if got := mustMarshal(t, &v); bytes.Contains(got, []byte("tagged")) {
		t.Errorf("nil embedded pointer encoded")
	}
}

type upper string

func (u upper) MarshalXPC() (xpc.Object, error) {
	if u == "fail" {
		return nil, errors.New("cannot")
	}
	return xpc.String(strings.ToUpper(string(u))), nil
}

func (u *upper) UnmarshalXPC(o xpc.Object) error {
	switch v := o.(type) {
	case xpc.String:
		*u = upper(strings.ToLower(string(v)))
	case xpc.Null:
		*u = "null"
	default:
		return fmt.Errorf("upper from %v", o.Type())
	}
	return nil
}

type ptrMarshaler struct{ n int }

func (p *ptrMarshaler) MarshalXPC() (xpc.Object, error) { return xpc.Int64(p.n * 10), nil }

func (p *ptrMarshaler) UnmarshalXPC(o xpc.Object) error {
	n, ok := o.(xpc.Int64)
	if !ok {
		return fmt.Errorf("ptrMarshaler from %v", o.Type())
	}
	p.n = int(n / 10)
	return nil
}

func TestMarshalerInterfaces(t *testing.T) {
	type holder struct {
		U  upper
		PU *upper
		PM ptrMarshaler
		A  any
	}
	u := upper("b")
	h := holder{U: "a", PU: &u, PM: ptrMarshaler{2}, A: upper("c")}
	want := mustEncode(t, xpc.Dict("U", "A", "PU", "B", "PM", 20, "A", "C"))
	if got := mustMarshal(t, &h); !bytes.Equal(got, want) {
		t.Errorf("by pointer: %x", got)
	}
	if got := mustMarshal(t, h); !bytes.Equal(got, want) { // PM not addressable
		t.Errorf("by value: %x", got)
	}
	var back holder
	if err := xpc.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	if back.U != "a" || *back.PU != "b" || back.PM.n != 2 || back.A != "C" {
		t.Errorf("%+v", back)
	}
	// Null reaches UnmarshalXPC of a value, not of a nil pointer.
	if err := xpc.Unmarshal(mustEncode(t, xpc.Dict("U", xpc.Null{}, "PU", xpc.Null{})), &back); err != nil {
		t.Fatal(err)
	}
	if back.U != "null" || back.PU != nil {
		t.Errorf("%+v", back)
	}
	// Errors carry the path and the method's error.
	_, err := xpc.Marshal(map[string]any{"k": []upper{"ok", "fail"}})
	var fe *xpc.FieldError
	if !errors.As(err, &fe) || fe.Path != "k[1]" || !strings.Contains(err.Error(), "cannot") {
		t.Errorf("marshal error %v", err)
	}
	err = xpc.Unmarshal(mustEncode(t, xpc.Dict("PU", 1)), &back)
	if !errors.As(err, &fe) || fe.Path != "PU" || !strings.Contains(err.Error(), "upper from int64") {
		t.Errorf("unmarshal error %v", err)
	}
}

func TestMarshalErrors(t *testing.T) {
	type inner struct {
		F func()
	}
	type outer struct {
		List []inner
	}
	cases := []struct {
		name string
		v    any
		path string
		is   error
	}{
		{"func", outer{List: []inner{{}, {}}}, "List[0].F", xpc.ErrUnsupportedType},
		{"chan", map[string]any{"c": make(chan int)}, "c", xpc.ErrUnsupportedType},
		{"complex", struct{ C complex64 }{}, "C", xpc.ErrUnsupportedType},
		{"int keys", struct{ M map[int]string }{}, "M", xpc.ErrUnsupportedType},
		{"root", make(chan int), "", xpc.ErrUnsupportedType},
		{"bad string", struct{ S []string }{S: []string{"ok", "a\x00b"}}, "S[1]", xpc.ErrBadString},
		{"bad key", map[string]int{"a\x00": 1}, "a\x00", xpc.ErrBadString},
		{"nil in array", struct{ A xpc.Array }{A: xpc.Array{nil}}, "A[0]", xpc.ErrNilObject},
		{"fd by value", struct{ F xpc.FD }{}, "F", xpc.ErrUnsupportedType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := xpc.Marshal(c.v)
			var fe *xpc.FieldError
			if !errors.As(err, &fe) || fe.Path != c.path || !errors.Is(err, c.is) {
				t.Errorf("Marshal: %v, want %v at %q", err, c.is, c.path)
			}
			_, err = xpc.ValueOf(c.v)
			if !errors.As(err, &fe) || fe.Path != c.path || !errors.Is(err, c.is) {
				t.Errorf("ValueOf: %v", err)
			}
		})
	}
	t.Run("skipped unsupported is fine", func(t *testing.T) {
		type ok struct {
			F func()   `xpc:"-"`
			c chan int //lint:ignore U1000 there to be skipped: unexported, so its unsupported type is fine
			N int
		}
		if _, err := xpc.Marshal(ok{}); err != nil {
			t.Error(err)
		}
	})
}

type cyclic struct {
	Name string
	Next *cyclic
}

type selfPtr *selfPtr

func TestCycles(t *testing.T) {
	c := &cyclic{Name: "a"}
	c.Next = c
	if _, err := xpc.Marshal(c); !errors.Is(err, xpc.ErrTooDeep) {
		t.Errorf("struct cycle: %v", err)
	}
	m := map[string]any{}
	m["m"] = m
	if _, err := xpc.Marshal(m); !errors.Is(err, xpc.ErrTooDeep) {
		t.Errorf("map cycle: %v", err)
	}
	var p selfPtr
	p = &p
	if _, err := xpc.Marshal(p); !errors.Is(err, xpc.ErrTooDeep) {
		t.Errorf("pointer cycle: %v", err)
	}
	var x any
	x = &x
	if _, err := xpc.Marshal(x); !errors.Is(err, xpc.ErrTooDeep) {
		t.Errorf("interface cycle: %v", err)
	}
	var q selfPtr
	if err := xpc.Unmarshal(mustEncode(t, xpc.Int64(1)), &q); !errors.Is(err, xpc.ErrTooDeep) {
		t.Errorf("decode pointer chain: %v", err)
	}
	// A legitimately deep list within the limit round-trips.
	var head *cyclic
	for i := range 60 {
		head = &cyclic{Name: strconv.Itoa(i), Next: head}
	}
	var back *cyclic
	if err := xpc.Unmarshal(mustMarshal(t, head), &back); err != nil || back.Name != "59" {
		t.Errorf("deep list: %v", err)
	}
}

func newTestFD(t *testing.T) *xpc.FD {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	fd := xpc.NewFD(r)
	t.Cleanup(func() { fd.Close() })
	return fd
}

func fdOpen(fd int) bool {
	_, err := os.Stat("/proc/self/fd/" + strconv.Itoa(fd))
	return err == nil
}

func dupFDs(t *testing.T, att []xpc.Attachment) []int {
	t.Helper()
	var fds []int
	for _, a := range att {
		// A bare descriptor, which no *os.File owns: one would close it
		// when collected, after the test closed it and the number went to
		// someone else.
		d, err := unix.FcntlInt(a.File().Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, d)
	}
	return fds
}

func TestOutOfBand(t *testing.T) {
	type msg struct {
		Name string
		File *xpc.FD
		Obj  xpc.Object
		Any  any
		Att  xpc.Attachment
		None *xpc.FD
	}
	f1, f2, f3, f4 := newTestFD(t), newTestFD(t), newTestFD(t), newTestFD(t)
	m := &msg{Name: "x", File: f1, Obj: f2, Any: f3, Att: f4}

	if _, err := xpc.Marshal(m); !errors.Is(err, xpc.ErrAttachments) {
		t.Errorf("Marshal with fds: %v", err)
	}

	// ValueOf and ObjectInto keep the very same objects.
	obj, err := xpc.ValueOf(m)
	if err != nil {
		t.Fatal(err)
	}
	d := obj.(*xpc.Dictionary)
	if d.Get("File") != xpc.Object(f1) || d.Get("Obj") != xpc.Object(f2) || d.Get("Any") != xpc.Object(f3) ||
		d.Get("Att") != xpc.Object(f4) || d.Get("None") != xpc.Object(xpc.Null{}) {
		t.Errorf("ValueOf lost the objects: %v", d.Keys())
	}
	var back msg
	if err := xpc.ObjectInto(d, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, m) || back.File != f1 || back.Any != xpc.Object(f3) {
		t.Errorf("ObjectInto: %+v", back)
	}
	if d2 := xpc.Dict("m", m); d2.Get("m").(*xpc.Dictionary).Get("File") != xpc.Object(f1) {
		t.Error("Dict lost the object")
	}

	// Over bytes, with descriptors beside them.
	var e xpc.Encoder
	body, err := e.EncodeValue(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Attachments(); len(got) != 4 || got[0] != xpc.Attachment(f1) || got[3] != xpc.Attachment(f4) {
		t.Fatalf("attachments %v", got)
	}
	fds := dupFDs(t, e.Attachments())
	var dec xpc.Decoder
	var got msg
	if err := dec.DecodeValue(body, fds, &got); err != nil {
		t.Fatal(err)
	}
	if got.File == nil || got.File.File() == nil || got.Any.(*xpc.FD).File() == nil || got.Att.(*xpc.FD).File() == nil {
		t.Errorf("decoded without files: %+v", got)
	}
	for _, a := range []xpc.Attachment{got.File, got.Obj.(xpc.Attachment), got.Any.(xpc.Attachment), got.Att} {
		a.Close()
	}
	for _, fd := range fds {
		if fdOpen(fd) {
			t.Errorf("fd %d still open after closing the decoded objects", fd)
		}
	}

	// Unknown keys' descriptors are closed; on error the caller keeps all.
	type nameOnly struct{ Name string }
	fds = dupFDs(t, e.Attachments())
	var n nameOnly
	if err := dec.DecodeValue(body, fds, &n); err != nil || n.Name != "x" {
		t.Fatal(n, err)
	}
	for _, fd := range fds {
		if fdOpen(fd) {
			t.Errorf("skipped fd %d left open", fd)
		}
	}
	type wrong struct{ File int }
	fds = dupFDs(t, e.Attachments())
	if err := dec.DecodeValue(body, fds, &wrong{}); err == nil {
		t.Fatal("decoded an fd into an int")
	}
	if err := dec.DecodeValue(body, fds[:3], &got); !errors.Is(err, xpc.ErrAttachments) {
		t.Errorf("too few fds: %v", err)
	}
	for _, fd := range fds {
		if !fdOpen(fd) {
			t.Errorf("fd %d closed by a failed decode", fd)
		}
		os.NewFile(uintptr(fd), "").Close()
	}
	if err := xpc.Unmarshal(body, &got); !errors.Is(err, xpc.ErrAttachments) {
		t.Errorf("Unmarshal with fds in body: %v", err)
	}
}

func TestValueOfAndDict(t *testing.T) {
	type point struct{ X, Y int }
	d := xpc.Dict("p", point{1, 2}, "l", []string{"a"}, "n", nil, "t", time.Unix(1, 0))
	want := xpc.Dict("p", xpc.Dict("X", xpc.Int64(1), "Y", xpc.Int64(2)), "l", xpc.Array{xpc.String("a")},
		"n", xpc.Null{}, "t", xpc.Date(1e9))
	if !bytes.Equal(mustEncode(t, d), mustEncode(t, want)) {
		t.Errorf("Dict with Go values: %v", d.Keys())
	}
	o := xpc.Object(xpc.Int64(1))
	if got, _ := xpc.ValueOf(o); got != o {
		t.Error("ValueOf of an object is not the object")
	}
	var p point
	if err := xpc.ObjectInto(d.Get("p"), &p); err != nil || p != (point{1, 2}) {
		t.Errorf("%v %v", p, err)
	}
	if err := xpc.ObjectInto(nil, &p); err == nil {
		t.Error("ObjectInto(nil) succeeded")
	}
}

// FuzzUnmarshal: any input decodes into a struct of many field kinds
// without panicking, and what decodes re-encodes and decodes the same.
func FuzzUnmarshal(f *testing.F) {
	f.Add(mustMarshal(f, newTypicalRequest()))
	f.Add(mustMarshal(f, &fuzzTarget{B: true, I8: -1, U16: 9, F32: 1, S: "s", D: []byte{1}, H: [2]byte{1, 2},
		L: []int32{1, 2}, M: map[string]uint8{"a": 1}, P: &typicalCaller{PID: 1}, A: []any{"x", int64(1)},
		O: xpc.Dict("k", 1), T: time.Unix(1, 0).UTC(), ID: xpc.UUID{1}, Arr: [2]string{"a", "b"}}))
	f.Add(mustEncode(f, xpc.Dict("I", xpc.Uint64(math.MaxUint64), "U16", xpc.Int64(-1), "ID", "not-a-uuid")))
	f.Add(mustEncode(f, xpc.Dict("unknown", xpc.Array{xpc.Dict("x", xpc.Null{})}, "P", xpc.Null{})))
	f.Fuzz(func(t *testing.T, b []byte) {
		var v fuzzTarget
		if err := xpc.Unmarshal(b, &v); err != nil {
			return
		}
		b2, err := xpc.Marshal(&v)
		if err != nil {
			if errors.Is(err, xpc.ErrUnsupportedType) {
				return // e.g. an error object in A re-encodes fine, but keep the rule simple
			}
			t.Fatalf("re-encode: %v", err)
		}
		var v2 fuzzTarget
		if err := xpc.Unmarshal(b2, &v2); err != nil {
			t.Fatalf("decode of re-encoded: %v", err)
		}
	})
}

type fuzzTarget struct {
	B   bool
	I   int
	I8  int8
	U16 uint16
	F32 float32
	S   string
	D   []byte
	H   [2]byte
	L   []int32
	M   map[string]uint8
	P   *typicalCaller
	A   any
	O   xpc.Object
	T   time.Time
	ID  xpc.UUID
	Arr [2]string
	Req typicalRequest
	Tx  textThing
	Up  upper
	Dct *xpc.Dictionary
	Att xpc.Attachment
	MA  map[string]any
	*EmbedExported
}

func BenchmarkMarshalTypical(b *testing.B) {
	req := newTypicalRequest()
	var e xpc.Encoder
	body, err := e.EncodeValue(req)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.EncodeValue(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalTypical(b *testing.B) {
	body := mustMarshal(b, newTypicalRequest())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var req typicalRequest
		if err := xpc.Unmarshal(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestManyFields covers structs of more than 64 fields, whose seen-set
// spills out of one word.
func TestManyFields(t *testing.T) {
	var sf []reflect.StructField
	for i := range 70 {
		sf = append(sf, reflect.StructField{Name: fmt.Sprintf("F%02d", i), Type: reflect.TypeFor[int]()})
	}
	typ := reflect.StructOf(sf)
	d := xpc.NewDictionary(70)
	for i := 69; i >= 0; i-- { // out of field order
		d.Set(fmt.Sprintf("F%02d", i), xpc.Int64(i))
	}
	b := mustEncode(t, d)
	v := reflect.New(typ)
	if err := xpc.Unmarshal(b, v.Interface()); err != nil {
		t.Fatal(err)
	}
	for i := range 70 {
		if got := v.Elem().Field(i).Int(); got != int64(i) {
			t.Fatalf("F%02d = %d", i, got)
		}
	}
	b = bytes.Replace(b, []byte("F00"), []byte("F67"), 1)
	if err := xpc.Unmarshal(b, v.Interface()); !errors.Is(err, xpc.ErrDuplicateKey) {
		t.Errorf("duplicate past 64: %v", err)
	}
}

type unexportedEmbedded struct{ X int }

type zeroByMethod struct{ n int }

func (z *zeroByMethod) IsZero() bool { return z.n < 0 }

func (z zeroByMethod) MarshalXPC() (xpc.Object, error) { return xpc.Int64(z.n), nil }

func TestEmbeddedUnexportedPointerAndOmitZero(t *testing.T) {
	type outer struct {
		*unexportedEmbedded
		Y int
	}
	var o outer
	err := xpc.Unmarshal(mustEncode(t, xpc.Dict("X", 1, "Y", 2)), &o)
	if !errors.Is(err, xpc.ErrUnsupportedType) {
		t.Errorf("nil unexported embedded pointer: %v", err)
	}
	o = outer{unexportedEmbedded: &unexportedEmbedded{}}
	if err := xpc.Unmarshal(mustEncode(t, xpc.Dict("X", 1, "Y", 2)), &o); err != nil || o.X != 1 || o.Y != 2 {
		t.Errorf("%+v %v", o, err)
	}

	type withZero struct {
		Z zeroByMethod `xpc:"z,omitzero"`
	}
	if got := mustMarshal(t, &withZero{Z: zeroByMethod{-1}}); !bytes.Equal(got, mustEncode(t, xpc.Dict())) {
		t.Errorf("IsZero not used: %x", got)
	}
	if got := mustMarshal(t, &withZero{}); !bytes.Equal(got, mustEncode(t, xpc.Dict("z", 0))) {
		t.Errorf("IsZero not used: %x", got)
	}
}

// TestConcurrentCodecs builds codecs for new types from many goroutines at
// once (run with -race).
func TestConcurrentCodecs(t *testing.T) {
	types := make([]reflect.Type, 8)
	for i := range types {
		types[i] = reflect.StructOf([]reflect.StructField{
			{Name: "A", Type: reflect.TypeFor[[]typicalCaller]()},
			{Name: fmt.Sprintf("B%d", i), Type: reflect.TypeFor[map[string]*cyclic]()},
		})
	}
	errs := make(chan error, 64)
	for g := range 64 {
		go func() {
			v := reflect.New(types[g%len(types)])
			b, err := xpc.Marshal(v.Interface())
			if err == nil {
				err = xpc.Unmarshal(b, v.Interface())
			}
			errs <- err
		}()
	}
	for range 64 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
