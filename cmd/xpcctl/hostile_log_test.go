package main

import (
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// A service's output, and a plist's environment, reach the terminal of
// whoever reads them, root included: log and print write their control
// characters escaped, so that a service cannot send escape sequences to
// root's terminal (retitle it, make it answer, move the cursor) or hide
// part of a line behind a carriage return. A tab stays a tab.
func TestLogAndPrintEscapeControlCharacters(t *testing.T) {
	evil := "ok\x1b]0;owned\x07\x1b[2J\rfake line\u009b\tend"
	want := `ok\x1b]0;owned\a\x1b[2J\rfake line\u009b` + "\tend"
	var b strings.Builder
	printLogLines(stdio{out: &b}, xpc.Dict(bootstrap.KeyLogLines, xpc.Array{xpc.String(evil)}))
	if got := b.String(); got != want+"\n" {
		t.Errorf("log wrote %q, want %q", got, want+"\n")
	}
	b.Reset()
	reply := xpc.Dict(bootstrap.KeyLabel, "x", bootstrap.KeyDomain, "user/501", bootstrap.KeyState, "running",
		"log", xpc.Array{xpc.String(evil)})
	reply.Set("environment", xpc.Dict("K\x1b", "v\x1b[31m"))
	renderPrintAt(&b, reply, time.Now())
	out := b.String()
	if strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && r != '\t' && (r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0)) }) {
		t.Errorf("print wrote control characters:\n%q", out)
	}
	if !strings.Contains(out, "  "+want+"\n") || !strings.Contains(out, `K\x1b=v\x1b[31m`) {
		t.Errorf("print:\n%s", out)
	}
}

// A bidirectional override or isolate, a zero width or a line separator in
// what a user chose (a program's argument, a service's line, an error's
// description) is escaped too: it would make the line read otherwise than
// it runs.
func TestEscapeBidiAndInvisibles(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rm -rf /\u202e/ylno", `rm -rf /\u202e/ylno`},
		{"a\u2066b\u2069c\u200fd\u061ce", `a\u2066b\u2069c\u200fd\u061ce`},
		{"a\u200bb\u2028c\u00a0d", `a\u200bb\u2028c\u00a0d`},
		{"ümlaut → 日本 ✓\tok", "ümlaut → 日本 ✓\tok"},
	} {
		if got := escapeControls(tc.in, false); got != tc.want {
			t.Errorf("escapeControls(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var b strings.Builder
	c := &command{name: "call"}
	c.fail(stdio{err: &b}, "%s", "denied: \u202eevil")
	if got := b.String(); got != "xpcctl call: denied: \\u202eevil\n" {
		t.Errorf("fail wrote %q", got)
	}
}
