package xpc_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
)

// jsonTestVector reads a file of testdata/vectors.
func jsonTestVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonTestDict(pairs ...any) *xpc.Dictionary {
	d := &xpc.Dictionary{}
	for i := 0; i < len(pairs); i += 2 {
		d.Set(pairs[i].(string), pairs[i+1].(xpc.Object))
	}
	return d
}

func TestTaggedJSONExact(t *testing.T) {
	u, _ := xpc.ParseUUID("a7dd28ac-2911-4549-811d-85917b9ac72f")
	for _, tc := range []struct {
		obj  xpc.Object
		want string
	}{
		{xpc.Null{}, `{"null":null}`},
		{xpc.Bool(true), `{"bool":true}`},
		{xpc.Bool(false), `{"bool":false}`},
		{xpc.Int64(-5), `{"int64":-5}`},
		{xpc.Int64(math.MinInt64), `{"int64":-9223372036854775808}`},
		{xpc.Uint64(math.MaxUint64), `{"uint64":18446744073709551615}`},
		{xpc.Double(1.5), `{"double":1.5}`},
		{xpc.Double(1), `{"double":1}`},
		{xpc.Double(1e21), `{"double":1e+21}`},
		{xpc.Double(math.Copysign(0, -1)), `{"double":-0}`},
		{xpc.Double(5e-324), `{"double":5e-324}`},
		{xpc.Double(math.Float64frombits(0x7FF8000000000000)), `{"double":"NaN"}`},
		{xpc.Double(math.NaN()), `{"double":"NaN(0x7ff8000000000001)"}`},
		{xpc.Double(math.Float64frombits(0xFFF8000000000000)), `{"double":"NaN(0xfff8000000000000)"}`},
		{xpc.Double(math.Inf(1)), `{"double":"+Inf"}`},
		{xpc.Double(math.Inf(-1)), `{"double":"-Inf"}`},
		{xpc.Date(1700000000123456789), `{"date":1700000000123456789}`},
		{xpc.Data{0, 1, 2, 0xff}, `{"data":"AAEC/w=="}`},
		{xpc.Data{}, `{"data":""}`},
		{xpc.String("a\"b\\c\n\t\x01<&>é"), `{"string":"a\"b\\c\n\t\u0001<&>é"}`},
		{u, `{"uuid":"A7DD28AC-2911-4549-811D-85917B9AC72F"}`},
		{xpc.Array{}, `{"array":[]}`},
		{xpc.Array{xpc.Int64(1), xpc.String("x")}, `{"array":[{"int64":1},{"string":"x"}]}`},
		{&xpc.Dictionary{}, `{"dictionary":{}}`},
		{jsonTestDict("z", xpc.Bool(true), "a", xpc.Null{}), `{"dictionary":{"z":{"bool":true},"a":{"null":null}}}`},
		{xpc.NewErrorObject("Connection invalid"), `{"error":{"XPCErrorDescription":{"string":"Connection invalid"}}}`},
		{&xpc.FD{}, `{"fd":null}`},
		{&xpc.SharedMemory{}, `{"shmem":null}`},
		{&xpc.Endpoint{}, `{"endpoint":null}`},
	} {
		got, err := xpc.MarshalTaggedJSON(tc.obj)
		if err != nil {
			t.Errorf("MarshalTaggedJSON(%#v): %v", tc.obj, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("MarshalTaggedJSON(%#v)\n got %s\nwant %s", tc.obj, got, tc.want)
		}
		if !json.Valid(got) {
			t.Errorf("%s is not valid JSON", got)
		}
		if tc.obj.Type() == xpc.TypeFD || tc.obj.Type() == xpc.TypeShmem || tc.obj.Type() == xpc.TypeEndpoint {
			continue
		}
		back, err := xpc.UnmarshalTaggedJSON(got)
		if err != nil {
			t.Errorf("UnmarshalTaggedJSON(%s): %v", got, err)
			continue
		}
		if !xpc.Equal(back, tc.obj) {
			t.Errorf("UnmarshalTaggedJSON(%s) = %#v, want %#v", got, back, tc.obj)
		}
	}
}

func TestTaggedJSONDoubleRoundTrip(t *testing.T) {
	for _, f := range []float64{0, 0.1, 1.0 / 3, math.Pi, math.MaxFloat64, math.SmallestNonzeroFloat64,
		-math.MaxFloat64, 123456789012345678, 1e-7, 2.5e-308, math.Nextafter(1, 2)} {
		b, err := xpc.MarshalTaggedJSON(xpc.Double(f))
		if err != nil {
			t.Fatal(err)
		}
		back, err := xpc.UnmarshalTaggedJSON(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if math.Float64bits(float64(back.(xpc.Double))) != math.Float64bits(f) {
			t.Errorf("%v -> %s -> %v", f, b, back)
		}
	}
}

func TestTaggedJSONReadForms(t *testing.T) {
	u, _ := xpc.ParseUUID("A7DD28AC-2911-4549-811D-85917B9AC72F")
	for _, tc := range []struct {
		in   string
		want xpc.Object
	}{
		{` { "int64" : 7 } `, xpc.Int64(7)},
		{`{"uuid":"a7dd28ac-2911-4549-811d-85917b9ac72f"}`, u},
		{`{"double":2}`, xpc.Double(2)},
		{`{"double":-1.25e-3}`, xpc.Double(-1.25e-3)},
		{`{"string":"\u00e9\ud83d\ude00"}`, xpc.String("é😀")},
		{`{"array":[{"array":[]}]}`, xpc.Array{xpc.Array{}}},
	} {
		got, err := xpc.UnmarshalTaggedJSON([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !xpc.Equal(got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestTaggedJSONKeepsKeyOrder(t *testing.T) {
	in := `{"dictionary":{"b":{"int64":1},"a":{"int64":2},"c":{"dictionary":{"z":{"null":null},"y":{"null":null}}}}}`
	obj, err := xpc.UnmarshalTaggedJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	d := obj.(*xpc.Dictionary)
	if got := strings.Join(d.Keys(), ","); got != "b,a,c" {
		t.Errorf("keys %s, want b,a,c", got)
	}
	inner, _ := d.Dictionary("c")
	if got := strings.Join(inner.Keys(), ","); got != "z,y" {
		t.Errorf("inner keys %s, want z,y", got)
	}
	out, err := xpc.MarshalTaggedJSON(obj)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("re-marshalled\n got %s\nwant %s", out, in)
	}
}

// TestTaggedJSONVectors: each captured message printed as tagged JSON and
// read back encodes to the very same bytes.
func TestTaggedJSONVectors(t *testing.T) {
	for _, name := range []string{"go-ios_xpc_empty_dict.bin", "go-ios_xpc_dict.bin"} {
		raw := jsonTestVector(t, name)
		m, err := xpc.DecodeWrapped(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		js, err := xpc.MarshalTaggedJSONMessage(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !json.Valid(js) {
			t.Fatalf("%s: invalid JSON %s", name, js)
		}
		back, err := xpc.UnmarshalTaggedJSONMessage(js)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, js)
		}
		again, err := xpc.EncodeWrapped(back)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(again, raw) {
			t.Errorf("%s: JSON round trip changed the bytes\n%s", name, js)
		}
		// The body alone, indented, reads back too.
		ind, err := xpc.MarshalTaggedJSONIndent(m.Body, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		body, err := xpc.UnmarshalTaggedJSON(ind)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !xpc.Equal(body, m.Body) {
			t.Errorf("%s: indented body does not read back equal", name)
		}
	}
}

func TestTaggedJSONMessage(t *testing.T) {
	m := xpc.RemoteMessage{Header: xpc.WrapperHeader{Flags: 0x10101, ID: 1 << 63}, Body: xpc.Int64(1)}
	js, err := xpc.MarshalTaggedJSONMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"flags":65793,"id":9223372036854775808,"body":{"int64":1}}`; string(js) != want {
		t.Errorf("got %s, want %s", js, want)
	}
	hdr := xpc.RemoteMessage{Header: xpc.WrapperHeader{Flags: 1, ID: 2}}
	js, err = xpc.MarshalTaggedJSONMessage(hdr)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"flags":1,"id":2,"body":null}`; string(js) != want {
		t.Errorf("got %s, want %s", js, want)
	}
	back, err := xpc.UnmarshalTaggedJSONMessage([]byte(`{"body":null,"id":2,"flags":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if back.Body != nil || back.Header.Flags != 1 || back.Header.ID != 2 {
		t.Errorf("got %+v", back)
	}
}

func TestTaggedJSONErrors(t *testing.T) {
	deep := strings.Repeat(`{"array":[`, 65) + strings.Repeat(`]}`, 65)
	for _, tc := range []struct {
		name, in string
		kind     error
		path     string
		offset   int64
	}{
		{"empty", ``, xpc.ErrJSONSyntax, "", 0},
		{"syntax", `{"int64":}`, xpc.ErrJSONSyntax, "", 9},
		{"truncated", `{"array":[{"int64":1}`, xpc.ErrJSONSyntax, "", 21},
		{"truncated object", `{`, xpc.ErrJSONSyntax, "", 1},
		{"truncated payload", `{"int64":`, xpc.ErrJSONSyntax, "", 9},
		{"truncated array", `{"array":[{"int64":1},`, xpc.ErrJSONSyntax, "[1]", 22},
		{"truncated dictionary", `{"dictionary":{`, xpc.ErrJSONSyntax, "", 15},
		{"truncated after payload", `{"int64":1`, xpc.ErrJSONSyntax, "", 10},
		{"not an object", `5`, xpc.ErrNotTagged, "", 0},
		{"empty object", `{}`, xpc.ErrNotTagged, "", 0},
		{"unknown type", `{"integer":5}`, xpc.ErrNotTagged, "", 1},
		{"two keys", `{"int64":5,"uint64":6}`, xpc.ErrNotTagged, "", 11},
		{"float for int", `{"int64":1.5}`, xpc.ErrBadValue, "", 9},
		{"exponent for int", `{"int64":1e3}`, xpc.ErrBadValue, "", 9},
		{"int64 too big", `{"int64":9223372036854775808}`, xpc.ErrBadValue, "", 9},
		{"int64 too small", `{"int64":-9223372036854775809}`, xpc.ErrBadValue, "", 9},
		{"uint64 negative", `{"uint64":-1}`, xpc.ErrBadValue, "", 10},
		{"uint64 too big", `{"uint64":18446744073709551616}`, xpc.ErrBadValue, "", 10},
		{"date as string", `{"date":"2020-01-01"}`, xpc.ErrBadValue, "", 8},
		{"double too big", `{"double":1e400}`, xpc.ErrBadValue, "", 10},
		{"double bad string", `{"double":"nan"}`, xpc.ErrBadValue, "", 10},
		{"bad base64", `{"data":"AAE"}`, xpc.ErrBadValue, "", 8},
		{"url base64", `{"data":"-_8="}`, xpc.ErrBadValue, "", 8},
		{"bad uuid", `{"uuid":"not-a-uuid"}`, xpc.ErrBadValue, "", 8},
		{"NUL string", `{"string":"a\u0000b"}`, xpc.ErrBadString, "", 10},
		{"null payload", `{"null":0}`, xpc.ErrBadValue, "", 8},
		{"bool payload", `{"bool":"true"}`, xpc.ErrBadValue, "", 8},
		{"array payload", `{"array":{}}`, xpc.ErrBadValue, "", 9},
		{"dup key", `{"dictionary":{"a":{"null":null},"a":{"null":null}}}`, xpc.ErrDuplicateKey, "", 33},
		{"NUL key", `{"dictionary":{"a\u0000":{"null":null}}}`, xpc.ErrBadKey, "", 15},
		{"fd", `{"fd":null}`, xpc.ErrAttachments, "", 6},
		{"shmem", `{"shmem":null}`, xpc.ErrAttachments, "", 9},
		{"endpoint", `{"endpoint":null}`, xpc.ErrAttachments, "", 12},
		{"trailing", `{"null":null} {"null":null}`, xpc.ErrTrailingBytes, "", 14},
		{"trailing junk", `{"null":null}]`, xpc.ErrTrailingBytes, "", 13},
		{"invalid utf8", "{\"string\":\"\xff\"}", xpc.ErrJSONSyntax, "", 11},
		{"too deep", deep, xpc.ErrTooDeep, strings.Repeat("[0]", 64), 649},
		{"path", `{"dictionary":{"CoreDevice.input":{"dictionary":{"options":{"array":[{"null":null},{"null":null},{"null":null},{"int64":true}]}}}}}`,
			xpc.ErrBadValue, "CoreDevice.input.options[3]", 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj, err := xpc.UnmarshalTaggedJSON([]byte(tc.in))
			if err == nil {
				t.Fatalf("no error; got %#v", obj)
			}
			var je *xpc.JSONError
			if !errors.As(err, &je) {
				t.Fatalf("error %T %v is not a *JSONError", err, err)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %v is not %v", err, tc.kind)
			}
			if je.Path != tc.path {
				t.Errorf("path %q, want %q (%v)", je.Path, tc.path, err)
			}
			if je.Offset != tc.offset {
				t.Errorf("offset %d, want %d (%v)", je.Offset, tc.offset, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "offset") {
				t.Errorf("message %q should be one line naming the offset", msg)
			}
		})
	}
}

func TestTaggedJSONMessageErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		kind     error
		path     string
	}{
		{"missing body", `{"flags":1,"id":0}`, xpc.ErrNotTagged, ""},
		{"missing flags", `{"id":0,"body":null}`, xpc.ErrNotTagged, ""},
		{"unknown key", `{"flags":1,"id":0,"body":null,"x":1}`, xpc.ErrNotTagged, ""},
		{"dup key", `{"flags":1,"flags":1,"id":0,"body":null}`, xpc.ErrDuplicateKey, ""},
		{"flags too big", `{"flags":4294967296,"id":0,"body":null}`, xpc.ErrBadValue, "flags"},
		{"bad body", `{"flags":1,"id":0,"body":{"dictionary":{"k":{"int64":"x"}}}}`, xpc.ErrBadValue, "body.k"},
		{"bare value", `{"int64":1}`, xpc.ErrNotTagged, ""},
		{"truncated", `{`, xpc.ErrJSONSyntax, ""},
		{"truncated after a key", `{"flags":1,`, xpc.ErrJSONSyntax, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := xpc.UnmarshalTaggedJSONMessage([]byte(tc.in))
			var je *xpc.JSONError
			if !errors.As(err, &je) {
				t.Fatalf("error %v is not a *JSONError", err)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %v is not %v", err, tc.kind)
			}
			if je.Path != tc.path {
				t.Errorf("path %q, want %q", je.Path, tc.path)
			}
		})
	}
}

func TestTaggedJSONMarshalErrors(t *testing.T) {
	cyc := xpc.Array{nil}
	cyc[0] = cyc
	for _, tc := range []struct {
		name string
		obj  xpc.Object
		kind error
		path string
	}{
		{"nil", nil, xpc.ErrNilObject, ""},
		{"nil in array", xpc.Array{xpc.Int64(1), nil}, xpc.ErrNilObject, "[1]"},
		{"bad string", jsonTestDict("a", jsonTestDict("b", xpc.String("x\x00y"))), xpc.ErrBadString, "a.b"},
		{"invalid utf8", xpc.String("\xff"), xpc.ErrBadString, ""},
		{"cycle", cyc, xpc.ErrTooDeep, strings.Repeat("[0]", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := xpc.MarshalTaggedJSON(tc.obj)
			var ee *xpc.EncodeError
			if !errors.As(err, &ee) {
				t.Fatalf("error %v is not an *EncodeError", err)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %v is not %v", err, tc.kind)
			}
			if ee.Path != tc.path {
				t.Errorf("path %q, want %q", ee.Path, tc.path)
			}
			if _, err := xpc.ToPlainJSON(tc.obj); !errors.Is(err, tc.kind) {
				t.Errorf("ToPlainJSON: error %v is not %v", err, tc.kind)
			}
		})
	}
}

func TestFromPlainJSON(t *testing.T) {
	in := `{"name":"com.example.agent","n":-3,"big":18446744073709551615,"max":9223372036854775807,
		"f":1.5,"e":1e3,"ok":true,"nothing":null,"list":[1,"two",[]],"nested":{"z":0,"a":1}}`
	obj, err := xpc.FromPlainJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := jsonTestDict(
		"name", xpc.String("com.example.agent"),
		"n", xpc.Int64(-3),
		"big", xpc.Uint64(math.MaxUint64),
		"max", xpc.Int64(math.MaxInt64),
		"f", xpc.Double(1.5),
		"e", xpc.Double(1000),
		"ok", xpc.Bool(true),
		"nothing", xpc.Null{},
		"list", xpc.Array{xpc.Int64(1), xpc.String("two"), xpc.Array{}},
		"nested", jsonTestDict("z", xpc.Int64(0), "a", xpc.Int64(1)),
	)
	if !xpc.Equal(obj, want) {
		t.Errorf("got %s", xpc.Format(obj))
	}
	d := obj.(*xpc.Dictionary)
	if got := strings.Join(d.Keys(), ","); got != "name,n,big,max,f,e,ok,nothing,list,nested" {
		t.Errorf("key order %s", got)
	}
	nested, _ := d.Dictionary("nested")
	if got := strings.Join(nested.Keys(), ","); got != "z,a" {
		t.Errorf("nested key order %s", got)
	}

	for _, bad := range []struct {
		in   string
		kind error
	}{
		{`{"a":1,"a":2}`, xpc.ErrDuplicateKey},
		{`18446744073709551616`, xpc.ErrBadValue},
		{`-9223372036854775809`, xpc.ErrBadValue},
		{`1e999`, xpc.ErrBadValue},
		{`"a\u0000"`, xpc.ErrBadString},
		{`{"a":}`, xpc.ErrJSONSyntax},
		{`[1,2`, xpc.ErrJSONSyntax},
		{`[1,`, xpc.ErrJSONSyntax},
		{`[`, xpc.ErrJSONSyntax},
		{`{`, xpc.ErrJSONSyntax},
		{`{"a":1`, xpc.ErrJSONSyntax},
		{`1 2`, xpc.ErrTrailingBytes},
		{strings.Repeat("[", 65) + strings.Repeat("]", 65), xpc.ErrTooDeep},
	} {
		_, err := xpc.FromPlainJSON([]byte(bad.in))
		var je *xpc.JSONError
		if !errors.As(err, &je) || !errors.Is(err, bad.kind) {
			t.Errorf("FromPlainJSON(%s) error %v, want a *JSONError of %v", bad.in, err, bad.kind)
		}
	}
}

func TestToPlainJSON(t *testing.T) {
	u, _ := xpc.ParseUUID("62419FC1-5ABF-4D96-BCA8-7A5F6F9A69EE")
	obj := jsonTestDict(
		"s", xpc.String("x<y"),
		"i", xpc.Int64(-1),
		"u", xpc.Uint64(math.MaxUint64),
		"d", xpc.Double(0.5),
		"nan", xpc.Double(math.NaN()),
		"b", xpc.Bool(false),
		"n", xpc.Null{},
		"data", xpc.Data("hi"),
		"date", xpc.Date(1700000000123456789),
		"uuid", u,
		"fd", &xpc.FD{},
		"a", xpc.Array{xpc.Int64(1)},
		"err", xpc.NewErrorObject("boom"),
	)
	got, err := xpc.ToPlainJSON(obj)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"s":"x<y","i":-1,"u":18446744073709551615,"d":0.5,"nan":"NaN","b":false,"n":null,` +
		`"data":"aGk=","date":"2023-11-14T22:13:20.123456789Z","uuid":"62419FC1-5ABF-4D96-BCA8-7A5F6F9A69EE",` +
		`"fd":null,"a":[1],"err":{"XPCErrorDescription":"boom"}}`
	if string(got) != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	// Everything but the lossy types comes back as it went.
	plain := jsonTestDict("s", xpc.String("x"), "i", xpc.Int64(-1), "u", xpc.Uint64(math.MaxUint64),
		"d", xpc.Double(0.5), "b", xpc.Bool(true), "n", xpc.Null{}, "a", xpc.Array{xpc.Int64(1)})
	js, err := xpc.ToPlainJSON(plain)
	if err != nil {
		t.Fatal(err)
	}
	back, err := xpc.FromPlainJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	if !xpc.Equal(back, plain) {
		t.Errorf("plain round trip: %s", js)
	}
}

func FuzzUnmarshalTaggedJSON(f *testing.F) {
	for _, s := range []string{
		`{"null":null}`, `{"int64":-5}`, `{"uint64":18446744073709551615}`, `{"double":"NaN"}`,
		`{"data":"AAEC"}`, `{"uuid":"A7DD28AC-2911-4549-811D-85917B9AC72F"}`,
		`{"dictionary":{"a":{"array":[{"bool":true},{"date":5}]}}}`, `{"error":{"x":{"string":"y"}}}`,
		`{"flags":1,"id":0,"body":null}`, `{"fd":null}`, `{"int64":1,"int64":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := xpc.UnmarshalTaggedJSON(data)
		if err != nil {
			var je *xpc.JSONError
			if !errors.As(err, &je) {
				t.Fatalf("error %T is not a *JSONError: %v", err, err)
			}
			return
		}
		out, err := xpc.MarshalTaggedJSON(obj)
		if err != nil {
			t.Fatalf("read %q but cannot write it: %v", data, err)
		}
		again, err := xpc.UnmarshalTaggedJSON(out)
		if err != nil || !xpc.Equal(again, obj) {
			t.Fatalf("%s does not read back: %v", out, err)
		}
		if _, err := xpc.Encode(obj); err != nil {
			t.Fatalf("read %q but cannot encode it: %v", data, err)
		}
		_, _ = xpc.UnmarshalTaggedJSONMessage(data)
		_, _ = xpc.FromPlainJSON(data)
	})
}

func ExampleMarshalTaggedJSON() {
	d := &xpc.Dictionary{}
	d.Set("name", xpc.String("com.example.agent"))
	d.Set("pid", xpc.Int64(412))
	d.Set("mask", xpc.Uint64(math.MaxUint64))
	b, err := xpc.MarshalTaggedJSON(d)
	if err != nil {
		panic(err)
	}
	os.Stdout.Write(append(b, '\n'))
	// Output:
	// {"dictionary":{"name":{"string":"com.example.agent"},"pid":{"int64":412},"mask":{"uint64":18446744073709551615}}}
}

func ExampleUnmarshalTaggedJSON() {
	obj, err := xpc.UnmarshalTaggedJSON([]byte(`{"dictionary":{"b":{"double":0.5},"a":{"data":"AAEC"}}}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(xpc.Format(obj))
	_, err = xpc.UnmarshalTaggedJSON([]byte(`{"dictionary":{"n":{"int64":1.5}}}`))
	fmt.Println(err)
	// Output:
	// <dictionary> { count = 2, contents =
	// 	"b" => <double: 0.5>
	// 	"a" => <data: { length = 3 bytes, contents = 0x000102 }>
	// }
	// xpc: json: n: malformed value: int64 payload must be an integer, found 1.5 at offset 28
}

func ExampleFromPlainJSON() {
	obj, err := xpc.FromPlainJSON([]byte(`{"command":"status","verbose":true,"limit":10,"ratio":0.25}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(xpc.Format(obj))
	// Output:
	// <dictionary> { count = 4, contents =
	// 	"command" => <string: "status">
	// 	"verbose" => <bool: true>
	// 	"limit" => <int64: 10>
	// 	"ratio" => <double: 0.25>
	// }
}
