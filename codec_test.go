package xpc

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// le builds little-endian test bytes from u32 words and raw byte strings.
func le(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		case uint32:
			b = binary.LittleEndian.AppendUint32(b, v)
		case uint64:
			b = binary.LittleEndian.AppendUint64(b, v)
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		default:
			panic("le: bad part")
		}
	}
	return b
}

func body(parts ...any) []byte {
	return le(append([]any{MagicLocal, Version}, parts...)...)
}

// exactCases are objects and the exact bytes goxpc writes for them. They
// double as fuzz seeds.
var exactCases = []struct {
	name string
	obj  Object
	wire []byte
}{
	{"null", Null{}, body(0x1000)},
	{"true", Bool(true), body(0x2000, 1)},
	{"false", Bool(false), body(0x2000, 0)},
	{"int64", Int64(-2), body(0x3000, uint64(0xFFFFFFFFFFFFFFFE))},
	{"uint64", Uint64(math.MaxUint64), body(0x4000, uint64(math.MaxUint64))},
	{"double", Double(1.5), body(0x5000, math.Float64bits(1.5))},
	{"date", Date(1700000000123456789), body(0x7000, uint64(1700000000123456789))},
	{"data empty", Data{}, body(0x8000, 0)},
	{"data 5", Data("hello"), body(0x8000, 5, "hello\x00\x00\x00")},
	{"data 4", Data("abcd"), body(0x8000, 4, "abcd")},
	{"string empty", String(""), body(0x9000, 1, "\x00\x00\x00\x00")},
	{"string 3", String("abc"), body(0x9000, 4, "abc\x00")},
	{"string 4", String("abcd"), body(0x9000, 5, "abcd\x00\x00\x00\x00")},
	{"string utf8", String("é"), body(0x9000, 3, "é\x00\x00")},
	{"uuid", UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		body(0xA000, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10")},
	{"array empty", Array{}, body(0xE000, 4, 0)},
	{"array", Array{Int64(1), Bool(true)}, body(0xE000, 4+12+8, 2, 0x3000, uint64(1), 0x2000, 1)},
	{"dict empty", NewDictionary(0), body(0xF000, 4, 0)},
	{"dict", Dict("a", Int64(7), "bcde", String("x")),
		body(0xF000, 4+4+12+8+12, 2, "a\x00\x00\x00", 0x3000, uint64(7), "bcde\x00\x00\x00\x00", 0x9000, 2, "x\x00\x00\x00")},
	{"nested", Dict("d", Dict("n", Null{})),
		body(0xF000, 4+4+4+8+4+4, 1, "d\x00\x00\x00", 0xF000, 4+4+4, 1, "n\x00\x00\x00", 0x1000)},
	{"error", NewErrorObject("boom"),
		body(0x10000, 4+20+4+4+8, 1, "XPCErrorDescription\x00", 0x9000, 5, "boom\x00\x00\x00\x00")},
}

func TestEncodeExact(t *testing.T) {
	for _, c := range exactCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Encode(c.obj)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.wire) {
				t.Fatalf("encode:\n got %x\nwant %x", got, c.wire)
			}
			back, err := Decode(c.wire)
			if err != nil {
				t.Fatal(err)
			}
			if !Equal(back, c.obj) {
				t.Fatalf("decode: got %s, want %s", Format(back), Format(c.obj))
			}
		})
	}
}

func TestRemoteMagic(t *testing.T) {
	var e Encoder
	e.Magic = MagicRemote
	b, err := e.Encode(Int64(1))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := PeekMagic(b); m != MagicRemote {
		t.Fatalf("magic %#x", m)
	}
	if _, err := Decode(b); err != nil {
		t.Fatal(err)
	}
}

// vectorsDir is testdata/vectors: the messages captured from Apple
// devices, copied from the project's shared vectors (its README.md).
func vectorsDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "vectors"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVectorsMatchShared: the copies in testdata are the bytes of the
// shared vectors, when those are beside the checkout.
func TestVectorsMatchShared(t *testing.T) {
	shared := filepath.Join("..", "shared", "vectors")
	names, err := filepath.Glob(filepath.Join(shared, "*.bin"))
	if err != nil || len(names) == 0 {
		t.Skip("no ../shared/vectors beside the checkout")
	}
	for _, p := range names {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := readVector(t, filepath.Base(p)); !bytes.Equal(got, want) {
			t.Errorf("testdata/vectors/%s differs from %s", filepath.Base(p), p)
		}
	}
}

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorsDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectorEmptyDict(t *testing.T) {
	raw := readVector(t, "go-ios_xpc_empty_dict.bin")
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != "3668888d05c38f96b08c46cf1601c2834873b0230b0076569927da213617d668" {
		t.Fatalf("vector changed: sha256 %x", sum)
	}
	m, err := DecodeWrapped(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header != (WrapperHeader{Flags: FlagAlwaysSet, BodyLen: 20, ID: 0}) {
		t.Fatalf("header %+v", m.Header)
	}
	d, ok := m.Body.(*Dictionary)
	if !ok || d.Len() != 0 {
		t.Fatalf("body %s", Format(m.Body))
	}
	again, err := EncodeWrapped(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, raw) {
		t.Fatalf("re-encode differs:\n got %x\nwant %x", again, raw)
	}
}

func TestVectorDict(t *testing.T) {
	raw := readVector(t, "go-ios_xpc_dict.bin")
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != "6b8e55e5ca76c2f45dc600346d60bf5ca67fa02291520a5b415c2111452b3742" {
		t.Fatalf("vector changed: sha256 %x", sum)
	}
	m, err := DecodeWrapped(raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := (WrapperHeader{Flags: FlagAlwaysSet | FlagDataPresent | FlagWantsReply, BodyLen: 1052, ID: 1}); m.Header != want {
		t.Fatalf("header %+v, want %+v", m.Header, want)
	}
	d := m.Body.(*Dictionary)
	if d.Len() != 7 || d.ents[0].key != "CoreDevice.coreDeviceVersion" {
		t.Fatalf("keys %v", d.Keys())
	}
	want := Dict(
		"CoreDevice.CoreDeviceDDIProtocolVersion", Int64(0),
		"CoreDevice.action", NewDictionary(0),
		"CoreDevice.coreDeviceVersion", Dict(
			"components", Array{Uint64(348), Uint64(1), Uint64(0), Uint64(0), Uint64(0)},
			"originalComponentsCount", Int64(2),
			"stringValue", String("348.1"),
		),
		"CoreDevice.deviceIdentifier", String("A7DD28AC-2911-4549-811D-85917B9AC72F"),
		"CoreDevice.featureIdentifier", String("com.apple.coredevice.feature.launchapplication"),
		"CoreDevice.input", Dict(
			"applicationSpecifier", Dict("bundleIdentifier", Dict("_0", String("xxx.xxxxxxxxx.xxxxxxxx"))),
			"options", Dict(
				"arguments", Array{},
				"environmentVariables", Dict("TERM", String("xterm-256color")),
				"platformSpecificOptions", Data(mustB64(t, "YnBsaXN0MDDQCAAAAAAAAAEBAAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAJ")),
				"standardIOUsesPseudoterminals", Bool(true),
				"startStopped", Bool(false),
				"terminateExisting", Bool(false),
				"user", Dict("active", Bool(true)),
				"workingDirectory", Null{},
			),
			"standardIOIdentifiers", NewDictionary(0),
		),
		"CoreDevice.invocationIdentifier", String("62419FC1-5ABF-4D96-BCA8-7A5F6F9A69EE"),
	)
	if !Equal(d, want) {
		t.Fatalf("decoded:\n%s\nwant:\n%s", Format(d), Format(want))
	}
	again, err := EncodeWrapped(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, raw) {
		t.Fatalf("re-encode differs")
	}
	// A differently ordered but equal dictionary is Equal but encodes to
	// other bytes: order is kept, never invented.
	if b, _ := EncodeWrapped(RemoteMessage{Header: m.Header, Body: want}); bytes.Equal(b, raw) {
		t.Fatal("sorted keys encoded to the wire order: order is not being kept")
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64Std(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hostileCases are inputs the decoder must reject with the given kind.
var hostileCases = []struct {
	name string
	in   []byte
	kind error
	off  int
}{
	{"empty", nil, ErrTruncated, 0},
	{"bad magic", le(0x11223344, 5, 0x1000), ErrBadMagic, 0},
	{"bad version", le(MagicLocal, 4, 0x1000), ErrBadVersion, 4},
	{"no object", le(MagicLocal, 5), ErrTruncated, 8},
	{"unknown tag", body(0x6000), ErrUnknownType, 8},
	{"mach send", body(0xD000), ErrUnknownType, 8},
	{"bool 2", body(0x2000, 2), ErrBadValue, 12},
	{"short int", body(0x3000, 1), ErrTruncated, 12},
	{"data lies", body(0x8000, 0xFFFFFFF0, "ab"), ErrTruncated, 12},
	{"data padding", body(0x8000, 1, "a\x01\x00\x00"), ErrBadPadding, 17},
	{"data no padding", body(0x8000, 1, "a"), ErrTruncated, 17},
	{"string no nul", body(0x9000, 4, "abcd"), ErrBadString, 12},
	{"string zero length", body(0x9000, 0), ErrBadString, 12},
	{"string inner nul", body(0x9000, 4, "a\x00b\x00"), ErrBadString, 17},
	{"string bad utf8", body(0x9000, 3, "\xff\xfe\x00\x00"), ErrBadString, 16},
	{"string lies", body(0x9000, 0x7FFFFFFF, "ab\x00\x00"), ErrTruncated, 12},
	{"uuid short", body(0xA000, "0123"), ErrTruncated, 12},
	{"array count lies", body(0xE000, 8, 0x40000000, 0x1000), ErrBadLength, 16},
	{"array length lies", body(0xE000, 0xFFFFFFF0, 1, 0x1000), ErrTruncated, 12},
	{"array length short", body(0xE000, 4, 1, 0x1000), ErrBadLength, 16},
	{"array length unaligned", body(0xE000, 5, 0, 0), ErrBadLength, 12},
	{"array too long", body(0xE000, 12, 1, 0x1000, 0x1000), ErrBadLength, 24},
	{"array element overruns", body(0xE000, 8, 1, 0x3000, uint64(1)), ErrBadLength, 24},
	{"dict count lies", body(0xF000, 12, 0x20000000, "a\x00\x00\x00", 0x1000), ErrBadLength, 16},
	{"dict key no nul", body(0xF000, 12, 1, "abcdefgh"), ErrBadKey, 20},
	{"dict key bad utf8", body(0xF000, 12, 1, "\xff\x00\x00\x00", 0x1000), ErrBadKey, 20},
	{"dict key padding", body(0xF000, 12, 1, "a\x00\x07\x00", 0x1000), ErrBadPadding, 22},
	{"dict duplicate", body(0xF000, 20, 2, "a\x00\x00\x00", 0x1000, "a\x00\x00\x00", 0x1000), ErrDuplicateKey, 28},
	{"dict short", body(0xF000, 12, 1), ErrTruncated, 12},
	{"fd without fds", body(0xB000), ErrAttachments, 8},
	{"shmem without fds", body(0xC000), ErrAttachments, 8},
	{"trailing", body(0x1000, 0), ErrTrailingBytes, 12},
	{"remote wrapper as body", le(WrapperMagic, 1, uint64(0), uint64(0)), ErrBadMagic, 0},
}

func TestDecodeHostile(t *testing.T) {
	for _, c := range hostileCases {
		t.Run(c.name, func(t *testing.T) {
			obj, err := Decode(c.in)
			if err == nil {
				t.Fatalf("decoded %s", Format(obj))
			}
			if !errors.Is(err, c.kind) {
				t.Fatalf("error %v, want kind %v", err, c.kind)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			if de.Offset != c.off {
				t.Fatalf("offset %d, want %d (%v)", de.Offset, c.off, err)
			}
			if !strings.Contains(err.Error(), "offset") {
				t.Fatalf("message does not name the offset: %v", err)
			}
		})
	}
}

func TestDecodeDepthLimit(t *testing.T) {
	// 100 nested arrays, each holding the next.
	var inner []byte = le(0x1000)
	for range 100 {
		inner = le(0xE000, 8+len(inner)-4+4-4+0, 1, inner)
		// fix the length: count word (4) + element bytes
		binary.LittleEndian.PutUint32(inner[4:], uint32(4+len(inner)-12))
	}
	in := body(inner)
	_, err := Decode(in)
	if !errors.Is(err, ErrTooDeep) {
		t.Fatalf("got %v, want ErrTooDeep", err)
	}
	d := Decoder{Limits: Limits{MaxDepth: 200}}
	if _, err := d.Decode(in, nil); err != nil {
		t.Fatalf("with a higher limit: %v", err)
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	in := body(0x8000, 64, strings.Repeat("x", 64))
	d := Decoder{Limits: Limits{MaxSize: 32}}
	if _, err := d.Decode(in, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

// A length field claiming 4 GiB must not make the decoder allocate it.
func TestDecodeNoAllocationFromClaims(t *testing.T) {
	cases := [][]byte{
		body(0xE000, 0xFFFFFFFC, 0xFFFFFFFF),
		body(0xF000, 0xFFFFFFFC, 0xFFFFFFFF),
		body(0xE000, 8, 0xFFFFFFFF, 0x1000),
		body(0x8000, 0xFFFFFFFF),
		body(0x9000, 0xFFFFFFFF),
	}
	for i, in := range cases {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 10 {
			_, _ = Decode(in)
		}
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("case %d: %d bytes allocated for ten %d-byte inputs", i, n, len(in))
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	d := Dict("outer", Dict("list", Array{Int64(1), String("bad\x00nul")}))
	_, err := Encode(d)
	var ee *EncodeError
	if !errors.As(err, &ee) || !errors.Is(err, ErrBadString) || ee.Path != "outer.list[1]" {
		t.Fatalf("got %v (path %q)", err, pathOf(ee))
	}
	if _, err := Encode(Array{nil}); !errors.Is(err, ErrNilObject) {
		t.Fatalf("nil element: %v", err)
	}
	if _, err := Encode(String("\xff")); !errors.Is(err, ErrBadString) {
		t.Fatalf("bad utf8: %v", err)
	}
	bad := NewDictionary(1)
	bad.Set("k\x00", Null{})
	if _, err := Encode(bad); !errors.Is(err, ErrBadString) {
		t.Fatalf("bad key: %v", err)
	}
	// A NUL after a non-ASCII rune is still a NUL: C peers would read
	// the string, or the key, cut short at it.
	if _, err := Encode(String("é\x00x")); !errors.Is(err, ErrBadString) {
		t.Fatalf("NUL after non-ASCII: %v", err)
	}
	bad = NewDictionary(1)
	bad.Set("é\x00", Null{})
	if _, err := Encode(bad); !errors.Is(err, ErrBadString) {
		t.Fatalf("key with NUL after non-ASCII: %v", err)
	}
	// A dictionary that holds itself is stopped by the depth limit.
	cyc := NewDictionary(1)
	cyc.Set("self", cyc)
	if _, err := Encode(cyc); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("cycle: %v", err)
	}
	var enc Encoder
	enc.Limits.MaxSize = 16
	if _, err := enc.Encode(Data(make([]byte, 64))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("size: %v", err)
	}
}

func pathOf(e *EncodeError) string {
	if e == nil {
		return ""
	}
	return e.Path
}

func TestWrapperErrors(t *testing.T) {
	raw := readVector(t, "go-ios_xpc_dict.bin")
	if _, _, err := ParseWrapper(raw[:20]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short header: %v", err)
	}
	if _, _, err := ParseWrapper(raw[:100]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short body: %v", err)
	}
	if _, _, err := ParseWrapper(append(bytes.Clone(raw), 0, 0, 0, 0)); !errors.Is(err, ErrTrailingBytes) {
		t.Fatalf("long body: %v", err)
	}
	// A body error's offset counts from the start of the wrapper.
	bad := bytes.Clone(raw)
	bad[WrapperHeaderSize+4] = 9 // version
	_, err := DecodeWrapped(bad)
	var de *DecodeError
	if !errors.As(err, &de) || de.Offset != WrapperHeaderSize+4 || !errors.Is(err, ErrBadVersion) {
		t.Fatalf("got %v", err)
	}
	// Header-only messages are allowed.
	m, err := DecodeWrapped(AppendWrapper(nil, FlagAlwaysSet, 7, 0))
	if err != nil || m.Body != nil || m.Header.ID != 7 {
		t.Fatalf("header-only: %+v %v", m, err)
	}
}

// TestWrapperBodyMagic: a RemoteXPC message's body has the RemoteXPC magic
// in both directions. EncodeWrapped writes it; a wrapper around a local
// ("@XPC") body is refused, by ParseWrapper and DecodeWrapped alike.
func TestWrapperBodyMagic(t *testing.T) {
	obj := Dict("k", "v")
	wrapped, err := EncodeWrapped(RemoteMessage{Header: WrapperHeader{Flags: FlagAlwaysSet}, Body: obj})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := PeekMagic(wrapped[WrapperHeaderSize:]); m != MagicRemote {
		t.Fatalf("EncodeWrapped wrote body magic %#x", m)
	}
	local, _, err := AppendBody(nil, MagicLocal, obj)
	if err != nil {
		t.Fatal(err)
	}
	in := append(AppendWrapper(nil, FlagAlwaysSet, 3, len(local)), local...)
	_, _, perr := ParseWrapper(in)
	_, derr := DecodeWrapped(in)
	for name, err := range map[string]error{"ParseWrapper": perr, "DecodeWrapped": derr} {
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, ErrBadMagic) || de.Offset != WrapperHeaderSize {
			t.Errorf("%s of a wrapped local body: %v, want ErrBadMagic at offset %d", name, err, WrapperHeaderSize)
		}
	}
	// The same body with the RemoteXPC magic is fine.
	binary.LittleEndian.PutUint32(in[WrapperHeaderSize:], MagicRemote)
	if m, err := DecodeWrapped(in); err != nil || !Equal(m.Body, obj) {
		t.Errorf("wrapped remote body: %v %v", m.Body, err)
	}
}

// FuzzDecode checks that no input panics the decoder, and that whatever it
// accepts re-encodes to the same bytes and decodes to an equal value.
func FuzzDecode(f *testing.F) {
	for _, c := range exactCases {
		f.Add(c.wire)
	}
	for _, c := range hostileCases {
		f.Add(c.in)
	}
	for _, name := range []string{"go-ios_xpc_dict.bin", "go-ios_xpc_empty_dict.bin"} {
		raw := readVector(f, name)
		f.Add(raw[WrapperHeaderSize:])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		obj, err := Decode(in)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset > len(in) {
				t.Fatalf("error %v (%T) without a valid offset", err, err)
			}
			return
		}
		magic, _ := PeekMagic(in)
		out, _, err := AppendBody(nil, magic, obj)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encode differs:\n in %x\nout %x", in, out)
		}
		again, err := Decode(out)
		if err != nil || !Equal(again, obj) {
			t.Fatalf("decode(encode(x)) != x: %v", err)
		}
	})
}

// FuzzDecodeWrapped checks the RemoteXPC wrapper path the same way.
func FuzzDecodeWrapped(f *testing.F) {
	for _, name := range []string{"go-ios_xpc_dict.bin", "go-ios_xpc_empty_dict.bin"} {
		f.Add(readVector(f, name))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := DecodeWrapped(in)
		if err != nil {
			return
		}
		if m.Body != nil {
			if magic, _ := PeekMagic(in[WrapperHeaderSize:]); magic != MagicRemote {
				t.Fatalf("accepted a wrapped body with magic %#x", magic)
			}
		}
		out, err := EncodeWrapped(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encode differs")
		}
	})
}

func base64Std(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// TestDecodeKeysShareOneAllocation: a small body's keys and strings are
// slices of one copy of the body, not an allocation each; a large body's
// are copied one by one (they must not keep the whole body alive).
func TestDecodeKeysShareOneAllocation(t *testing.T) {
	d := NewDictionary(8)
	for i := range 8 {
		d.Set(fmt.Sprintf("key-%d", i), Bool(true))
	}
	b, err := Encode(d)
	if err != nil {
		t.Fatal(err)
	}
	// The body as a string, the dictionary, its entries.
	if n := testing.AllocsPerRun(100, func() { Decode(b) }); n > 3 {
		t.Errorf("%v allocations to decode 8 keys, want at most 3", n)
	}
	got, err := Decode(b)
	if err != nil || !Equal(got, d) {
		t.Fatalf("decoded %v, %v", got, err)
	}

	big := Dict("pad", strings.Repeat("x", oneStringMax), "k", "v")
	bb, err := Encode(big)
	if err != nil {
		t.Fatal(err)
	}
	got, err = Decode(bb)
	if err != nil || !Equal(got, big) {
		t.Fatalf("large body decoded %v, %v", got, err)
	}
}
