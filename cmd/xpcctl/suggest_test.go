package main

import (
	"strings"
	"testing"
)

// A mistyped command gets one line naming the nearest commands, the same
// for xpcctl's own, a group's, and help's, and a line pointing at help; a
// group's command is found by its last word. A word near no command gets
// the usage.
func TestDidYouMean(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lst"}, `xpcctl: unknown command "lst" for "xpcctl"; did you mean list?` + "\n"},
		{[]string{"LIST"}, `did you mean list?`},
		{[]string{"lint", "x.plist"}, `did you mean plist lint or list?`},
		{[]string{"boot"}, `did you mean bootstrap or bootout?`},
		{[]string{"kickstrat"}, `did you mean kickstart?`},
		{[]string{"hlep"}, `did you mean help?`},
		{[]string{"plist", "lnt"}, `xpcctl plist: unknown command "lnt" for "xpcctl plist"; did you mean lint?` + "\n"},
		{[]string{"help", "lst"}, `xpcctl help: unknown command "lst" for "xpcctl"; did you mean list?` + "\n"},
		{[]string{"help", "plist", "lnt"}, `unknown command "lnt" for "xpcctl plist"; did you mean lint?`},
		{[]string{"zzzz"}, `xpcctl: unknown command "zzzz" for "xpcctl"` + "\n"},
		{[]string{strings.Repeat("l", 1000)}, `for "xpcctl"` + "\n"},
	} {
		r := runCmd(t, nil, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, "Did you mean") {
			t.Errorf("%.20q: exit %d, stderr %.300q, want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
		// A suggestion is not pushed off the screen by the usage: one
		// more line says where the commands are.
		if strings.Contains(tc.want, "did you mean") && (strings.Count(r.stderr, "\n") != 2 || !strings.Contains(r.stderr, "\nRun 'xpcctl help")) {
			t.Errorf("%.20q: stderr %.300q, want the suggestion and a line pointing at help", tc.args, r.stderr)
		}
	}
}
