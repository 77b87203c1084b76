package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/bundletest"
	"github.com/goxpc/xpc/xpctest"
)

// app register, status, watch, list, unregister, on a bundle's main app
// and agent; approval on a --user instance, which has no daemons, refuses
// a daemon with a clear error.
func TestAppCommands(t *testing.T) {
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, s.Root)
	root := bundletest.Make(t, t.TempDir(), bundletest.Spec{Identifier: "org.example.ctlapp",
		Agents: []bundletest.PlistSpec{{Label: "org.example.ctlapp.agent"}}})
	if r := runCmd(t, nil, "app", "status", root); r.code != 0 || r.stdout != "not-registered\n" {
		t.Fatalf("status: %+v", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &watchRun{done: make(chan int, 1), cancel: cancel, deadline: time.Now().Add(15 * time.Second)}
	go func() { w.done <- run(ctx, []string{"app", "watch", root}, nil, &w.out, &w.err) }()
	w.waitFor(t, &w.out, " not-registered")

	dom := fmt.Sprintf("user/%d", os.Geteuid())
	if r := runCmd(t, nil, "app", "register", root); r.code != 0 || r.stdout != "enabled "+dom+"/org.example.ctlapp\n" {
		t.Fatalf("register: %+v", r)
	}
	w.waitFor(t, &w.out, " enabled")
	if r := runCmd(t, nil, "app", "register", "--agent", "org.example.ctlapp.agent.plist", root); r.code != 0 || !strings.Contains(r.stdout, "enabled") {
		t.Fatalf("register --agent: %+v", r)
	}
	r := runCmd(t, nil, "app", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "enabled  agent org.example.ctlapp.agent.plist  "+dom+"/org.example.ctlapp.agent") ||
		!strings.Contains(r.stdout, "enabled  main") {
		t.Fatalf("list: %+v", r)
	}
	if r := runCmd(t, nil, "app", "unregister", root); r.code != 0 || r.stdout != "not-registered\n" {
		t.Fatalf("unregister: %+v", r)
	}
	for deadline := time.Now().Add(15 * time.Second); strings.Count(w.out.String(), " not-registered\n") < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("watch printed %q, want not-registered after unregister", w.out.String())
		}
	}
	r = runCmd(t, nil, "app", "unregister", root)
	if r.code == 0 || !strings.HasPrefix(r.stderr, "xpcctl app unregister: "+root+": not-registered: ") {
		t.Fatalf("unregister again: %+v", r)
	}
	r = runCmd(t, nil, "app", "register", "--daemon", "x.plist", root)
	if r.code == 0 || !strings.Contains(r.stderr, "system instance") {
		t.Fatalf("register --daemon on a --user instance: %+v", r)
	}
	r = runCmd(t, nil, "app", "status", root+"-gone")
	if r.code != 0 || r.stdout != "not-found\n" {
		t.Fatalf("status of a bundle that is not there: %+v", r)
	}
	cancel()
	<-w.done
}

// approval list, approve and deny: the list's header, and an id nobody
// has refused in xpcctl's error shape.
func TestApprovalCommands(t *testing.T) {
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, s.Root)
	if r := runCmd(t, nil, "approval", "list"); r.code != 0 || !strings.HasPrefix(r.stdout, "ID  APPROVED  UID  JOB  IDENTITY  USER") {
		t.Fatalf("approval list: %+v", r)
	}
	for _, verb := range []string{"approve", "deny"} {
		r := runCmd(t, nil, "approval", verb, "0badc0de")
		if r.code == 0 || !strings.HasPrefix(r.stderr, "xpcctl approval "+verb+": 0badc0de: not-found: ") {
			t.Fatalf("approval %s of an id nobody has: %+v", verb, r)
		}
	}
	if r := runCmd(t, nil, "approval", "approve"); r.code != exitUsage {
		t.Fatalf("approval approve without an id: %+v", r)
	}
}
