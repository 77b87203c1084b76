package main

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

func TestPlistConvert(t *testing.T) {
	xmlFile := filepath.Join("..", "..", "testdata", "plist", "com.example.agent.plist")
	binFile := filepath.Join("..", "..", "testdata", "plist", "com.example.agent.bplist")
	dir := t.TempDir()

	// XML -> binary -> tagged JSON -> XML gives the same XML as XML -> XML.
	xml := runCmd(t, nil, "plist", "convert", "--to", "xml", xmlFile)
	if xml.code != 0 || !strings.HasPrefix(xml.stdout, "<?xml") {
		t.Fatalf("to xml: %+v", xml)
	}
	binOut := filepath.Join(dir, "agent.bplist")
	if r := runCmd(t, nil, "plist", "convert", "--to", "binary", "-o", binOut, xmlFile); r.code != 0 || r.stdout != "" {
		t.Fatalf("to binary: %+v", r)
	}
	bin, err := os.ReadFile(binOut)
	if err != nil || !bytes.HasPrefix(bin, []byte("bplist00")) {
		t.Fatalf("binary output %q %v", bin[:min(len(bin), 8)], err)
	}
	js := runCmd(t, bin, "plist", "convert", "--to", "tagged-json", "-")
	if js.code != 0 || !strings.Contains(js.stdout, `"Label": {`) {
		t.Fatalf("to tagged-json: %+v", js)
	}
	back := runCmd(t, []byte(js.stdout), "plist", "convert", "--to", "xml", "-")
	if back.code != 0 || back.stdout != xml.stdout {
		t.Errorf("JSON -> XML differs:\n%s\nwant\n%s\n%s", back.stdout, xml.stdout, back.stderr)
	}
	// The committed binary file converts to the same XML.
	if r := runCmd(t, nil, "plist", "convert", binFile, "--to", "xml"); r.stdout != xml.stdout {
		t.Errorf("binary file -> XML differs: %+v", r)
	}

	for _, tc := range []struct {
		name string
		in   []byte
		args []string
		code int
		want string
	}{
		{"no --to", nil, []string{"-"}, 2, "--to is required"},
		{"bad --to", nil, []string{"--to", "yaml", "-"}, 2, "want xml, binary, json or tagged-json"},
		{"no file", nil, []string{"--to", "xml"}, 2, "no input FILE"},
		{"bad plist", []byte("<plist><integer>x</integer></plist>"), []string{"--to", "xml", "-"}, 1, "xpcctl plist convert: <stdin>: not a property list: error parsing XML property list"},
		{"null to plist", []byte(`{"null":null}`), []string{"--to", "xml", "-"}, 1, "null has no property-list form"},
		{"bad tagged JSON", []byte(`{"int64":"x"}`), []string{"--to", "xml", "-"}, 1, "offset"},
		{"date to JSON", nil, []string{"--to", "json", xmlFile}, 1, "ExampleInstalled: a date has no plain JSON form; --to tagged-json keeps every value"},
		{"big JSON integer", []byte(`[18446744073709551616]`), []string{"--to", "xml", "-"}, 1, "out of the int64 and uint64 ranges"},
		{"duplicate JSON key", []byte(`{"a": 1, "a": 2}`), []string{"--to", "xml", "-"}, 1, `duplicate dictionary key: "a"`},
		{"deep JSON", []byte(strings.Repeat("[", 100) + strings.Repeat("]", 100)), []string{"--to", "xml", "-"}, 1, "nesting too deep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, tc.in, append([]string{"plist", "convert"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Errorf("exit %d (want %d), stdout %q, stderr %q (want %q)", r.code, tc.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
}

// --to json writes plain JSON, as plutil -convert json does, and plain
// JSON reads back with its integers, reals and strings as they were.
func TestPlistConvertPlainJSON(t *testing.T) {
	in := `<plist><dict><key>b</key><array><integer>-1</integer><real>2</real><real>2.5</real>` +
		`<real>1e300</real><true/><string>a&lt;b&amp;"c"&#x9;</string></array>` +
		`<key>a</key><integer>18446744073709551615</integer><key>c.d</key><dict/><key>e</key><array/></dict></plist>`
	want := `{
  "a": 18446744073709551615,
  "b": [
    -1,
    2.0,
    2.5,
    1e+300,
    true,
    "a<b&\"c\"\t"
  ],
  "c.d": {},
  "e": []
}
`
	js := runCmd(t, []byte(in), "plist", "convert", "--to", "json", "-")
	if js.code != 0 || js.stdout != want {
		t.Fatalf("exit %d\n%s%s\nwant\n%s", js.code, js.stdout, js.stderr, want)
	}
	viaJSON := runCmd(t, []byte(js.stdout), "plist", "convert", "--to", "xml", "-")
	direct := runCmd(t, []byte(in), "plist", "convert", "--to", "xml", "-")
	if viaJSON.code != 0 || viaJSON.stdout != direct.stdout {
		t.Errorf("plist -> JSON -> XML:\n%s%s\nwant\n%s", viaJSON.stdout, viaJSON.stderr, direct.stdout)
	}
	// What plain JSON cannot carry is refused, naming where it is.
	for _, tc := range []struct {
		obj  xpc.Object
		want string
	}{
		{xpc.Dict("k", xpc.Array{xpc.Data("x")}), "k[0]: a data has no plain JSON form"},
		{xpc.Dict("a.b", xpc.Dict("c", xpc.Date(0))), `"a.b".c: a date has no plain JSON form`},
		{xpc.Double(math.Inf(1)), "the root: the real +Inf has no plain JSON form"},
	} {
		_, err := marshalPlainJSON(tc.obj)
		if !errors.Is(err, errNoPlainJSON) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", xpc.Format(tc.obj), err, tc.want)
		}
	}
}

// lintPlists are job plists, good and bad, for lint and bootstrap alike:
// name -> contents and mode. Each is a separate file.
func lintPlists() map[string]struct {
	data []byte
	mode os.FileMode
} {
	agent := func(label string, extra map[string]any) []byte {
		return xpctest.AgentPlist(label, []string{"/bin/true"}, nil, extra)
	}
	type file = struct {
		data []byte
		mode os.FileMode
	}
	return map[string]file{
		"good":        {agent("test.lint.good", nil), 0o644},
		"warnings":    {xpctest.AgentPlist("test.lint.warn", []string{"/nonexistent/prog"}, nil, map[string]any{"Lable": "x", "Sockets": map[string]any{}}), 0o644},
		"no label":    {[]byte(`<plist><dict><key>Program</key><string>/bin/true</string></dict></plist>`), 0o644},
		"many errors": {agent("test.lint.many", map[string]any{"RunAtLoad": "yes", "Nice": 40, "WorkingDirectory": "tmp"}), 0o644},
		"json":        {[]byte(`{"Label": "test.lint.json", "Program": "/bin/true"}`), 0o644},
		"empty":       {nil, 0o644},
		"junk":        {[]byte("\x00\x01\x02\xffjunk"), 0o644},
		"word":        {[]byte("hello\n"), 0o644},
		"root array":  {[]byte(`<plist><array/></plist>`), 0o644},
		"writable":    {agent("test.lint.writable", nil), 0o666},
		// A BundleProgram is resolved only by an application's bundle.
		"bundle program": {[]byte(`<plist><dict><key>Label</key><string>test.lint.bp</string><key>BundleProgram</key><string>Contents/MacOS/helper</string></dict></plist>`), 0o644},
	}
}

// plist lint gives, offline, the errors and warnings bootstrap gives of
// the same files: both take them from the same checks.
func TestPlistLintMatchesBootstrap(t *testing.T) {
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, s.Root)
	dom := "user/" + strconv.Itoa(os.Geteuid())
	dir := t.TempDir()
	for name, f := range lintPlists() {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".plist")
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) { compareLintBootstrap(t, dom, p) })
	}
	if os.Geteuid() == 0 {
		p := filepath.Join(dir, "owned.plist")
		if err := os.WriteFile(p, lintPlists()["good"].data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		t.Run("owned by another", func(t *testing.T) { compareLintBootstrap(t, dom, p) })
	}
}

// compareLintBootstrap lints p and bootstraps it into dom, and compares
// what each says.
func compareLintBootstrap(t *testing.T, dom, p string) {
	lint := runCmd(t, nil, "plist", "lint", p)
	boot := runCmd(t, nil, "bootstrap", dom, p)
	var lintErrs, lintWarns []string
	for _, l := range strings.Split(strings.TrimSuffix(lint.stdout, "\n"), "\n") {
		switch {
		case l == p+": OK":
		case strings.HasPrefix(l, p+": warning: "):
			lintWarns = append(lintWarns, strings.TrimPrefix(l, p+": warning: "))
		default:
			lintErrs = append(lintErrs, l)
		}
	}
	var bootWarns []string
	for _, l := range strings.Split(strings.TrimSuffix(boot.stdout, "\n"), "\n") {
		if w, ok := strings.CutPrefix(l, "warning: "); ok {
			bootWarns = append(bootWarns, w)
		}
	}
	var bootErrs []string
	if boot.code != 0 {
		msg, ok := strings.CutPrefix(strings.TrimSuffix(boot.stderr, "\n"), "xpcctl bootstrap: "+p+": bad-plist: ")
		if !ok {
			t.Fatalf("bootstrap: exit %d\n%s%s", boot.code, boot.stdout, boot.stderr)
		}
		bootErrs = strings.Split(msg, "; ")
	}
	if (lint.code == 0) != (boot.code == 0) || !slices.Equal(lintErrs, bootErrs) || !slices.Equal(lintWarns, bootWarns) {
		t.Errorf("lint (exit %d):\n%s\nbootstrap (exit %d):\n%s%s\nerrors %q vs %q\nwarnings %q vs %q",
			lint.code, lint.stdout, boot.code, boot.stdout, boot.stderr, lintErrs, bootErrs, lintWarns, bootWarns)
	}
	t.Logf("lint:\n%s", lint.stdout)
}

func TestPlistLint(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.plist")
	bad := filepath.Join(dir, "bad.plist")
	for p, data := range map[string][]byte{
		good: xpctest.AgentPlist("test.lint", []string{"/bin/true"}, nil, nil),
		bad:  []byte("<plist><dict><key>a</key></plist>"),
	} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := runCmd(t, nil, "plist", "lint", good)
	if r.code != 0 || r.stdout != good+": OK\n" {
		t.Errorf("good: %+v", r)
	}
	missing := filepath.Join(dir, "missing.plist")
	r = runCmd(t, nil, "plist", "lint", good, bad, missing)
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	want := good + ": OK\n" + bad + ": not a property list: "
	if !strings.HasPrefix(r.stdout, want) || !strings.HasSuffix(r.stdout, "\n"+missing+": open: no such file or directory\n") ||
		strings.Count(r.stdout, "\n") != 3 {
		t.Errorf("output:\n%s", r.stdout)
	}
	// Standard input, named as such; it has no owner or mode to check.
	r = runCmd(t, xpctest.AgentPlist("test.stdin", []string{"/bin/true"}, nil, map[string]any{"Nice": 99}), "plist", "lint", "-")
	if r.code != 1 || r.stdout != "<stdin>: Nice: out of range: want -20 to 20, have 99\n" {
		t.Errorf("stdin: %+v", r)
	}
	for _, args := range [][]string{{"plist", "lint"}, {"plist", "lint", "--domain", "gui/x", good}, {"plist", "lint", "--domain", "other", good}} {
		if r := runCmd(t, nil, args...); r.code != 2 {
			t.Errorf("%q: exit %d", args, r.code)
		}
	}
}

// --domain chooses whose plist a file may be: root's or the domain's
// user's.
func TestPlistLintDomain(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file away")
	}
	p := filepath.Join(t.TempDir(), "agent.plist")
	if err := os.WriteFile(p, xpctest.AgentPlist("test.lint", []string{"/bin/true"}, nil, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		domain string
		code   int
		want   string
	}{
		{"user/4242", 0, p + ": OK\n"},
		{"gui/4242", 0, p + ": OK\n"},
		{"system", 1, p + ": dubious ownership: owned by uid 4242, want root or uid 0 (rule plist-owner)\n"},
		{"user", 1, p + ": dubious ownership: owned by uid 4242, want root or uid 0 (rule plist-owner)\n"},
		{"user/4243", 1, p + ": dubious ownership: owned by uid 4242, want root or uid 4243 (rule plist-owner)\n"},
	} {
		if r := runCmd(t, nil, "plist", "lint", "--domain", tc.domain, p); r.code != tc.code || r.stdout != tc.want {
			t.Errorf("--domain %s: exit %d\n%s%s", tc.domain, r.code, r.stdout, r.stderr)
		}
	}
}

// A file name or a key holding control characters is printed escaped:
// lint prints a user's words on whoever runs it's terminal.
func TestPlistLintEscapes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a\x1b[2Jb.plist")
	data, err := xpc.ToPlist(xpc.Dict("Label", "test.lint", "Program", "/bin/true", "X\x1b[31m", true), xpc.PlistBinary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, nil, "plist", "lint", p)
	if r.code != 0 || strings.Contains(r.stdout, "\x1b") || !strings.Contains(r.stdout, `a\x1b[2Jb.plist`) {
		t.Errorf("exit %d: %q", r.code, r.stdout)
	}
}

// plist print lays a plist out as plutil -p does, and escapes what a
// terminal would act on.
func TestPlistPrint(t *testing.T) {
	long := make([]byte, 40)
	for i := range long {
		long[i] = byte(i)
	}
	obj := xpc.Dict(
		"b", xpc.Array{xpc.Int64(-1), xpc.Uint64(18446744073709551615), xpc.Double(2.5), xpc.Double(math.Inf(-1)), xpc.Bool(true)},
		"a\x1b[2J\u202e", "x\u202ey\x07\n",
		"d", xpc.Data(long),
		"e", xpc.Data{0xde, 0xad, 0xbe, 0xef, 0x01},
		"f", xpc.Dict(),
		"g", xpc.Array{},
		"h", xpc.Date(time.Date(2024, 3, 1, 12, 30, 45, 0, time.UTC).UnixNano()),
		"i", xpc.Data{},
	)
	bin, err := xpc.ToPlist(obj, xpc.PlistBinary)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "a\x1b[2J\u202e" => "x\u202ey\a\n"
  "b" => [
    0 => -1
    1 => 18446744073709551615
    2 => 2.5
    3 => -Inf
    4 => true
  ]
  "d" => {length = 40, bytes = 0x00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617 ... 20212223 24252627}
  "e" => {length = 5, bytes = 0xdeadbeef 01}
  "f" => {
  }
  "g" => [
  ]
  "h" => 2024-03-01 12:30:45 +0000
  "i" => {length = 0, bytes = 0x}
}
`
	r := runCmd(t, bin, "plist", "print", "-")
	if r.code != 0 || r.stdout != want {
		t.Errorf("exit %d:\n%s%s\nwant\n%s", r.code, r.stdout, r.stderr, want)
	}
	// JSON input, and a scalar root.
	if r := runCmd(t, []byte(`["x", 1.0]`), "plist", "print", "-"); r.code != 0 || r.stdout != "[\n  0 => \"x\"\n  1 => 1\n]\n" {
		t.Errorf("JSON: %+v", r)
	}
	for _, tc := range []struct {
		args []string
		in   string
		code int
		want string
	}{
		{[]string{"plist", "print"}, "", 2, "no FILE"},
		{[]string{"plist", "print", "a", "b"}, "", 2, "too many arguments"},
		{[]string{"plist", "print", "-"}, "<plist><dict>", 1, "xpcctl plist print: <stdin>: not a property list: error parsing XML"},
		{[]string{"plist", "print", "/nonexistent/x.plist"}, "", 1, "no such file"},
	} {
		if r := runCmd(t, []byte(tc.in), tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%q: %+v", tc.args, r)
		}
	}
}

// A FIFO named to plist print, convert, decode or encode is read as it is
// (empty, with no writer): the command does not wait for a writer, which
// SIGINT would not end.
func TestInputFIFONoWait(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"plist", "print", fifo}, {"plist", "convert", "--to", "json", fifo}, {"decode", fifo}, {"encode", fifo}} {
		done := make(chan result, 1)
		go func() { done <- runCmd(t, nil, args...) }()
		select {
		case r := <-done:
			if r.code != exitFail || !strings.Contains(r.stderr, fifo) {
				t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
			}
		case <-time.After(10 * time.Second):
			// Let the command go before failing.
			if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
				defer f.Close()
			}
			t.Fatalf("%v waits for a writer", args)
		}
	}
}
