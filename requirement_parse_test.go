package xpc

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const testDigest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// requirementCanon: requirements that parse, and their canonical text.
var requirementCanon = []struct{ in, want string }{
	{"uid 0", "uid 0"},
	{"  uid\t007  ", "uid 7"},
	{"uid 4294967294", "uid 4294967294"},
	{"uid root", "uid root"},
	{`uid "root"`, "uid root"},
	{`uid "0"`, "uid 0"},
	{"group admin", "group admin"},
	{"group 1000", "group 1000"},
	{"exe /usr/libexec/helper", "exe /usr/libexec/helper"},
	{`exe "/opt/My App/bin/helper"`, `exe "/opt/My App/bin/helper"`},
	{`exe "/opt/a\"b\\c"`, `exe "/opt/a\"b\\c"`},
	{`exe /opt/a\b`, `exe /opt/a\b`},
	{`exe "/opt/(x)"`, `exe "/opt/(x)"`},
	{"sha256 " + strings.ToUpper(testDigest), "sha256 " + testDigest},
	{"identifier org.example.app", "identifier org.example.app"},
	{`identifier "and"`, `identifier "and"`},
	{`team "not"`, `team "not"`},
	{"team ABCDE12345", "team ABCDE12345"},
	{"identifier ünïcode.app", "identifier ünïcode.app"},
	{"signed", "signed"},
	{"unit foo.service", "unit foo.service"},
	{"unit /system.slice/foo.service", "unit /system.slice/foo.service"},
	{"unit /", "unit /"},
	{"uid 0 and uid 1 or uid 2", "uid 0 and uid 1 or uid 2"},
	{"uid 0 or uid 1 and uid 2", "uid 0 or uid 1 and uid 2"},
	{"(uid 0 or uid 1) and uid 2", "(uid 0 or uid 1) and uid 2"},
	{"uid 0 and (uid 1 and uid 2)", "uid 0 and uid 1 and uid 2"},
	{"(uid 0 and uid 1) or (uid 2 and uid 3)", "uid 0 and uid 1 or uid 2 and uid 3"},
	{"((uid 0))", "uid 0"},
	{"not uid 0", "not uid 0"},
	{"not not uid 0", "not not uid 0"},
	{"not (uid 0)", "not uid 0"},
	{"not(uid 0 or signed)", "not (uid 0 or signed)"},
	{"not uid 0 and signed", "not uid 0 and signed"},
	{"not (uid 0 and signed) or team T", "not (uid 0 and signed) or team T"},
	{"(signed)and(team T)", "signed and team T"},
	{"uid 0 or (uid 1 or (uid 2 or uid 3))", "uid 0 or uid 1 or uid 2 or uid 3"},
}

func TestParseRequirementCanonical(t *testing.T) {
	for _, tc := range requirementCanon {
		r, err := ParseRequirement(tc.in)
		if err != nil {
			t.Errorf("ParseRequirement(%q): %v", tc.in, err)
			continue
		}
		if got := r.String(); got != tc.want {
			t.Errorf("ParseRequirement(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		if r.IsZero() {
			t.Errorf("ParseRequirement(%q).IsZero() = true", tc.in)
		}
		checkRoundTrip(t, tc.in, r)
	}
}

// checkRoundTrip checks that r's text parses to r.
func checkRoundTrip(t *testing.T, in string, r Requirement) {
	t.Helper()
	again, err := ParseRequirement(r.String())
	if err != nil {
		t.Fatalf("%q: its String %q does not parse: %v", in, r.String(), err)
	}
	if again.String() != r.String() || !reflect.DeepEqual(again.root, r.root) {
		t.Fatalf("%q: %q parses to %q, another requirement", in, r.String(), again.String())
	}
}

// requirementFaults: requirements that do not parse, the column named and
// a word of the message.
var requirementFaults = []struct {
	in   string
	col  int
	word string
}{
	{"", 1, "empty"},
	{"   ", 4, "empty"},
	{"uid", 4, "expected a value after uid, found the end"},
	{"uid (", 5, `found "("`},
	{"uid -1", 5, "number or a name"},
	{"uid 4294967295", 5, "out of range"},
	{"uid 99999999999999999999", 5, "out of range"},
	{"group", 6, "value"},
	{"exe usr/bin/x", 5, "absolute path"},
	{"exe /usr/../bin/x", 5, "clean"},
	{"exe /usr/bin/", 5, "clean"},
	{`exe ""`, 5, "empty"},
	{"sha256 abc", 8, "64 hexadecimal"},
	{"sha256 " + testDigest + "00", 8, "64 hexadecimal"},
	{"sha256 " + strings.Repeat("g", 64), 8, "64 hexadecimal"},
	{"unit a/b", 6, "cgroup name"},
	{"unit ..", 6, "cgroup name"},
	{"unit /a//b", 6, "clean cgroup path"},
	{"unit /a/", 6, "clean cgroup path"},
	{"identifier and", 12, "quote a value that is a keyword"},
	{"team or", 6, "keyword"},
	{"identifier not", 12, "keyword"},
	{"Uid 0", 1, `found "Uid"`},
	{"ui 0", 1, "expected a clause"},
	{`"uid" 0`, 1, "found a quoted value"},
	{"uid 0 uid 1", 7, `expected "and", "or" or the end, found "uid"`},
	{"uid 0 AND uid 1", 7, `found "AND"`},
	{"uid 0 and", 10, "found the end"},
	{"uid 0 or or uid 1", 10, `found "or"`},
	{"and uid 0", 1, "expected a clause"},
	{"not", 4, "the end"},
	{"(uid 0", 7, `expected ")" to close the "(" at column 1, found the end`},
	{"((uid 0) or (uid 1)", 20, `the "(" at column 1`},
	{"uid 0)", 6, `found ")"`},
	{"()", 2, `found ")"`},
	{"signed 1", 8, `found "1"`},
	{`exe "/a`, 5, "not closed"},
	{`exe "/a\n"`, 8, "unknown escape"},
	{"exe /a\nb", 7, "control character"},
	{"exe /a\x00", 7, "control character"},
	{"exe /a\u0085", 7, "control character"},
	{"exe /ü\xff", 7, "not UTF-8"},
	{"identifier é and", 17, "found the end"},
	{"uid 0 and " + strings.Repeat("(", maxRequirementDepth+1) + "uid 1" + strings.Repeat(")", maxRequirementDepth+1),
		11 + maxRequirementDepth, "nested more than"},
	{strings.Repeat("not ", maxRequirementDepth+1) + "uid 0", 1 + 4*maxRequirementDepth, "nested more than"},
	{"exe /" + strings.Repeat("a", maxRequirementLen), maxRequirementLen + 1, "longer than 4096 bytes"},
}

func TestParseRequirementErrors(t *testing.T) {
	for _, tc := range requirementFaults {
		r, err := ParseRequirement(tc.in)
		var se *RequirementSyntaxError
		if !errors.As(err, &se) || !errors.Is(err, ErrBadRequirement) {
			t.Errorf("ParseRequirement(%q) = %q, %v; want a *RequirementSyntaxError", tc.in, r.String(), err)
			continue
		}
		if se.Column != tc.col || !strings.Contains(se.Msg, tc.word) {
			t.Errorf("ParseRequirement(%q): column %d, %q; want column %d, %q", tc.in, se.Column, se.Msg, tc.col, tc.word)
		}
		if want := "xpc: bad requirement: column "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseRequirement(%q): %q, want it to start %q", tc.in, err, want)
		}
		if !r.IsZero() {
			t.Errorf("ParseRequirement(%q) failed but returned %q", tc.in, r.String())
		}
	}
}

// TestParseRequirementLimits: the deepest nesting and the longest text
// allowed parse; a text that fits but whose canonical form would not is
// refused, so that every String parses.
func TestParseRequirementLimits(t *testing.T) {
	deep := strings.Repeat("not ", maxRequirementDepth) + "uid 0"
	if _, err := ParseRequirement(deep); err != nil {
		t.Errorf("nested %d deep: %v", maxRequirementDepth, err)
	}
	parens := strings.Repeat("(", maxRequirementDepth) + "uid 0" + strings.Repeat(")", maxRequirementDepth)
	if _, err := ParseRequirement(parens); err != nil {
		t.Errorf("%d parentheses: %v", maxRequirementDepth, err)
	}
	long := "exe /" + strings.Repeat("a", maxRequirementLen-5)
	if r, err := ParseRequirement(long); err != nil || len(r.String()) != maxRequirementLen {
		t.Errorf("a requirement of %d bytes: %d bytes, %v", maxRequirementLen, len(r.String()), err)
	}
	// "signed and(signed or signed)" is one byte longer canonically.
	unit := "signed and(signed or signed)"
	grown := strings.Repeat(unit+" and ", (maxRequirementLen-6)/(len(unit)+5)) + "signed"
	grown += strings.Repeat(" ", maxRequirementLen-len(grown))
	if len(grown) != maxRequirementLen {
		t.Fatalf("test text of %d bytes", len(grown))
	}
	_, err := ParseRequirement(grown)
	var se *RequirementSyntaxError
	if !errors.As(err, &se) || se.Column != 1 || !strings.Contains(se.Msg, "canonically") {
		t.Errorf("a requirement longer canonically than %d bytes: %v", maxRequirementLen, err)
	}
}

func TestRequirementZero(t *testing.T) {
	var r Requirement
	if !r.IsZero() || r.String() != "" {
		t.Errorf("zero Requirement: IsZero %v, String %q", r.IsZero(), r.String())
	}
	if err := r.Check(nil); err != nil {
		t.Errorf("zero Requirement: Check(nil) = %v", err)
	}
	if MustParseRequirement("uid 0").IsZero() {
		t.Error(`"uid 0" IsZero`)
	}
	defer func() {
		if e, _ := recover().(error); !errors.Is(e, ErrBadRequirement) {
			t.Errorf("MustParseRequirement(\"uid\") panicked with %v", e)
		}
	}()
	MustParseRequirement("uid")
}

// TestRequirementCopies: a copy is equal by String to the requirement and
// to a fresh parse of the same text, and shares nothing that changes.
func TestRequirementCopies(t *testing.T) {
	a := MustParseRequirement("uid 0 or team T")
	b := a
	c := MustParseRequirement("(team T) or uid 0")
	if b.String() != a.String() || b != a {
		t.Error("a copy differs")
	}
	if c.String() == a.String() {
		t.Errorf("%q and %q have one text", a, c)
	}
	if d := MustParseRequirement("uid 0 or (team T)"); d.String() != a.String() {
		t.Errorf("%q and %q differ", a, d)
	}
}
