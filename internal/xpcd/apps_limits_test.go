package xpcd

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// A user may have only maxAppsPerUser applications with Application
// instances at once: the next application's lookup is refused by rule
// app-instance-limit, and once one of the others exits (its instance stopped and
// its pid domain gone) there is room again. Root is not counted. The
// applications are sleep processes given a bundle by hand; the launcher
// is the state machine tests' fake.
func TestAppLimit(t *testing.T) {
	t.Parallel()
	fl := &fakeLauncher{}
	m := newSupervisor(supervisorConfig{
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		launcher: fl,
		domains:  map[string]uint32{DomainSystem: 0},
	})
	if err := m.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.close(context.Background()) })
	const name = "org.test.limit.helper"
	b := &bundle.Bundle{Root: "/nonexistent/Limit.app", Identifier: "org.test.limit",
		Services: []*bundle.Service{{Identifier: name, Name: "Helper", Executable: "/nonexistent/Limit.app/XPCServices/Helper.xpc/Helper"}}}
	app := func(uid uint32) (*pidClient, *exec.Cmd) {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		st, err := startTime(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		return &pidClient{pid: cmd.Process.Pid, start: st, uid: uid, bucket: uid, b: b}, cmd
	}
	lookup := func(a *pidClient) *opError {
		t.Helper()
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fds[0])
		fd := xpc.NewFD(os.NewFile(uintptr(fds[1]), "client"))
		r := &lookupReq{name: name, fd: fd, uid: a.uid, pid: a.pid, bucket: a.bucket, app: a}
		var oe *opError
		if err := m.call(context.Background(), func() { oe, _ = m.lookupFor(r) }); err != nil {
			t.Fatal(err)
		}
		if oe != nil {
			fd.Close()
		}
		return oe
	}
	const uid = 4242
	var first *exec.Cmd
	for i := range maxAppsPerUser {
		a, cmd := app(uid)
		if i == 0 {
			first = cmd
		}
		if oe := lookup(a); oe != nil {
			t.Fatalf("application %d: %v", i, oe)
		}
	}
	extra, _ := app(uid)
	oe := lookup(extra)
	if oe == nil || !strings.Contains(oe.desc, bootstrap.RuleAppInstanceLimit) {
		t.Fatalf("application %d: %v, want refused by %s", maxAppsPerUser+1, oe, bootstrap.RuleAppInstanceLimit)
	}
	if root, _ := app(0); lookup(root) != nil {
		t.Errorf("root's application refused")
	}
	// The fake instance of the first application, by its pid (spawns
	// finish in any order).
	var instPID int
	waitFor(t, "the first instance to be launched", func() bool {
		m.call(context.Background(), func() {
			if pd := m.apps.pids[first.Process.Pid]; pd != nil && pd.d.jobs[name] != nil && pd.d.jobs[name].inst != nil {
				instPID = pd.d.jobs[name].inst.pid
			}
		})
		return instPID > 0
	})
	var inst *fakeProc
	for _, p := range fl.launches() {
		if p.pid == instPID {
			inst = p
		}
	}
	first.Process.Kill()
	first.Wait()
	// It is stopped (app-exited), and ends.
	waitFor(t, "the first instance to be stopped", func() bool {
		inst.mu.Lock()
		defer inst.mu.Unlock()
		return len(inst.sigs) > 0
	})
	inst.die(exitStatus{known: true})
	waitFor(t, "room for another application", func() bool { return lookup(extra) == nil })
}
