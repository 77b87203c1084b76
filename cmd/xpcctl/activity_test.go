package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

func TestParseActivityTarget(t *testing.T) {
	for in, want := range map[string][3]string{
		"com.x/tick":           {"", "com.x", "tick"},
		"system/com.x/tick":    {"system", "com.x", "tick"},
		"user/501/com.x/a.b/c": {"user/501", "com.x", "a.b/c"},
		"gui/501/com.x/tick":   {"gui/501", "com.x", "tick"},
		"gui/501":              {},
		"com.x":                {},
		"user/501":             {},
		"system/com.x":         {},
		"com.x/":               {},
		"/tick":                {},
		"user/501/com.x/":      {},
	} {
		dom, label, id, err := parseActivityTarget(in)
		if got := [3]string{dom, label, id}; got != want || (err == nil) != (want != [3]string{}) {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
}

// activity list, print and run against a private xpcd, with a job that
// declares an activity due in an hour.
func TestActivityCommands(t *testing.T) {
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, s.Root)
	p := filepath.Join(t.TempDir(), "test.act.plist")
	plist := xpctest.AgentPlist("test.act", []string{"/bin/sleep", "5"}, nil, map[string]any{
		"LaunchEvents": map[string]any{"com.apple.xpc.activity": map[string]any{
			"hourly": map[string]any{"Interval": 3600, "Priority": "Utility", "RequireNetworkConnectivity": true}}}})
	if err := os.WriteFile(p, plist, 0o644); err != nil {
		t.Fatal(err)
	}
	dom := "user/" + strconv.Itoa(os.Geteuid())
	if r := runCmd(t, nil, "bootstrap", dom, p); r.code != 0 {
		t.Fatalf("bootstrap: %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, "activity", "list"); r.code != 0 || !strings.Contains(r.stdout, "wait (not due)") ||
		!strings.Contains(r.stdout, dom+"/test.act/hourly") {
		t.Errorf("activity list: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, "activity", "print", "test.act/hourly"); r.code != 0 ||
		!strings.Contains(r.stdout, "RequireNetworkConnectivity") || !strings.Contains(r.stdout, "not due until") {
		t.Errorf("activity print: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, "activity", "run", dom+"/test.act/hourly"); r.code != 0 || strings.TrimSpace(r.stdout) != "started" {
		t.Errorf("activity run: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, "activity", "print", "test.act/nope"); r.code != 1 || !strings.Contains(r.stderr, "not-found") {
		t.Errorf("print of an unknown activity: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, "activity", "run", "test.act"); r.code != 2 {
		t.Errorf("run without an ID: exit %d", r.code)
	}
}

// activity list asks for every page: more activities than one reply
// holds are all listed.
func TestActivityListPages(t *testing.T) {
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, s.Root)
	dom := "user/" + strconv.Itoa(os.Geteuid())
	const jobs, per = 17, 64 // 1088 > bootstrap.MaxListedActivities
	for i := range jobs {
		acts := map[string]any{}
		for k := range per {
			acts[fmt.Sprintf("a%02d", k)] = map[string]any{"Interval": 3600}
		}
		label := fmt.Sprintf("test.pages%02d", i)
		p := filepath.Join(t.TempDir(), label+".plist")
		plist := xpctest.AgentPlist(label, []string{"/bin/sleep", "5"}, nil, map[string]any{
			"LaunchEvents": map[string]any{"com.apple.xpc.activity": acts}})
		if err := os.WriteFile(p, plist, 0o644); err != nil {
			t.Fatal(err)
		}
		if r := runCmd(t, nil, "bootstrap", dom, p); r.code != 0 {
			t.Fatalf("bootstrap: %d %s%s", r.code, r.stdout, r.stderr)
		}
	}
	r := runCmd(t, nil, "activity", "list", dom)
	if r.code != 0 {
		t.Fatalf("activity list: %d %s", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, "/test.pages"); n != jobs*per {
		t.Errorf("listed %d activities, want %d", n, jobs*per)
	}
	if !strings.Contains(r.stdout, "/test.pages16/a63") {
		t.Error("the last activity is not listed")
	}
}
