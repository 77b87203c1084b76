package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

// call shows why a lookup was refused as the other commands show a
// refusal: kind, reason, description, with the requirement's clause and
// the identity checked, or the domain the name is in; print shows each
// name's requirement, and blame whether the caller would be refused.
func TestCallShowsReasons(t *testing.T) {
	uid := os.Geteuid()
	fail := fmt.Sprintf("uid %d", uid+1)
	s := xpctest.NewServer(t, xpctest.WithPlist("test.ctl.req.plist", xpctest.AgentPlist("test.ctl.req",
		[]string{"/bin/sleep", "60"}, nil, map[string]any{"MachServices": map[string]any{
			"test.ctl.req.svc":  map[string]any{"Requirement": fail},
			"test.ctl.open.svc": true,
		}})))
	t.Setenv(bootstrap.RootEnv, s.Root)
	dom := fmt.Sprintf("user/%d", uid)

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"call", "test.ctl.req.svc"}, []string{"xpcctl call: test.ctl.req.svc: requirement-failed: test.ctl.req.svc ",
			fmt.Sprintf("pid %d uid %d", os.Getpid(), uid), fmt.Sprintf("fails %q", fail)}},
		{[]string{"call", "test.ctl.nowhere"}, []string{"xpcctl call: test.ctl.nowhere: not-found: no service named test.ctl.nowhere"}},
		{[]string{"call", "--domain", "system", "test.ctl.open.svc"}, []string{"xpcctl call: test.ctl.open.svc: wrong-domain: test.ctl.open.svc is an agent of " + dom,
			"WithDomain(" + dom + ")"}},
	} {
		r := runCmd(t, nil, tc.args...)
		for _, w := range tc.want {
			if r.code != 1 || !strings.Contains(r.stderr, w) {
				t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, r.code, r.stderr, w)
			}
		}
	}

	target := dom + "/test.ctl.req"
	if r := runCmd(t, nil, "print", target); r.code != 0 || !strings.Contains(r.stdout, "test.ctl.req.svc = "+fail) {
		t.Errorf("print: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, "blame", target); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("a lookup of test.ctl.req.svc requires %q: yours would be refused", fail)) {
		t.Errorf("blame: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
