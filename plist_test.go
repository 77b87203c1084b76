package xpc_test

import (
	"bytes"
	"encoding/base64"
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
		{"NUL string", xpc.String("a\x00"), xpc.PlistBinary, xpc.ErrInvalidString, ""},
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
		"NaN":         jsonTestDict("n", xpc.Double(math.NaN())),
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

func FuzzFromPlist(f *testing.F) {
	f.Add(plistTestFile(f, "com.example.agent.plist"))
	f.Add(plistTestFile(f, "com.example.agent.bplist"))
	f.Add([]byte(`{ a = (1, <*I5>, <0a0b>); }`))
	for _, b := range plistTestBad(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, _, err := xpc.FromPlist(data)
		if err != nil {
			var pe *xpc.PlistError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *PlistError: %v", err, err)
			}
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
