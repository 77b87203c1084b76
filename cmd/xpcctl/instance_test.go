package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

// With no flag, a request naming a domain a user's instance never serves
// (system, another user's) goes to the system instance; one naming your
// own domain, or none, to the first instance that answers.
func TestForTarget(t *testing.T) {
	t.Setenv(bootstrap.RootEnv, "")
	os.Unsetenv(bootstrap.RootEnv)
	me := strconv.Itoa(os.Geteuid())
	other := strconv.Itoa(os.Geteuid() + 1)
	for _, tc := range []struct {
		inst   instance
		target string
		want   instance
	}{
		{anyInstance, "", anyInstance},
		{anyInstance, "system", systemInstance},
		{anyInstance, "system/org.x", systemInstance},
		{anyInstance, "user/" + me, anyInstance},
		{anyInstance, "gui/" + me + "/org.x", anyInstance},
		{anyInstance, "user/" + other, systemInstance},
		{anyInstance, "gui/" + other + "/org.x", systemInstance},
		{anyInstance, "systemd", anyInstance},
		{anyInstance, "user/x", anyInstance},
		{userInstance, "system", userInstance},
		{systemInstance, "user/" + me, systemInstance},
	} {
		if got := tc.inst.forTarget(tc.target); got != tc.want {
			t.Errorf("instance %d, %q: %d, want %d", tc.inst, tc.target, got, tc.want)
		}
	}
	// XPCD_ROOT names one instance for everything.
	t.Setenv(bootstrap.RootEnv, t.TempDir())
	if got := anyInstance.forTarget("system"); got != anyInstance {
		t.Errorf("with XPCD_ROOT, system goes to %d", got)
	}
}

// Your user instance answers list, but print system goes past it to the
// system instance, which is not running here (the user's says "domain
// system is not served by this xpcd").
func TestSystemDomainSkipsUserInstance(t *testing.T) {
	if _, err := os.Stat(bootstrap.System().Socket); err == nil {
		t.Skip("a system xpcd runs on this machine")
	}
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, "")
	os.Unsetenv(bootstrap.RootEnv)
	runDir := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runDir)
	// The user's socket, XDG_RUNTIME_DIR/xpc/bootstrap.sock, is the test
	// server's.
	if err := os.Symlink(filepath.Dir(s.Socket), filepath.Join(runDir, "xpc")); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, nil, "list"); r.code != 0 {
		t.Fatalf("list: %+v", r)
	}
	r := runCmd(t, nil, "print", "system")
	want := "nothing listens on " + bootstrap.System().Socket + "; start xpcd --system"
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("print system: exit %d, stderr %q, want 1 and %q", r.code, r.stderr, want)
	}
	// --user still means the user's instance, which says it serves no
	// system domain.
	if r := runCmd(t, nil, "--user", "print", "system"); !strings.Contains(r.stderr, "is not served by this xpcd") {
		t.Errorf("--user print system: %+v", r)
	}
}
