package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	howettplist "howett.net/plist"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

// print of a running job reads as systemctl status: the state line, then
// the instance and its definition, the environment, the other keys, the
// last lines of its log.
func TestRenderPrintGolden(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 5, 30, 0, time.UTC)
	env := xpc.Dict("GREETING", "hello world", "MODE", "fast")
	reply := xpc.Dict(
		bootstrap.KeyLabel, "org.example.svc", bootstrap.KeyDomain, "user/501", bootstrap.KeyState, "running",
		"since", now.Add(-time.Hour), bootstrap.KeyPID, 4242, bootstrap.KeyLaunchReason, "demand", "requester_pid", 77,
		"started_at", now.Add(-5*time.Minute-3*time.Second), bootstrap.KeyRuns, 3,
		"program", "/usr/libexec/svc", "arguments", xpc.Array{xpc.String("/usr/libexec/svc"), xpc.String("--name"), xpc.String("a b")},
		"uid", 501, "gid", 20, "user", "alice", "group", "staff",
		"working_directory", "/", "stdin", "/dev/null", "stdout", "xpcd log", "stderr", "/var/log/svc.err",
		"rss_bytes", 12<<20+300<<10, "threads", 6, "cpu_user_ms", 1500, "cpu_system_ms", 230,
		"log", xpc.Array{xpc.String("started"), xpc.String("listening")},
	)
	reply.Set("environment", env)
	var b strings.Builder
	renderPrintAt(&b, reply, now)
	want := `● user/501/org.example.svc
    State: running since 2026-12-03 12:00:27 UTC; 5m3s ago
      PID: 4242 (launched: demand, by pid 77)
  Program: /usr/libexec/svc
Arguments: /usr/libexec/svc --name "a b"
     User: alice (uid 501), group staff (gid 20)
Directory: /
    Stdin: /dev/null
   Stdout: xpcd log
   Stderr: /var/log/svc.err
   Memory: 12.3M resident, 6 threads
      CPU: 1.73s (user 1.5s, system 230ms)
Environment:
  GREETING=hello world
  MODE=fast
Details:
	runs = 3

Log:
  started
  listening
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	// A job that does not run: its definition, no instance; values
	// withheld show as names.
	stopped := xpc.Dict(bootstrap.KeyLabel, "org.example.svc", bootstrap.KeyDomain, "system", bootstrap.KeyState, "waiting",
		"since", now.Add(-time.Minute), "program", "/usr/libexec/svc", "user_name", "daemon",
		"environment_names", xpc.Array{xpc.String("TOKEN")})
	b.Reset()
	renderPrintAt(&b, stopped, now)
	want = `○ system/org.example.svc
  State: waiting since 2026-12-03 12:04:30 UTC; 1m0s ago
Program: /usr/libexec/svc
   User: daemon
Environment (values shown to root and the domain's user):
  TOKEN
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// After a crash, or a launch that failed, the status block says how the
// last instance ended and why, as systemctl status's Active and Main PID
// lines do, rather than among the details.
func TestRenderPrintLastExit(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 5, 30, 0, time.UTC)
	reply := xpc.Dict(bootstrap.KeyLabel, "org.example.svc", bootstrap.KeyDomain, "system", bootstrap.KeyState, "waiting",
		"since", now.Add(-time.Minute), "program", "/usr/libexec/svc", bootstrap.KeyRuns, 1,
		bootstrap.KeyLastExit, "exited with status 2", "last_exit_status", 2, "last_exit_at", now.Add(-time.Minute),
		"error", "launch failed: spawn /usr/libexec/svc: no such file or directory")
	var b strings.Builder
	renderPrintAt(&b, reply, now)
	want := `○ system/org.example.svc
    State: waiting since 2026-12-03 12:04:30 UTC; 1m0s ago
  Program: /usr/libexec/svc
Last exit: exited with status 2 at 2026-12-03 12:04:30 UTC; 1m0s ago
    Error: launch failed: spawn /usr/libexec/svc: no such file or directory
Details:
	runs = 1
	last_exit_status = 2
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// xpcctl print of a running job shows its process's numbers, end to end.
func TestPrintRunningJob(t *testing.T) {
	plist := xpctest.AgentPlist("test.ctl.status", []string{"/bin/sleep", "60"}, nil,
		map[string]any{"RunAtLoad": true, "EnvironmentVariables": map[string]string{"GREETING": "hi there"}})
	s := xpctest.NewServer(t, xpctest.WithPlist("status.plist", plist))
	t.Setenv(bootstrap.RootEnv, s.Root)
	target := "user/" + strconv.Itoa(os.Geteuid()) + "/test.ctl.status"
	var r result
	deadline := time.Now().Add(15 * time.Second)
	for {
		r = runCmd(t, nil, "print", target)
		if strings.Contains(r.stdout, "Memory:") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{"● " + target, "State: running since", "Arguments: /bin/sleep 60", "GREETING=hi there",
		"User: ", "(uid " + strconv.Itoa(os.Getuid()) + ")", "Memory: ", "CPU: ", "Stdout: xpcd log", "Details:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("print lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	// --json keeps the reply as it is.
	r = runCmd(t, nil, "print", "--json", target)
	if r.code != 0 || !strings.Contains(r.stdout, `"rss_bytes"`) || !strings.Contains(r.stdout, `"arguments"`) {
		t.Errorf("print --json:\n%s%s", r.stdout, r.stderr)
	}
}

// What xpcctl renders of xpcd's replies reaches the terminal with its
// control characters escaped: a user's plist could otherwise retitle,
// clear or drive the terminal of root reading its print.
func TestRenderEscapesControls(t *testing.T) {
	// XML cannot carry an escape character: a binary plist can.
	bad := "\x1b]0;owned\a\x1b[2J\rhidden"
	plist, err := howettplist.Marshal(map[string]any{"Label": "test.ctl.escape", "Program": "/nonexistent/" + bad,
		"ProgramArguments": []string{"sh", bad}, "WorkingDirectory": "/" + bad}, howettplist.BinaryFormat)
	if err != nil {
		t.Fatal(err)
	}
	s := xpctest.NewServer(t, xpctest.WithPlist("escape.plist", plist))
	t.Setenv(bootstrap.RootEnv, s.Root)
	target := "user/" + strconv.Itoa(os.Geteuid()) + "/test.ctl.escape"
	// And in errors: a kickstart of a job whose program does not exist.
	r := runCmd(t, nil, "kickstart", target)
	if r.code == 0 || strings.ContainsAny(r.stderr, "\x1b\a\r") || !strings.Contains(r.stderr, `\x1b]0;owned`) {
		t.Errorf("kickstart: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"print", target}, {"blame", target}, {"list"}} {
		r := runCmd(t, nil, args...)
		if r.code != 0 || strings.ContainsAny(r.stdout, "\x1b\a\r") {
			t.Errorf("%s: exit %d, control characters in:\n%q%s", args[0], r.code, r.stdout, r.stderr)
		}
		if args[0] == "print" && !strings.Contains(r.stdout, `\x1b]0;owned\a\x1b[2J\rhidden`) {
			t.Errorf("print does not show the argument escaped:\n%s", r.stdout)
		}
	}
}
