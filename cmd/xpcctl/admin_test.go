package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

// bootstrap hands xpcd the plist it opened with the caller's rights, as
// launchctl hands launchd its plist, so that a root xpcd never opens a
// path a user names with its own rights.
func TestBootstrapSendsThePlist(t *testing.T) {
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, s.Root)
	dir := t.TempDir()
	p := filepath.Join(dir, "test.ctl.plist")
	if err := os.WriteFile(p, xpctest.AgentPlist("test.ctl", []string{"/bin/true"}, nil, nil), 0o644); err != nil {
		t.Fatal(err)
	}

	req := xpc.Dict(bootstrap.KeyOp, bootstrap.OpBootstrap, bootstrap.KeyPath, p)
	f, err := openPlist(req)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, ok := req.Get(bootstrap.KeyPlist).(*xpc.FD)
	if !ok {
		t.Fatalf("the request carries no plist descriptor: %s", xpc.Format(req))
	}
	var a, b syscall.Stat_t
	if err := syscall.Fstat(int(fd.File().Fd()), &a); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(p, &b); err != nil || a.Ino != b.Ino || a.Dev != b.Dev {
		t.Fatalf("the descriptor is not the plist's file (%v)", err)
	}

	dom := "user/" + strconv.Itoa(os.Geteuid())
	if r := runCmd(t, nil, "bootstrap", dom, p); r.code != 0 || !strings.Contains(r.stdout, "loaded") {
		t.Fatalf("bootstrap: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A plist the caller cannot open fails in xpcctl, with the caller's
	// own error, before anything is sent.
	r := runCmd(t, nil, "bootstrap", dom, filepath.Join(dir, "missing.plist"))
	if r.code == 0 || !strings.Contains(r.stderr, "no such file") {
		t.Fatalf("bootstrap of a missing plist: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// bootstrap prints the keys xpcd says have no effect, after the status.
func TestStatusShowsWarnings(t *testing.T) {
	var b strings.Builder
	renderStatus(&b, xpc.Dict(bootstrap.KeyStatus, "loaded",
		bootstrap.KeyWarnings, xpc.Array{xpc.String("MachServices.a.b.Requirment: unknown key: ignored")}))
	if got, want := b.String(), "loaded\nwarning: MachServices.a.b.Requirment: unknown key: ignored\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A label alone, as systemctl takes a unit, is a usage error that names
// the targets it may mean, before xpcd is asked; a domain alone is not.
func TestTargetWithoutDomain(t *testing.T) {
	want := "user/" + strconv.Itoa(os.Geteuid()) + "/com.example.svc or system/com.example.svc"
	for _, args := range [][]string{{"print", "com.example.svc"}, {"blame", "com.example.svc"}, {"kickstart", "com.example.svc"}, {"log", "com.example.svc"}} {
		r := runCmd(t, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "names no domain") || !strings.Contains(r.stderr, want) {
			t.Errorf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	for _, ok := range []string{"system", "user/0", "system/com.example.svc", "user/0/com.example.svc", "gui/501/x"} {
		if p := targetProblem(ok); p != "" {
			t.Errorf("%s: %s", ok, p)
		}
	}
}

// list shows a job whose last launch failed as such, not as "-".
func TestRenderListLaunchFailed(t *testing.T) {
	job := func(label string, kv ...any) *xpc.Dictionary {
		return xpc.Dict(append([]any{bootstrap.KeyLabel, label, bootstrap.KeyDomain, "user/501", bootstrap.KeyState, "waiting"}, kv...)...)
	}
	reply := xpc.Dict(bootstrap.KeyJobs, xpc.Array{
		job("a.missing", "error", "launch failed: spawn /x: no such file or directory"),
		job("b.crashed", bootstrap.KeyRuns, 1, bootstrap.KeyLastExit, "exited with status 2"),
		job("c.new"),
	})
	var b strings.Builder
	renderList(&b, reply)
	want := `PID  STATE    RUNS  LAST EXIT             LABEL               SERVICES
-    waiting  0     launch failed         user/501/a.missing  -
-    waiting  1     exited with status 2  user/501/b.crashed  -
-    waiting  0     -                     user/501/c.new      -
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
