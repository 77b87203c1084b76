package xpcd

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/bundletest"
)

// environOf is process pid's environment, as it was started.
func environOf(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			if _, dup := env[k]; !dup {
				env[k] = v
			}
		}
	}
	return env
}

// An Application service with JoinExistingSession gets its application's
// session variables (the display, the session bus, the runtime
// directory...), and none of its other variables; its own
// EnvironmentVariables win over them. One without the key, and a User
// service with it, get no session. Each application's instance gets that
// application's session. print pid/PID says which services join.
func TestAppServiceJoinsSession(t *testing.T) {
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.start()
	const joins, plain, shared = "org.test.js.joins", "org.test.js.plain", "org.test.js.shared"
	joinsEnv := appEnv(joins)
	joinsEnv["XDG_SESSION_TYPE"] = "from-plist"
	b := makeTestBundle(t, h, appsDir(t, h), "org.test.js",
		bundletest.ServiceSpec{Name: "Joins", Identifier: joins, Type: bundle.Application, JoinExistingSession: true, Environment: joinsEnv},
		bundletest.ServiceSpec{Name: "Plain", Identifier: plain, Type: bundle.Application},
		bundletest.ServiceSpec{Name: "Shared", Identifier: shared, Type: bundle.User, JoinExistingSession: true})
	cred := &syscall.Credential{Uid: isoUserA, Gid: isoUserA, Groups: []uint32{}}
	session := func(display string) []string {
		return []string{"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/" + display + "/bus",
			"XDG_SESSION_TYPE=wayland", "XDG_SESSION_ID=" + display,
			"XAUTHORITY=" + strings.Repeat("x", maxSessionValue+1), // too long: left out
			"XPCD_TEST_NOT_SESSION=leaked", "LD_LIBRARY_PATH=/nonexistent/leaked"}
	}
	one := startAppWith(t, h.paths.Socket, b.Executable, cred, session("77"))
	two := startAppWith(t, h.paths.Socket, b.Executable, cred, session("78"))

	for _, c := range []struct {
		app     *testApp
		display string
	}{{one, "77"}, {two, "78"}} {
		env := environOf(t, c.app.lookup(joins))
		for k, want := range map[string]string{
			"DISPLAY":                  c.display,
			"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/" + c.display + "/bus",
			"XDG_SESSION_ID":           c.display,
			"XDG_SESSION_TYPE":         "from-plist",
		} {
			if env[k] != want {
				t.Errorf("app with display %s: the joining service's %s = %q, want %q", c.display, k, env[k], want)
			}
		}
		for _, k := range []string{"XPCD_TEST_NOT_SESSION", "LD_LIBRARY_PATH", "XAUTHORITY"} {
			if v, ok := env[k]; ok {
				t.Errorf("app with display %s: the joining service has %s=%.20q, not a session variable it may have", c.display, k, v)
			}
		}
	}
	for _, name := range []string{plain, shared} {
		if v, ok := environOf(t, one.lookup(name))["DISPLAY"]; ok {
			t.Errorf("%s has DISPLAY=%q: only an Application service with JoinExistingSession joins", name, v)
		}
	}

	p := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, PIDDomain(one.pid))
	svcs, _ := p.Get(bootstrap.KeyServices).(xpc.Array)
	joined := map[string]bool{}
	for _, s := range svcs {
		d := s.(*xpc.Dictionary)
		if v, _ := d.Get(bootstrap.KeyJoinsSession).(xpc.Bool); v {
			joined[strOf(d, bootstrap.KeyName)] = true
		}
	}
	if len(joined) != 1 || !joined[joins] {
		t.Errorf("print %s: services joining the session %v, want %s alone", PIDDomain(one.pid), joined, joins)
	}
	j := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, PIDDomain(one.pid)+"/"+joins)
	if env, _ := j.Get("environment").(*xpc.Dictionary); env == nil || strOf(env, "DISPLAY") != "77" {
		t.Errorf("print of the joining instance: environment %v, want DISPLAY 77 in it", j.Get("environment"))
	}
}

// readSession reads only the session's variables, the first of each,
// bounded; a value too long or not UTF-8 is left out, and what is past
// the bound is not read.
func TestReadSessionBounded(t *testing.T) {
	t.Parallel()
	env := append(os.Environ()[:0:0],
		"DISPLAY=:1", "DISPLAY=:2", "PATH=/bin",
		"XAUTHORITY="+strings.Repeat("a", maxSessionValue+10),
		"WAYLAND_DISPLAY=\xff", "XDG_SEAT=seat0",
		// Past the bound (one variable may hold at most 128 KiB).
		"FILLER1="+strings.Repeat("f", 100<<10), "FILLER2="+strings.Repeat("f", 100<<10),
		"FILLER3="+strings.Repeat("f", 100<<10),
		"XDG_VTNR=2")
	got := readSession(startSleeper(t, env))
	want := map[string]string{"DISPLAY": ":1", "XDG_SEAT": "seat0"}
	if len(got) != len(want) || got["DISPLAY"] != want["DISPLAY"] || got["XDG_SEAT"] != want["XDG_SEAT"] {
		t.Errorf("readSession = %q, want %q", got, want)
	}
	if readSession(1<<30) != nil {
		t.Errorf("readSession of no process is not nil")
	}
}

// startSleeper starts a process with environment env, as given (os/exec
// would drop a repeated variable), that lives until the test ends, and
// returns its pid.
func startSleeper(t *testing.T, env []string) int {
	t.Helper()
	path, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	p, err := os.StartProcess(path, []string{"sleep", "60"}, &os.ProcAttr{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill(); p.Wait() })
	// StartProcess may return before the kernel has laid out the new
	// program's environment: until then environ reads empty, or ours.
	want := strings.Join(env, "\x00") + "\x00"
	waitFor(t, "the sleeper's environment", func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/environ")
		return err == nil && string(b) == want
	})
	return p.Pid
}

// A process whose real uid is not the uid it connected as (set-user-ID)
// has no session to give; nor has one that cannot be read.
func TestSetIDHasNoSession(t *testing.T) {
	t.Parallel()
	self := os.Getpid()
	if setID(&xpc.Peer{PID: self, UID: uint32(os.Getuid())}) {
		t.Errorf("this process is taken for set-user-ID")
	}
	if !setID(&xpc.Peer{PID: self, UID: uint32(os.Getuid()) + 1}) {
		t.Errorf("a peer whose uid is not its real uid is not taken for set-user-ID")
	}
	if !setID(&xpc.Peer{PID: 1 << 30, UID: 0}) {
		t.Errorf("a process that cannot be read is not taken for set-user-ID")
	}
}
