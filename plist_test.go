package xpc_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/goxpc/xpc"
)

func plistTestFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/plist/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// plistTestAgent is what testdata/plist/com.example.agent.plist holds.
func plistTestAgent() *xpc.Dictionary {
	return jsonTestDict(
		"EnableTransactions", xpc.Bool(true),
		"EnvironmentVariables", jsonTestDict(
			"EXAMPLE_HOME", xpc.String("/var/lib/example & co"),
			"LANG", xpc.String("en_US.UTF-8")),
		"ExampleBig", xpc.Uint64(math.MaxUint64),
		"ExampleInstalled", xpc.DateOf(time.Date(2024, 3, 1, 12, 30, 45, 0, time.UTC)),
		"ExampleLimit", xpc.Double(0.75),
		"ExampleSalt", xpc.Data{0xde, 0xad, 0xbe, 0xef},
		"ExitTimeOut", xpc.Int64(20),
		"KeepAlive", jsonTestDict(
			"Crashed", xpc.Bool(true),
			"PathState", jsonTestDict("/var/run/example.enabled", xpc.Bool(true)),
			"SuccessfulExit", xpc.Bool(false)),
		"Label", xpc.String("com.example.agent"),
		"MachServices", jsonTestDict(
			"com.example.agent.status", jsonTestDict(
				"HideUntilCheckIn", xpc.Bool(false),
				"ResetAtClose", xpc.Bool(true)),
			"com.example.agent.xpc", xpc.Bool(true)),
		"Nice", xpc.Int64(-5),
		"ProcessType", xpc.String("Background"),
		"ProgramArguments", xpc.Array{
			xpc.String("/usr/local/libexec/example-agent"), xpc.String("--log-level"), xpc.String("info")},
		"RunAtLoad", xpc.Bool(false),
		"SoftResourceLimits", jsonTestDict("NumberOfFiles", xpc.Int64(4096)),
		"StandardErrorPath", xpc.String("/var/log/example/agent.err.log"),
		"StandardOutPath", xpc.String("/var/log/example/agent.out.log"),
		"StartCalendarInterval", xpc.Array{
			jsonTestDict("Hour", xpc.Int64(3), "Minute", xpc.Int64(15)),
			jsonTestDict("Hour", xpc.Int64(12), "Minute", xpc.Int64(0), "Weekday", xpc.Int64(0))},
		"ThrottleInterval", xpc.Int64(30),
		"WorkingDirectory", xpc.String("/var/lib/example"),
	)
}

func TestFromPlistLaunchd(t *testing.T) {
	want := plistTestAgent()
	for _, tc := range []struct {
		file   string
		format xpc.PlistFormat
	}{
		{"com.example.agent.plist", xpc.PlistXML},
		{"com.example.agent.bplist", xpc.PlistBinary},
	} {
		obj, format, err := xpc.FromPlist(plistTestFile(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if format != tc.format {
			t.Errorf("%s: format %v, want %v", tc.file, format, tc.format)
		}
		if !xpc.Equal(obj, want) {
			t.Errorf("%s:\n%s\nwant\n%s", tc.file, xpc.Format(obj), xpc.Format(want))
		}
		// Keys come out sorted, whatever the file's order.
		keys := obj.(*xpc.Dictionary).Keys()
		if !slices.IsSorted(keys) {
			t.Errorf("%s: keys not sorted: %v", tc.file, keys)
		}
		// The launchd dictionary is encodable on the wire as it is.
		if _, err := xpc.Encode(obj); err != nil {
			t.Errorf("%s: %v", tc.file, err)
		}
	}
}

// TestFromPlistApple reads a binary plist written by Apple's own code: the
// platformSpecificOptions value inside the captured CoreDevice message.
func TestFromPlistApple(t *testing.T) {
	b, err := base64.StdEncoding.DecodeString("YnBsaXN0MDDQCAAAAAAAAAEBAAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAJ")
	if err != nil {
		t.Fatal(err)
	}
	obj, format, err := xpc.FromPlist(b)
	if err != nil {
		t.Fatal(err)
	}
	if format != xpc.PlistBinary || !xpc.Equal(obj, &xpc.Dictionary{}) {
		t.Errorf("got %v %s", format, xpc.Format(obj))
	}
}

func TestPlistRoundTrip(t *testing.T) {
	u, _ := xpc.ParseUUID("62419FC1-5ABF-4D96-BCA8-7A5F6F9A69EE")
	when := xpc.DateOf(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	in := jsonTestDict(
		"z", xpc.String("last"),
		"a", xpc.Array{xpc.Int64(-1), xpc.Int64(math.MinInt64), xpc.Int64(math.MaxInt64),
			xpc.Uint64(math.MaxUint64), xpc.Uint64(1 << 63)},
		"d", xpc.Double(-2.5),
		"nan", xpc.Double(math.Inf(-1)),
		"t", xpc.Bool(true),
		"bytes", xpc.Data{0, 1, 2},
		"empty", xpc.Data{},
		"when", when,
		"nested", jsonTestDict("k", jsonTestDict(), "l", xpc.Array{}),
		"unicode", xpc.String("é😀 \t\r\n"),
		"", xpc.String("empty key"),
		"uuid", u,
		"small", xpc.Uint64(7),
	)
	// What comes back: UUID as its string, Uint64 that fits as Int64.
	want := jsonTestDict()
	for k, v := range in.All() {
		want.Set(k, v)
	}
	want.Set("uuid", xpc.String(u.String()))
	want.Set("small", xpc.Int64(7))

	for _, format := range []xpc.PlistFormat{xpc.PlistXML, xpc.PlistBinary} {
		b, err := xpc.ToPlist(in, format)
		if err != nil {
			t.Fatalf("%v: %v", format, err)
		}
		got, gotFormat, err := xpc.FromPlist(b)
		if err != nil {
			t.Fatalf("%v: %v\n%s", format, err, b)
		}
		if gotFormat != format {
			t.Errorf("wrote %v, read %v", format, gotFormat)
		}
		if !xpc.Equal(got, want) {
			t.Errorf("%v:\n%s\nwant\n%s", format, xpc.Format(got), xpc.Format(want))
		}
	}
}

func TestPlistWritesSortedKeys(t *testing.T) {
	in := jsonTestDict("b", xpc.Int64(1), "c", xpc.Int64(2), "a", xpc.Int64(3))
	b, err := xpc.ToPlist(in, xpc.PlistXML)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	ia, ib, ic := strings.Index(s, "<key>a</key>"), strings.Index(s, "<key>b</key>"), strings.Index(s, "<key>c</key>")
	if !(ia < ib && ib < ic) || ia < 0 {
		t.Errorf("keys not written sorted:\n%s", s)
	}
	if !strings.HasSuffix(s, "</plist>\n") {
		t.Errorf("XML does not end in a newline: %q", s[len(s)-10:])
	}
	// The Dictionary passed in is left as it was.
	if got := strings.Join(in.Keys(), ""); got != "bca" {
		t.Errorf("ToPlist reordered its argument: %s", got)
	}
}

func TestPlistDates(t *testing.T) {
	d := xpc.DateOf(time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC))
	for _, tc := range []struct {
		format xpc.PlistFormat
		within time.Duration
	}{
		{xpc.PlistXML, time.Second},
		{xpc.PlistBinary, time.Microsecond},
	} {
		b, err := xpc.ToPlist(d, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := xpc.FromPlist(b)
		if err != nil {
			t.Fatal(err)
		}
		diff := d.Time().Sub(got.(xpc.Date).Time()).Abs()
		if diff >= tc.within {
			t.Errorf("%v: date %v came back %v", tc.format, d.Time(), got.(xpc.Date).Time())
		}
	}
}

func TestToPlistErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		obj    xpc.Object
		format xpc.PlistFormat
		kind   error
		path   string
	}{
		{"null", jsonTestDict("a", jsonTestDict("b", xpc.Array{xpc.Int64(1), xpc.Null{}})), xpc.PlistBinary, xpc.ErrNotRepresentable, "a.b[1]"},
		{"root null", xpc.Null{}, xpc.PlistXML, xpc.ErrNotRepresentable, ""},
		{"error object", jsonTestDict("e", xpc.NewErrorObject("x")), xpc.PlistXML, xpc.ErrNotRepresentable, "e"},
		{"fd", xpc.Array{&xpc.FD{}}, xpc.PlistBinary, xpc.ErrNotRepresentable, "[0]"},
		{"shmem", jsonTestDict("m", &xpc.SharedMemory{}), xpc.PlistBinary, xpc.ErrNotRepresentable, "m"},
		{"endpoint", jsonTestDict("e", &xpc.Endpoint{}), xpc.PlistBinary, xpc.ErrNotRepresentable, "e"},
		{"nil", xpc.Array{nil}, xpc.PlistBinary, xpc.ErrNilObject, "[0]"},
		{"control char in XML", jsonTestDict("s", xpc.String("a\x01b")), xpc.PlistXML, xpc.ErrNotRepresentable, "s"},
		{"control char in XML key", jsonTestDict("a\x1b", xpc.Int64(1)), xpc.PlistXML, xpc.ErrNotRepresentable, `"a\x1b"`},
		{"NUL string", xpc.String("a\x00"), xpc.PlistBinary, xpc.ErrBadString, ""},
		{"openstep", xpc.Int64(1), xpc.PlistOpenStep, xpc.ErrNotRepresentable, ""},
		{"too deep", plistTestDeep(65), xpc.PlistBinary, xpc.ErrTooDeep, strings.Repeat("[0]", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := xpc.ToPlist(tc.obj, tc.format)
			var pe *xpc.PlistError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *PlistError", err)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %v is not %v", err, tc.kind)
			}
			if pe.Path != tc.path {
				t.Errorf("path %q, want %q (%v)", pe.Path, tc.path, err)
			}
		})
	}
	// What howett.net/plist's binary writer would get wrong is refused
	// there, and XML carries it.
	crcA, _ := hex.DecodeString("adc8875fb9dfb7b0")
	crcB, _ := hex.DecodeString("9af75a0798df5aa3") // same CRC-32 as crcA
	for name, obj := range map[string]xpc.Object{
		"NaN":         jsonTestDict("n", xpc.Double(math.Float64frombits(0x7FF8000000000000))),
		"signed zero": xpc.Array{xpc.Double(0), xpc.Double(math.Copysign(0, -1))},
		"CRC-32":      jsonTestDict("a", xpc.Data(crcA), "b", xpc.Data(crcB)),
	} {
		if _, err := xpc.ToPlist(obj, xpc.PlistBinary); !errors.Is(err, xpc.ErrNotRepresentable) {
			t.Errorf("%s in binary: error %v, want ErrNotRepresentable", name, err)
		}
		b, err := xpc.ToPlist(obj, xpc.PlistXML)
		if err != nil {
			t.Fatalf("%s in XML: %v", name, err)
		}
		back, _, err := xpc.FromPlist(b)
		if err != nil || !xpc.Equal(back, obj) {
			t.Errorf("%s in XML: got %v %v", name, back, err)
		}
	}
	// The same data twice, and -0.0 alone, are fine in binary.
	for _, obj := range []xpc.Object{
		xpc.Array{xpc.Data(crcA), xpc.Data(crcA)},
		xpc.Array{xpc.Double(math.Copysign(0, -1)), xpc.Double(math.Copysign(0, -1))},
	} {
		b, err := xpc.ToPlist(obj, xpc.PlistBinary)
		if err != nil {
			t.Fatal(err)
		}
		if back, _, err := xpc.FromPlist(b); err != nil || !xpc.Equal(back, obj) {
			t.Errorf("binary: %v came back %v %v", obj, back, err)
		}
	}
	// A control character is fine in binary.
	if _, err := xpc.ToPlist(xpc.String("a\x01b"), xpc.PlistBinary); err != nil {
		t.Errorf("binary with a control character: %v", err)
	}
}

func plistTestDeep(n int) xpc.Object {
	var o xpc.Object = xpc.Int64(1)
	for range n {
		o = xpc.Array{o}
	}
	return o
}

func TestFromPlistText(t *testing.T) {
	obj, format, err := xpc.FromPlist([]byte(`{ Label = "com.example"; Args = (a, "b c"); N = 5; }`))
	if err != nil {
		t.Fatal(err)
	}
	want := jsonTestDict("Args", xpc.Array{xpc.String("a"), xpc.String("b c")},
		"Label", xpc.String("com.example"), "N", xpc.String("5"))
	if format != xpc.PlistOpenStep || !xpc.Equal(obj, want) {
		t.Errorf("OpenStep: %v %s", format, xpc.Format(obj))
	}
	obj, format, err = xpc.FromPlist([]byte(`{ N = <*I5>; B = <*BY>; R = <*R1.5>; }`))
	if err != nil {
		t.Fatal(err)
	}
	want = jsonTestDict("B", xpc.Bool(true), "N", xpc.Int64(5), "R", xpc.Double(1.5))
	if format != xpc.PlistGNUStep || !xpc.Equal(obj, want) {
		t.Errorf("GNUstep: %v %s", format, xpc.Format(obj))
	}
}

func TestFromPlistUID(t *testing.T) {
	b, err := plist.Marshal(map[string]any{"root": plist.UID(7)}, plist.BinaryFormat)
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := xpc.FromPlist(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := jsonTestDict("root", jsonTestDict("CF$UID", xpc.Int64(7))); !xpc.Equal(obj, want) {
		t.Errorf("got %s", xpc.Format(obj))
	}
}

// plistTestBad are inputs FromPlist must refuse, each with a *PlistError.
func plistTestBad(t testing.TB) map[string][]byte {
	bin := plistTestFile(t, "com.example.agent.bplist")
	nul, err := plist.Marshal(map[string]any{"k": "a\x00b"}, plist.BinaryFormat)
	if err != nil {
		t.Fatal(err)
	}
	nulKey, err := plist.Marshal(map[string]any{"a\x00": "x"}, plist.BinaryFormat)
	if err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("<array>", 70) + strings.Repeat("</array>", 70)
	return map[string][]byte{
		"empty":             {},
		"blank":             []byte(" \n\t"),
		"truncated binary":  bin[:len(bin)/2],
		"binary no trailer": bin[:len(bin)-1],
		"binary header":     []byte("bplist00"),
		"bad xml":           []byte(`<?xml version="1.0"?><plist><dict><key>a</key><string>b</dict></plist>`),
		"bad integer":       []byte(`<plist><integer>x</integer></plist>`),
		"bad date":          []byte(`<plist><date>yesterday</date></plist>`),
		"bad data":          []byte(`<plist><data>!!!</data></plist>`),
		"empty plist":       []byte(`<plist></plist>`),
		"unterminated text": []byte(`{ a = b;`),
		"NUL string":        nul,
		"NUL key":           nulKey,
		"too deep":          []byte(`<plist>` + deep + `</plist>`),
	}
}

func TestFromPlistErrors(t *testing.T) {
	for name, in := range plistTestBad(t) {
		obj, _, err := xpc.FromPlist(in)
		if err == nil {
			t.Errorf("%s: no error, got %s", name, xpc.Format(obj))
			continue
		}
		var pe *xpc.PlistError
		if !errors.As(err, &pe) {
			t.Errorf("%s: error %T %v is not a *PlistError", name, err, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: message spans lines: %q", name, err)
		}
	}
	_, _, err := xpc.FromPlist(plistTestBad(t)["NUL string"])
	if !errors.Is(err, xpc.ErrNotRepresentable) || !strings.Contains(err.Error(), "k:") {
		t.Errorf("NUL string: %v", err)
	}
	_, _, err = xpc.FromPlist([]byte("bplist00"))
	if !errors.Is(err, xpc.ErrBadPlist) {
		t.Errorf("binary header: %v is not ErrBadPlist", err)
	}
}

// TestFromPlistTruncations cuts the binary agent plist at every length and
// flips each byte: no input may panic.
func TestFromPlistTruncations(t *testing.T) {
	bin := plistTestFile(t, "com.example.agent.bplist")
	for n := range len(bin) {
		if obj, _, err := xpc.FromPlist(bin[:n]); err == nil && n > len("bplist") {
			t.Errorf("prefix of %d bytes parsed: %s", n, xpc.Format(obj))
		}
	}
	for i := range bin {
		b := bytes.Clone(bin)
		b[i] ^= 0xff
		_, _, _ = xpc.FromPlist(b)
	}
}

// Binary plists assembled by hand, for the shapes no writer produces.

// plistTestBinary assembles a binary plist: objs[i] is object i's bytes,
// marker first, holding references refSize bytes wide. Offsets are as wide
// as the file needs.
func plistTestBinary(objs [][]byte, refSize, top int) []byte {
	b := []byte("bplist00")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = len(b)
		b = append(b, o...)
	}
	table := len(b)
	offSize := 1
	for table >= 1<<(8*offSize) {
		offSize *= 2
	}
	for _, o := range offs {
		b = plistTestBE(b, uint64(o), offSize)
	}
	b = append(b, 0, 0, 0, 0, 0, 0, byte(offSize), byte(refSize))
	b = binary.BigEndian.AppendUint64(b, uint64(len(objs)))
	b = binary.BigEndian.AppendUint64(b, uint64(top))
	return binary.BigEndian.AppendUint64(b, uint64(table))
}

func plistTestBE(b []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// plistTestContainer is a container object: marker's high nibble, the count
// (in the marker or, from 15, in an integer object after it), then refs.
func plistTestContainer(marker byte, count, refSize int, refs ...int) []byte {
	var b []byte
	if count < 15 {
		b = append(b, marker|byte(count))
	} else {
		b = append(b, marker|0xF, 0x12)
		b = plistTestBE(b, uint64(count), 4)
	}
	for _, r := range refs {
		b = plistTestBE(b, uint64(r), refSize)
	}
	return b
}

func plistTestArray(refSize int, refs ...int) []byte {
	return plistTestContainer(0xA0, len(refs), refSize, refs...)
}

// plistTestBomb is levels nested arrays, each holding fanout references to
// the next, the last to an integer: tiny, but a tree of fanout^levels.
func plistTestBomb(levels, fanout int) []byte {
	var objs [][]byte
	for i := range levels {
		objs = append(objs, plistTestArray(1, slices.Repeat([]int{i + 1}, fanout)...))
	}
	objs = append(objs, []byte{0x10, 7})
	return plistTestBinary(objs, 1, 0)
}

// plistTestDictBomb is the same with dictionaries: each has fanout keys,
// shared, and every value is the next dictionary.
func plistTestDictBomb(levels, fanout int) []byte {
	var objs [][]byte
	keys := make([]int, fanout)
	for i := range keys {
		keys[i] = levels + 1 + i
	}
	for i := range levels {
		refs := append(slices.Clone(keys), slices.Repeat([]int{i + 1}, fanout)...)
		objs = append(objs, plistTestContainer(0xD0, fanout, 1, refs...))
	}
	objs = append(objs, []byte{0x09}) // true
	for i := range fanout {
		objs = append(objs, []byte{0x51, 'a' + byte(i)})
	}
	return plistTestBinary(objs, 1, 0)
}

// plistTestChain is depth arrays, each holding the next, around an integer.
func plistTestChain(depth int) []byte {
	var objs [][]byte
	for i := range depth {
		objs = append(objs, plistTestArray(2, i+1))
	}
	objs = append(objs, []byte{0x10, 7})
	return plistTestBinary(objs, 2, 0)
}

// plistTestAliased is an array of n references to n different objects that
// all sit at one offset: an array of k references to a string.
func plistTestAliased(n, k int) []byte {
	refs := make([]int, n)
	for i := range refs {
		refs[i] = 1 + i
	}
	objs := [][]byte{plistTestContainer(0xA0, n, 2, refs...)}
	objs = append(objs, plistTestContainer(0xA0, k, 2, slices.Repeat([]int{n + 1}, k)...))
	for range n - 1 {
		objs = append(objs, []byte{0x10, 0}) // moved below
	}
	objs = append(objs, []byte{0x51, 'x'})
	b := plistTestBinary(objs, 2, 0)
	// Point the offsets of objects 2 to n at object 1.
	size := int(b[len(b)-32+6])
	table := int(binary.BigEndian.Uint64(b[len(b)-8:]))
	one := b[table+size : table+2*size]
	for i := 2; i <= n; i++ {
		copy(b[table+i*size:], one)
	}
	return b
}

// plistTestHostile are binary plists whose objects share or contain one
// another, or lie about where they are, each refused with the error kind
// given.
func plistTestHostile() map[string]struct {
	data []byte
	kind error
} {
	type hostile = struct {
		data []byte
		kind error
	}
	leaf := []byte{0x10, 7}
	m := map[string]hostile{
		"bomb 7x10":         {plistTestBomb(7, 10), xpc.ErrTooLarge},
		"bomb 12x10":        {plistTestBomb(12, 10), xpc.ErrTooLarge},
		"bomb 40x2":         {plistTestBomb(40, 2), xpc.ErrTooLarge},
		"bomb 6x10":         {plistTestBomb(6, 10), xpc.ErrTooLarge}, // 1,111,111 values
		"dict bomb 12x10":   {plistTestDictBomb(12, 10), xpc.ErrTooLarge},
		"aliased offsets":   {plistTestAliased(300, 5000), xpc.ErrTooLarge},
		"self":              {plistTestBinary([][]byte{plistTestArray(1, 1, 0), leaf}, 1, 0), xpc.ErrBadPlist},
		"cycle":             {plistTestBinary([][]byte{plistTestArray(1, 1), plistTestArray(1, 2, 0), leaf}, 1, 0), xpc.ErrBadPlist},
		"dict cycle":        {plistTestBinary([][]byte{plistTestContainer(0xD0, 1, 1, 1, 0), {0x51, 'k'}}, 1, 0), xpc.ErrBadPlist},
		"set cycle":         {plistTestBinary([][]byte{plistTestContainer(0xC0, 1, 1, 0)}, 1, 0), xpc.ErrBadPlist},
		"deep":              {plistTestChain(600), xpc.ErrTooDeep},
		"deep 100":          {plistTestChain(100), xpc.ErrTooDeep},
		"ref out of range":  {plistTestBinary([][]byte{plistTestArray(1, 1, 9), leaf}, 1, 0), xpc.ErrBadPlist},
		"refs past table":   {plistTestBinary([][]byte{plistTestContainer(0xA0, 200, 1, 1), leaf}, 1, 0), xpc.ErrBadPlist},
		"count of 32 bytes": {plistTestBinary([][]byte{{0xAF, 0x15, 1}, leaf}, 1, 0), xpc.ErrBadPlist},
		"count past end":    {plistTestBinary([][]byte{leaf, {0xAF, 0x13}}, 1, 1), xpc.ErrBadPlist},
		"huge dict":         {plistTestBinary([][]byte{append([]byte{0xDF, 0x14}, plistTestBE(plistTestBE(nil, 0, 8), 1<<63|1, 8)...), leaf}, 1, 0), xpc.ErrBadPlist},
		"huge array":        {plistTestBinary([][]byte{append([]byte{0xAF, 0x13}, plistTestBE(nil, 1<<62, 8)...), leaf}, 4, 0), xpc.ErrBadPlist},
	}
	// References of no bytes all name object 0, the only one there may be.
	zero := plistTestBinary([][]byte{append([]byte{0xAF, 0x13}, plistTestBE(nil, 1<<40, 8)...)}, 0, 0)
	m["zero-byte refs"] = hostile{zero, xpc.ErrBadPlist}
	// An offset in the table beyond the objects.
	b := plistTestBinary([][]byte{plistTestArray(1, 1), leaf}, 1, 0)
	b[len(b)-32-1] = 0xF0
	m["offset past objects"] = hostile{b, xpc.ErrBadPlist}
	return m
}

// TestFromPlistHostileBinary reads binary plists that share containers to
// expand into huge trees, contain themselves, or lie about their layout:
// each is refused before howett.net/plist builds anything. Unguarded, the
// 12-level bomb would build 10^12 values and never finish, and the zero-byte
// references would have the parser allocate 16 TB and crash the process.
func TestFromPlistHostileBinary(t *testing.T) {
	for name, tc := range plistTestHostile() {
		t.Run(name, func(t *testing.T) {
			obj, _, err := xpc.FromPlist(tc.data)
			if err == nil {
				t.Fatalf("%d bytes read as %.200s", len(tc.data), xpc.Format(obj))
			}
			var pe *xpc.PlistError
			if !errors.As(err, &pe) {
				t.Errorf("error %T %v is not a *PlistError", err, err)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %v is not %v", err, tc.kind)
			}
			if tc.kind == xpc.ErrTooLarge && !errors.Is(err, xpc.ErrBadPlist) {
				t.Errorf("error %v is not ErrBadPlist", err)
			}
		})
	}
	_, _, err := xpc.FromPlist(plistTestBomb(12, 10))
	if want := "xpc: plist: malformed property list: too large: binary plist expands to more than 1048576 objects"; err == nil || err.Error() != want {
		t.Errorf("bomb: %v\nwant %s", err, want)
	}
}

// TestFromPlistSharedBinary reads binary plists that share objects within
// the limit, as writers do.
func TestFromPlistSharedBinary(t *testing.T) {
	// Shared containers, expanding to 111,111 values.
	obj, format, err := xpc.FromPlist(plistTestBomb(5, 10))
	if err != nil || format != xpc.PlistBinary {
		t.Fatal(format, err)
	}
	var want xpc.Object = xpc.Int64(7)
	for range 5 {
		a := make(xpc.Array, 10)
		for i := range a {
			a[i] = want
		}
		want = a
	}
	if !xpc.Equal(obj, want) {
		t.Errorf("5x10 bomb read wrong")
	}
	obj, _, err = xpc.FromPlist(plistTestDictBomb(3, 10))
	if err != nil {
		t.Fatal(err)
	}
	if d := obj.(*xpc.Dictionary); d.Len() != 10 || d.Get("j").(*xpc.Dictionary).Get("a").(*xpc.Dictionary).Get("e") != xpc.Bool(true) {
		t.Errorf("3x10 dictionary bomb read wrong: %.200s", xpc.Format(obj))
	}

	// A launchd job of many repeated strings, which the writer stores once
	// each and refers to many times.
	job := jsonTestDict("Label", xpc.String("com.example.many"))
	args := make(xpc.Array, 5000)
	for i := range args {
		args[i] = xpc.String([]string{"--verbose", "--log-level", "info"}[i%3])
	}
	job.Set("ProgramArguments", args)
	services := jsonTestDict()
	env := jsonTestDict()
	for i := range 3000 {
		services.Set(fmt.Sprintf("com.example.many.%d", i), jsonTestDict(
			"HideUntilCheckIn", xpc.Bool(true), "ResetAtClose", xpc.Bool(false)))
		env.Set(fmt.Sprintf("VAR_%d", i), xpc.String("/usr/local/share/example"))
	}
	job.Set("MachServices", services)
	job.Set("EnvironmentVariables", env)
	b, err := xpc.ToPlist(job, xpc.PlistBinary)
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.BigEndian.Uint64(b[len(b)-24:]); n > 20000 {
		t.Fatalf("the writer stored %d objects: strings not shared", n)
	}
	obj, _, err = xpc.FromPlist(b)
	if err != nil {
		t.Fatal(err)
	}
	if !xpc.Equal(obj, job) {
		t.Errorf("launchd job with shared strings read back different")
	}

	// More references than the fixed limit, to one string, is still not
	// more values than bytes: allowed.
	const n = 1<<20 + 1000
	refs := slices.Repeat([]int{1}, n)
	big := plistTestBinary([][]byte{plistTestContainer(0xA0, n, 1, refs...), {0x51, 'x'}}, 1, 0)
	obj, _, err = xpc.FromPlist(big)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := obj.(xpc.Array); !ok || len(a) != n || a[n-1] != xpc.String("x") {
		t.Errorf("array of %d shared strings read wrong", n)
	}
}

// TestFromPlistBinaryLayouts reads binary plists laid out as no common
// writer does but howett.net/plist accepts: the guard must too.
func TestFromPlistBinaryLayouts(t *testing.T) {
	in := jsonTestDict("a", xpc.Array{xpc.String("x"), xpc.String("x"), xpc.Int64(1)}, "b", xpc.String("x"))
	for _, refSize := range []int{3, 5, 7} {
		b := plistTestBinary([][]byte{
			plistTestContainer(0xD0, 2, refSize, 1, 2, 3, 4),
			{0x51, 'a'}, {0x51, 'b'},
			plistTestContainer(0xA0, 3, refSize, 4, 4, 5),
			{0x51, 'x'}, {0x10, 1},
		}, refSize, 0)
		// Widen the offsets from 1 byte to 3.
		trailer := bytes.Clone(b[len(b)-32:])
		table := binary.BigEndian.Uint64(trailer[24:])
		var wide []byte
		for _, o := range b[table : len(b)-32] {
			wide = plistTestBE(wide, uint64(o), 3)
		}
		b = append(append(b[:table:table], wide...), trailer...)
		b[len(b)-32+6] = 3
		obj, _, err := xpc.FromPlist(b)
		if err != nil {
			t.Fatalf("references of %d bytes: %v", refSize, err)
		}
		if !xpc.Equal(obj, in) {
			t.Errorf("references of %d bytes: %s", refSize, xpc.Format(obj))
		}
	}
	// A count of 15 or more follows the marker, as an integer object.
	b := plistTestBinary([][]byte{plistTestContainer(0xA0, 20, 1, slices.Repeat([]int{1}, 20)...), {0x10, 3}}, 1, 0)
	if obj, _, err := xpc.FromPlist(b); err != nil || len(obj.(xpc.Array)) != 20 {
		t.Errorf("array of 20: %v %v", obj, err)
	}
	// Nesting to the depth the conversion allows.
	if _, _, err := xpc.FromPlist(plistTestChain(xpc.DefaultMaxDepth)); err != nil {
		t.Errorf("%d levels: %v", xpc.DefaultMaxDepth, err)
	}
}

// TestFromPlistBinaryTrailers spoils each byte of binary plists' trailers
// and offset tables, and cuts them short: never a panic, never a hang,
// always a *PlistError, and ErrBadPlist where the layout is broken.
func TestFromPlistBinaryTrailers(t *testing.T) {
	files := map[string][]byte{
		"agent": plistTestFile(t, "com.example.agent.bplist"),
		"bomb":  plistTestBomb(12, 10),
		"dict":  plistTestDictBomb(12, 10),
	}
	for name, bin := range files {
		for i := len(bin) - 40; i < len(bin); i++ {
			for _, v := range []byte{0, 1, 2, 3, 8, 16, 0x7f, 0x80, 0xfe, 0xff} {
				b := bytes.Clone(bin)
				b[i] = v
				if _, _, err := xpc.FromPlist(b); err != nil {
					var pe *xpc.PlistError
					if !errors.As(err, &pe) {
						t.Errorf("%s[%d]=%#x: error %T %v", name, i, v, err, err)
					}
				}
			}
		}
		for n := range len(bin) {
			if _, _, err := xpc.FromPlist(bin[:n]); !errors.Is(err, xpc.ErrBadPlist) && n > len("bplist") {
				t.Errorf("%s cut to %d bytes: %v", name, n, err)
			}
		}
		for i := range bin {
			b := bytes.Clone(bin)
			b[i] ^= 0xff
			_, _, _ = xpc.FromPlist(b)
		}
	}
	// The trailer's fields out of range, one at a time.
	base := plistTestBinary([][]byte{plistTestArray(1, 1), {0x10, 7}}, 1, 0)
	for _, tc := range []struct {
		name  string
		field int // offset in the trailer
		size  int
		v     uint64
	}{
		{"offset size 0", 6, 1, 0},
		{"offset size 9", 6, 1, 9},
		{"offset size 255", 6, 1, 255},
		{"ref size 8", 7, 1, 8},
		{"ref size 16", 7, 1, 16},
		{"ref size 255", 7, 1, 255},
		{"no objects", 8, 8, 0},
		{"objects 2^63", 8, 8, 1 << 63},
		{"objects max", 8, 8, math.MaxUint64},
		{"top out of range", 16, 8, 2},
		{"top max", 16, 8, math.MaxUint64},
		{"table in header", 24, 8, 3},
		{"table at trailer", 24, 8, uint64(len(base) - 32)},
		{"table max", 24, 8, math.MaxUint64},
	} {
		b := bytes.Clone(base)
		copy(b[len(b)-32+tc.field:], plistTestBE(nil, tc.v, tc.size))
		if _, _, err := xpc.FromPlist(b); !errors.Is(err, xpc.ErrBadPlist) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func FuzzFromPlist(f *testing.F) {
	f.Add(plistTestFile(f, "com.example.agent.plist"))
	f.Add(plistTestFile(f, "com.example.agent.bplist"))
	f.Add([]byte(`{ a = (1, <*I5>, <0a0b>); }`))
	for _, b := range plistTestBad(f) {
		f.Add(b)
	}
	for _, h := range plistTestHostile() {
		f.Add(h.data)
	}
	f.Add(plistTestBomb(3, 4))
	f.Add(plistTestDictBomb(2, 3))
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, _, err := xpc.FromPlist(data)
		if err != nil {
			var pe *xpc.PlistError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *PlistError: %v", err, err)
			}
			return
		}
		if plistTestValues(obj, 10000) > 10000 {
			// A binary plist may share its way to a million values:
			// round trips of those are slow, and no different.
			return
		}
		// Whatever reads writes back, or is refused as not representable
		// (a control character in XML, a NaN in binary), and what is
		// written reads again.
		for _, format := range []xpc.PlistFormat{xpc.PlistXML, xpc.PlistBinary} {
			b, err := xpc.ToPlist(obj, format)
			if err != nil {
				if !errors.Is(err, xpc.ErrNotRepresentable) {
					t.Fatalf("read but cannot write %v: %v\n%s", format, err, xpc.Format(obj))
				}
				continue
			}
			if _, _, err := xpc.FromPlist(b); err != nil {
				t.Fatalf("wrote %v that does not read: %v\n%s", format, err, xpc.Format(obj))
			}
		}
		if _, err := xpc.Encode(obj); err != nil {
			t.Fatalf("read but cannot encode: %v", err)
		}
	})
}

// plistTestValues counts the values in obj, stopping once past limit.
func plistTestValues(obj xpc.Object, limit int) int {
	n := 1
	switch v := obj.(type) {
	case xpc.Array:
		for _, e := range v {
			if n > limit {
				break
			}
			n += plistTestValues(e, limit-n)
		}
	case *xpc.Dictionary:
		for _, e := range v.All() {
			if n > limit {
				break
			}
			n += plistTestValues(e, limit-n)
		}
	}
	return n
}

func ExampleFromPlist() {
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>com.example.agent</string>
	<key>ProgramArguments</key>
	<array>
		<string>/usr/libexec/example-agent</string>
	</array>
	<key>KeepAlive</key>
	<true/>
</dict>
</plist>`
	obj, format, err := xpc.FromPlist([]byte(doc))
	if err != nil {
		panic(err)
	}
	fmt.Println(format)
	fmt.Println(xpc.Format(obj))
	// Output:
	// xml
	// <dictionary> { count = 3, contents =
	// 	"KeepAlive" => <bool: true>
	// 	"Label" => <string: "com.example.agent">
	// 	"ProgramArguments" => <array> { count = 1, contents =
	// 		0: <string: "/usr/libexec/example-agent">
	// 	}
	// }
}

func ExampleToPlist() {
	d := &xpc.Dictionary{}
	d.Set("Label", xpc.String("com.example.agent"))
	d.Set("RunAtLoad", xpc.Bool(true))
	b, err := xpc.ToPlist(d, xpc.PlistXML)
	if err != nil {
		panic(err)
	}
	os.Stdout.Write(b)

	d.Set("Socket", xpc.Null{})
	_, err = xpc.ToPlist(d, xpc.PlistXML)
	fmt.Println(err)
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
	// <plist version="1.0">
	// 	<dict>
	// 		<key>Label</key>
	// 		<string>com.example.agent</string>
	// 		<key>RunAtLoad</key>
	// 		<true/>
	// 	</dict>
	// </plist>
	// xpc: plist: Socket: not representable: null has no property-list form
}

// Deep nesting in XML or text plists is refused before the parser, whose
// recursion would otherwise overflow the stack (a fatal error).
func TestFromPlistDeepText(t *testing.T) {
	deepXML := `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0">` +
		strings.Repeat("<array>", 2_000_000) + strings.Repeat("</array>", 2_000_000) + `</plist>`
	if _, _, err := xpc.FromPlist([]byte(deepXML)); !errors.Is(err, xpc.ErrTooDeep) || !errors.Is(err, xpc.ErrBadPlist) {
		t.Fatalf("deep XML: %v", err)
	}
	if _, _, err := xpc.FromPlist([]byte(strings.Repeat("(", 2_000_000))); !errors.Is(err, xpc.ErrTooDeep) {
		t.Fatalf("deep text: %v", err)
	}
	ok := `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0">` +
		strings.Repeat("<array>", 50) + "<dict/><array/>" + strings.Repeat("</array>", 50) + `</plist>`
	if _, _, err := xpc.FromPlist([]byte(ok)); err != nil {
		t.Fatalf("50 levels: %v", err)
	}
}
