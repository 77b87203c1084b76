package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

// call of a service xpcd cannot start fails at once, with the typed
// reason on one line, not at its timeout; with no xpcd at all it says so,
// with the fix; bootstrap of a plist whose program is missing warns, and
// print repeats the warning until the program is there.
func TestCallFailsFast(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing-program")
	s := xpctest.NewServer(t,
		xpctest.WithPlist("test.ctl.missing.plist", xpctest.AgentPlist("test.ctl.missing",
			[]string{missing}, []string{"test.ctl.missing.svc"}, map[string]any{"ThrottleInterval": 60})),
		xpctest.WithPlist("test.ctl.exit.plist", xpctest.AgentPlist("test.ctl.exit",
			[]string{"/bin/sh", "-c", "exit 3"}, []string{"test.ctl.exit.svc"}, nil)))
	t.Setenv(bootstrap.RootEnv, s.Root)

	for _, tc := range []struct {
		name string
		want []string
	}{
		{"test.ctl.missing.svc", []string{"xpcctl call: test.ctl.missing.svc: launch-failed: service test.ctl.missing.svc: ", missing + ": no such file or directory"}},
		{"test.ctl.missing.svc", []string{"xpcctl call: test.ctl.missing.svc: throttled: service test.ctl.missing.svc: ", "tries again at"}},
		{"test.ctl.exit.svc", []string{"xpcctl call: test.ctl.exit.svc: exited: service test.ctl.exit.svc: ", "exited with status 3, before checking in test.ctl.exit.svc"}},
	} {
		start := time.Now()
		r := runCmd(t, nil, "call", "--timeout", "10s", tc.name)
		took := time.Since(start)
		t.Logf("call %s: %v: %s", tc.name, took.Round(time.Millisecond), r.stderr)
		if took > 3*time.Second {
			t.Errorf("call %s took %v", tc.name, took)
		}
		for _, w := range tc.want {
			if r.code != 1 || !strings.Contains(r.stderr, w) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("call %s: exit %d, stderr %q, want one line with %q", tc.name, r.code, r.stderr, w)
			}
		}
	}

	// bootstrap warns of the missing program; print, until it is there.
	dom := "user/" + strconv.Itoa(os.Geteuid())
	prog := filepath.Join(dir, "later")
	p := filepath.Join(dir, "test.ctl.later.plist")
	if err := os.WriteFile(p, xpctest.AgentPlist("test.ctl.later", []string{prog}, nil, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	warning := "warning: program " + prog + " does not exist; launches will fail"
	if r := runCmd(t, nil, "bootstrap", dom, p); r.code != 0 || !strings.Contains(r.stdout, warning) {
		t.Errorf("bootstrap: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, "print", dom+"/test.ctl.later"); r.code != 0 || !strings.Contains(r.stdout, "does not exist; launches will fail") {
		t.Errorf("print: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, nil, "print", dom+"/test.ctl.later"); r.code != 0 || strings.Contains(r.stdout, "launches will fail") {
		t.Errorf("print after the program was installed: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// No xpcd.
	none := t.TempDir()
	t.Setenv(bootstrap.RootEnv, none)
	r := runCmd(t, nil, "call", "--timeout", "10s", "test.ctl.missing.svc")
	// The hint names the private instance, not the user's own under systemd.
	want := "xpcctl call: test.ctl.missing.svc: no xpcd is running: nothing listens on " + bootstrap.ForRoot(none, false).Socket +
		"; start xpcd --user, or xpcd --system as root, with XPCD_ROOT=" + none + "\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("no xpcd: exit %d, stderr\n%q, want\n%q", r.code, r.stderr, want)
	}
	// The administrative verbs say it the same way.
	r = runCmd(t, nil, "list")
	want = strings.Replace(want, "xpcctl call: test.ctl.missing.svc:", "xpcctl list:", 1)
	if r.code != 1 || r.stderr != want {
		t.Errorf("no xpcd, list: exit %d, stderr\n%q, want\n%q", r.code, r.stderr, want)
	}
}
