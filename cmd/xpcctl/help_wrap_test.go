package main

import (
	"strings"
	"testing"
)

// TestHelpWrapped: 'xpcctl help NAME' fits a terminal for every command:
// no line of its text is wider than 80 columns but for a single word or an
// indented example, and
// its words are all there, in order.
func TestHelpWrapped(t *testing.T) {
	for _, c := range commands {
		r := runCmd(t, nil, append([]string{"help"}, strings.Fields(c.name)...)...)
		if r.code != 0 {
			t.Errorf("help %s: exit %d %s", c.name, r.code, r.stderr)
			continue
		}
		text, _, _ := strings.Cut(r.stdout, "\nOptions:\n")
		for _, l := range strings.Split(text, "\n") {
			if len(l) > 80 && strings.Contains(strings.TrimSpace(l), " ") && !strings.HasPrefix(l, "Usage: ") &&
				!strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "\t") { // an example is shown as it is
				t.Errorf("help %s: a line of %d columns:\n%s", c.name, len(l), l)
			}
		}
		if got, want := strings.Fields(wrapHelp(c.help)), strings.Fields(c.help); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("help %s: wrapping changed the words", c.name)
		}
	}
	// A paragraph already wrapped, or indented, stays as written.
	for _, keep := range []string{"short\nlines", "  " + strings.Repeat("indented ", 20), "a\n\nb"} {
		if got := wrapHelp(keep); got != keep {
			t.Errorf("wrapHelp(%q) = %q", keep, got)
		}
	}
}
