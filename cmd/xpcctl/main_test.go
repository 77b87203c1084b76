package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
)

// result is what one run of xpcctl gave.
type result struct {
	code   int
	stdout string
	stderr string
}

func runCmd(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, bytes.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// vectorPath is the path of the repository's testdata/vectors/name.
func vectorPath(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", "testdata", "vectors", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

var vectorNames = []string{"go-ios_xpc_empty_dict.bin", "go-ios_xpc_dict.bin"}

func TestDecodeVectors(t *testing.T) {
	for _, name := range vectorNames {
		path := vectorPath(t, name)
		r := runCmd(t, nil, "decode", path)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: exit %d, stderr %q", name, r.code, r.stderr)
		}
		first, rest, _ := strings.Cut(r.stdout, "\n")
		if !strings.HasPrefix(first, "RemoteXPC message id=") {
			t.Errorf("%s: first line %q", name, first)
		}
		if !strings.HasPrefix(rest, "<dictionary> { count = ") {
			t.Errorf("%s: body printed as %q", name, rest)
		}
	}
	r := runCmd(t, nil, "decode", vectorPath(t, "go-ios_xpc_dict.bin"))
	for _, want := range []string{
		"RemoteXPC message id=1 flags=0x10101 (always-set|data|wants-reply) body=1052 bytes\n",
		`"CoreDevice.deviceIdentifier" => <string: "A7DD28AC-2911-4549-811D-85917B9AC72F">`,
		`"workingDirectory" => <null>`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestDecodeJSONEncodeRoundTrip: decode --json then encode --wrap gives back
// the captured bytes, through stdin and through a file.
func TestDecodeJSONEncodeRoundTrip(t *testing.T) {
	for _, name := range vectorNames {
		path := vectorPath(t, name)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dec := runCmd(t, raw, "decode", "--json", "-")
		if dec.code != 0 {
			t.Fatalf("%s: decode exit %d: %s", name, dec.code, dec.stderr)
		}
		if !strings.HasPrefix(dec.stdout, "{\n  \"flags\": ") || !strings.HasSuffix(dec.stdout, "}\n") {
			t.Errorf("%s: JSON not indented as expected:\n%s", name, dec.stdout)
		}
		enc := runCmd(t, []byte(dec.stdout), "encode", "--wrap")
		if enc.code != 0 {
			t.Fatalf("%s: encode exit %d: %s", name, enc.code, enc.stderr)
		}
		if enc.stdout != string(raw) {
			t.Errorf("%s: round trip changed the bytes", name)
		}
		jsonFile := filepath.Join(t.TempDir(), "msg.json")
		if err := os.WriteFile(jsonFile, []byte(dec.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		if enc := runCmd(t, nil, "encode", jsonFile, "--wrap"); enc.code != 0 || enc.stdout != string(raw) {
			t.Errorf("%s: encode FILE --wrap: exit %d %s", name, enc.code, enc.stderr)
		}
	}
}

func TestDecodeBody(t *testing.T) {
	raw, err := os.ReadFile(vectorPath(t, "go-ios_xpc_dict.bin"))
	if err != nil {
		t.Fatal(err)
	}
	body := raw[xpc.WrapperHeaderSize:]
	r := runCmd(t, body, "decode")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "<dictionary> { count = 7,") {
		t.Fatalf("exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	// The body through JSON and encode --magic remote is the same body.
	js := runCmd(t, body, "decode", "--json")
	enc := runCmd(t, []byte(js.stdout), "encode", "--magic", "remote")
	if enc.code != 0 || enc.stdout != string(body) {
		t.Errorf("body round trip: exit %d %s", enc.code, enc.stderr)
	}
	// A local body.
	local := runCmd(t, []byte(`{"dictionary":{"a":{"int64":1}}}`), "encode")
	if local.code != 0 || binary.LittleEndian.Uint32([]byte(local.stdout)) != xpc.MagicLocal {
		t.Fatalf("encode local: exit %d %s", local.code, local.stderr)
	}
	r = runCmd(t, []byte(local.stdout), "decode")
	if want := "<dictionary> { count = 1, contents =\n\t\"a\" => <int64: 1>\n}\n"; r.stdout != want {
		t.Errorf("decode local body: %q, want %q", r.stdout, want)
	}
}

func TestDecodeMalformed(t *testing.T) {
	raw, err := os.ReadFile(vectorPath(t, "go-ios_xpc_dict.bin"))
	if err != nil {
		t.Fatal(err)
	}
	lying := bytes.Clone(raw)
	binary.LittleEndian.PutUint32(lying[xpc.WrapperHeaderSize+12:], 0x500) // root dictionary's byte length
	badWrapLen := bytes.Clone(raw)
	binary.LittleEndian.PutUint64(badWrapLen[8:], 2000)
	badCount := bytes.Clone(raw)
	binary.LittleEndian.PutUint32(badCount[xpc.WrapperHeaderSize+16:], 1000)
	fdBody := []byte{0x43, 0x50, 0x58, 0x40, 5, 0, 0, 0, 0x00, 0xb0, 0, 0} // "@XPC", v5, a bare fd tag

	for _, tc := range []struct {
		name string
		in   []byte
		want string // in the message besides "offset"
	}{
		{"empty", nil, "truncated"},
		{"truncated", raw[:100], "truncated"},
		{"truncated body", raw[:len(raw)-4], "truncated"},
		{"header only part", raw[:10], "truncated"},
		{"bad magic", []byte("hello, world"), "bad magic"},
		{"lying length", lying, "offset"},
		{"wrapper length", badWrapLen, "truncated"},
		{"count", badCount, "offset"},
		{"bad version", []byte{0x43, 0x50, 0x58, 0x40, 4, 0, 0, 0, 0, 0x10, 0, 0}, "version"},
		{"trailing", append(bytes.Clone(raw), 0, 0, 0, 0), "trailing"},
		{"fd in a file", fdBody, "descriptors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, args := range [][]string{{"decode"}, {"decode", "--json"}} {
				r := runCmd(t, tc.in, args...)
				if r.code != 1 {
					t.Errorf("%v: exit %d, want 1", args, r.code)
				}
				if r.stdout != "" {
					t.Errorf("%v: stdout %q, want nothing", args, r.stdout)
				}
				lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
				if len(lines) != 1 || !strings.HasSuffix(r.stderr, "\n") {
					t.Errorf("%v: stderr is not one line: %q", args, r.stderr)
				}
				if !strings.Contains(r.stderr, "offset") || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("%v: stderr %q lacks offset or %q", args, r.stderr, tc.want)
				}
			}
		})
	}
	r := runCmd(t, nil, "decode", filepath.Join(t.TempDir(), "missing.bin"))
	if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("missing file: %+v", r)
	}
}

func TestEncode(t *testing.T) {
	val := []byte(`{"dictionary":{"b":{"string":"x"},"a":{"uint64":18446744073709551615}}}`)
	r := runCmd(t, val, "encode", "--wrap", "--flags", "0x10101", "--id", "7")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	m, err := xpc.DecodeWrapped([]byte(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Flags != 0x10101 || m.Header.ID != 7 {
		t.Errorf("header %+v", m.Header)
	}
	if keys := m.Body.(*xpc.Dictionary).Keys(); strings.Join(keys, ",") != "b,a" {
		t.Errorf("key order %v, want the JSON's b,a", keys)
	}
	// Default header for a bare value.
	r = runCmd(t, val, "encode", "--wrap")
	if m, err := xpc.DecodeWrapped([]byte(r.stdout)); err != nil || m.Header.Flags != 0x101 || m.Header.ID != 0 {
		t.Errorf("default header %+v %v", m.Header, err)
	}
	// --flags and --id override a whole message's header; decimal works.
	msg := []byte(`{"flags":1,"id":2,"body":null}`)
	r = runCmd(t, msg, "encode", "--wrap", "--id", "99")
	if m, err := xpc.DecodeWrapped([]byte(r.stdout)); err != nil || m.Header.Flags != 1 || m.Header.ID != 99 || m.Body != nil {
		t.Errorf("override: %+v %v", m, err)
	}
	if len(r.stdout) != xpc.WrapperHeaderSize {
		t.Errorf("header-only message is %d bytes", len(r.stdout))
	}
}

func TestEncodeErrors(t *testing.T) {
	val := []byte(`{"null":null}`)
	for _, tc := range []struct {
		name string
		in   []byte
		args []string
		code int
		want string
	}{
		{"bad JSON", []byte(`{"int64":`), nil, 1, "offset"},
		{"not tagged", []byte(`{"a":1}`), nil, 1, `unknown type name "a"`},
		{"bad value", []byte(`{"dictionary":{"k":{"int64":1.5}}}`), nil, 1, "k: malformed value"},
		{"fd", []byte(`{"fd":null}`), nil, 1, "cannot be made from JSON"},
		{"message without --wrap", []byte(`{"flags":1,"id":0,"body":null}`), nil, 1, "use --wrap"},
		{"bad message", []byte(`{"flags":1,"body":null}`), []string{"--wrap"}, 1, `no "id" key`},
		{"wrap local", val, []string{"--wrap", "--magic", "local"}, 2, "drop --magic local"},
		{"flags without wrap", val, []string{"--flags", "1"}, 2, "need --wrap"},
		{"bad magic", val, []string{"--magic", "other"}, 2, "want local or remote"},
		{"bad flags", val, []string{"--wrap", "--flags", "0x1_0000_0000"}, 2, "--flags"},
		{"flags too big", val, []string{"--wrap", "--flags", "4294967296"}, 2, "--flags"},
		{"octal-looking flags are decimal", val, []string{"--wrap", "--flags", "010"}, 0, ""},
		{"unknown flag", val, []string{"--nope"}, 2, "unknown flag: --nope"},
		{"two files", val, []string{"a", "b"}, 2, "too many"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, tc.in, append([]string{"encode"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tc.code, r.stderr)
			}
			if tc.code == 0 {
				return
			}
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q lacks %q", r.stderr, tc.want)
			}
			if tc.code == 1 && strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", r.stderr)
			}
		})
	}
	r := runCmd(t, val, "encode", "--wrap", "--flags", "010")
	if m, err := xpc.DecodeWrapped([]byte(r.stdout)); err != nil || m.Header.Flags != 10 {
		t.Errorf("--flags 010: %+v %v", m.Header, err)
	}
}

// TestDocs checks that the usage lists every command and that every
// command's help works, as tailscale's TestDocs does for its CLI.
func TestDocs(t *testing.T) {
	usage := runCmd(t, nil, "help")
	if usage.code != 0 {
		t.Fatalf("help: exit %d", usage.code)
	}
	for _, alias := range [][]string{{"-h"}, {"--help"}} {
		if r := runCmd(t, nil, alias...); r.code != 0 || r.stdout != usage.stdout {
			t.Errorf("%v: exit %d, output differs from 'help'", alias, r.code)
		}
	}
	for _, c := range commands {
		if c.hidden {
			if strings.Contains(usage.stdout, "\n  "+c.name+" ") {
				t.Errorf("usage lists hidden %q", c.name)
			}
		} else if !strings.Contains(usage.stdout, "\n  "+c.name+" ") {
			t.Errorf("usage does not list %q:\n%s", c.name, usage.stdout)
		}
		if c.summary == "" || c.help == "" || strings.HasSuffix(c.summary, ".") {
			t.Errorf("%s: summary %q / help %q", c.name, c.summary, c.help)
		}
		words := strings.Fields(c.name)
		for _, args := range [][]string{append(words, "-h"), append([]string{"help"}, words...)} {
			r := runCmd(t, nil, args...)
			if r.code != 0 || r.stderr != "" {
				t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, "Usage: "+c.synopsis()+"\n") {
				t.Errorf("%v: output %q", args, r.stdout)
			}
		}
	}
	for _, tc := range []struct {
		args  []string
		usage string
	}{
		{[]string{"nope"}, "xpcctl [--system|--user] <command>"}, {[]string{}, "xpcctl [--system|--user] <command>"},
		{[]string{"plist"}, "xpcctl plist <command>"}, {[]string{"plist", "nope"}, "xpcctl plist <command>"},
	} {
		r := runCmd(t, nil, tc.args...)
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "Usage:\n  "+tc.usage) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, r.code, r.stdout, r.stderr)
		}
	}
	if r := runCmd(t, nil, "help", "nope"); r.code != 2 {
		t.Errorf("help nope: exit %d", r.code)
	}
	// A misspelt command gets what it may have meant.
	for _, tc := range [][]string{{"lsit"}, {"plist", "lnit"}} {
		r := runCmd(t, nil, tc...)
		if r.code != 2 || !strings.Contains(r.stderr, "Did you mean") && !strings.Contains(r.stderr, "did you mean") {
			t.Errorf("%v: exit %d, stderr %q", tc, r.code, r.stderr)
		}
	}
}

// TestWrappedBodyMagic: a RemoteXPC message's body has the RemoteXPC magic
// both ways: encode --wrap writes it and refuses --magic local, and decode
// refuses a message whose body has the local magic.
func TestWrappedBodyMagic(t *testing.T) {
	val := []byte(`{"dictionary":{"a":{"int64":1}}}`)
	if r := runCmd(t, val, "encode", "--wrap", "--magic", "local"); r.code != 2 {
		t.Errorf("encode --wrap --magic local: exit %d, want 2", r.code)
	}
	wrapped := runCmd(t, val, "encode", "--wrap")
	if wrapped.code != 0 || binary.LittleEndian.Uint32([]byte(wrapped.stdout)[xpc.WrapperHeaderSize:]) != xpc.MagicRemote {
		t.Fatalf("encode --wrap: exit %d %s", wrapped.code, wrapped.stderr)
	}
	local := runCmd(t, val, "encode", "--magic", "local")
	if local.code != 0 {
		t.Fatalf("encode: exit %d %s", local.code, local.stderr)
	}
	in := append(xpc.AppendWrapper(nil, xpc.FlagAlwaysSet|xpc.FlagDataPresent, 0, len(local.stdout)), local.stdout...)
	for _, args := range [][]string{{"decode"}, {"decode", "--json"}} {
		r := runCmd(t, in, args...)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "bad magic") || !strings.Contains(r.stderr, "offset 24") {
			t.Errorf("%v of a wrapped local body: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

// TestDecodeJSONEncodeNaN: a message holding C's NAN and another NaN goes
// through decode --json and encode --wrap unchanged.
func TestDecodeJSONEncodeNaN(t *testing.T) {
	val := []byte(`{"array":[{"double":"NaN"},{"double":"NaN(0xfff8000000000000)"}]}`)
	raw := runCmd(t, val, "encode", "--wrap")
	if raw.code != 0 {
		t.Fatalf("encode: exit %d %s", raw.code, raw.stderr)
	}
	body := []byte(raw.stdout)[xpc.WrapperHeaderSize:]
	if got := binary.LittleEndian.Uint64(body[24:]); got != 0x7FF8000000000000 {
		t.Errorf("\"NaN\" encoded as %#x, want C's NAN", got)
	}
	dec := runCmd(t, []byte(raw.stdout), "decode", "--json")
	enc := runCmd(t, []byte(dec.stdout), "encode", "--wrap")
	if dec.code != 0 || enc.code != 0 || enc.stdout != raw.stdout {
		t.Errorf("round trip: decode exit %d, encode exit %d %s", dec.code, enc.code, enc.stderr)
	}
}

// xpcctl --version prints one line, with the Go version.
func TestVersion(t *testing.T) {
	r := runCmd(t, nil, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "xpcctl ") || !strings.Contains(r.stdout, "go1.") ||
		strings.Count(r.stdout, "\n") != 1 || r.stderr != "" {
		t.Errorf("xpcctl --version: %+v", r)
	}
}

// help -h is the usage, with its list of commands.
func TestHelpHelp(t *testing.T) {
	r := runCmd(t, nil, "help", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage:\n  xpcctl [--system|--user] <command> [arguments]") ||
		!strings.Contains(r.stdout, "  list ") {
		t.Errorf("help -h: %+v", r)
	}
}

// encode given plain JSON says which form it reads, and how to get it.
func TestEncodePlainJSON(t *testing.T) {
	r := runCmd(t, []byte(`{"a":1}`), "encode")
	if r.code != 1 || !strings.Contains(r.stderr, "encode reads tagged JSON") || !strings.Contains(r.stderr, "plist convert --to tagged-json") {
		t.Errorf("encode of plain JSON: %+v", r)
	}
}
