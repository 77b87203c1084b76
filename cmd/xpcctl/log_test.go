package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

// log -n prints a job's last lines; log -f goes on with the new ones.
func TestLogCommand(t *testing.T) {
	script := `i=1; while [ $i -le 15 ]; do echo "line $i"; i=$((i+1)); done; sleep 1; echo "late line"; exec sleep 60`
	s := xpctest.NewServer(t, xpctest.WithPlist("test.logcmd.plist",
		xpctest.AgentPlist("test.logcmd", []string{"/bin/sh", "-c", script}, nil, map[string]any{"RunAtLoad": true})))
	t.Setenv(bootstrap.RootEnv, s.Root)
	target := "user/" + strconv.Itoa(os.Geteuid()) + "/test.logcmd"
	deadline := time.Now().Add(15 * time.Second)
	var r result
	for time.Now().Before(deadline) {
		if r = runCmd(t, nil, "log", "-n", "3", target); strings.Contains(r.stdout, "line 15") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.HasSuffix(lines[0], " out 6 line 13") || !strings.HasSuffix(lines[2], " out 6 line 15") {
		t.Fatalf("log -n 3: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, "log", target); len(strings.Split(strings.TrimSpace(r.stdout), "\n")) != bootstrap.LogLinesDefault {
		t.Errorf("log: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"log", "-f", "-n", "1", target}, nil, &out, &errb) }()
	for !strings.Contains(out.String(), "late line") {
		if time.Now().After(deadline) {
			t.Fatalf("log -f printed:\n%s%s", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("log -f: exit %d: %s", code, errb.String())
	}
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); len(got) != 2 || !strings.HasSuffix(got[0], "line 15") {
		t.Errorf("log -f -n 1:\n%s", out.String())
	}
	// print shows the last lines too.
	if r := runCmd(t, nil, "print", target); !strings.Contains(r.stdout, "\nLog:\n") || !strings.Contains(r.stdout, "late line") {
		t.Errorf("print: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A log with no records says so, on stderr.
	if r := runCmd(t, nil, "log", "user/"+strconv.Itoa(os.Geteuid())+"/test.never"); r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "has no records") {
		t.Errorf("log of a job that never wrote: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, "log", "-n", "-1", target); r.code != exitUsage {
		t.Errorf("log -n -1: exit %d", r.code)
	}
}
