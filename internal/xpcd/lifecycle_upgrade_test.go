package xpcd

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// A clean service whose executable is replaced on disk (a rename over it,
// as package managers do) is stopped and the next request reaches a new
// process. The client, through the library's service connection, hears
// that the service is about to exit and then that it went away, both for
// the upgrade (ErrTerminationImminent, ErrInterrupted), never ErrInvalid,
// and its next call succeeds.
func TestLifecycleUpgradeExecutableReplaced(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.UpgradeInterval = 20 * time.Millisecond
	bin := filepath.Join(h.dir, "bin")
	os.Mkdir(bin, 0o755)
	prog := filepath.Join(bin, "service")
	copyFile(t, h.exe, prog)
	h.writePlist(h.lcJob("test.lup", []string{"test.lup.svc"}, map[string]string{"GORACE": raceNoExitSleep},
		map[string]any{"ExitTimeOut": 10}, prog))
	h.start()
	c, ev := h.serviceConn("test.lup.svc")
	pid1 := ping(t, c)
	if d := h.print("test.lup"); d.Get("upgrade_pending") != nil || intOf(d, "runs") != 1 {
		t.Fatalf("before the upgrade: %s", xpc.Format(d))
	}

	// A different build: the same program with one more byte.
	b, err := os.ReadFile(h.exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prog+".new", append(b, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(prog+".new", prog); err != nil {
		t.Fatal(err)
	}

	// xpcd notices and stops it (it is clean); the service tells its
	// peers why before it goes, and exits at once on SIGTERM.
	waitFor(t, "the client to hear that the service went away", func() bool { return ev.has(xpc.ErrInterrupted) })
	ev.wantAnnounced(t, xpc.ReasonUpgrade)
	d := h.waitState("test.lup", "waiting")
	if strOf(d, "stop_reason") != "upgrade" || intOf(d, "runs") != 1 {
		t.Errorf("after the old instance exited: %s", xpc.Format(d))
	}
	pid2 := pingInterrupted(t, c)
	if pid2 == pid1 || pid2 == 0 {
		t.Fatalf("after the upgrade, served by pid %d (the old one was %d)", pid2, pid1)
	}
	if exe, err := os.Readlink("/proc/" + strconv.Itoa(pid2) + "/exe"); err != nil || exe != prog {
		t.Errorf("the new instance runs %q (%v), want the new %s", exe, err, prog)
	}
	d = h.print("test.lup")
	if intOf(d, "runs") != 2 || d.Get("upgrade_pending") != nil || strOf(d, "state") != "running" {
		t.Errorf("after the relaunch: %s", xpc.Format(d))
	}
	if ev.has(xpc.ErrInvalid) {
		t.Errorf("the client's connection saw ErrInvalid across an upgrade: events %s", ev)
	}
	if !ev.has(xpc.ErrInterrupted) {
		t.Errorf("the client's handler was not told of the interruption: events %s", ev)
	}
}

// Bootstrap of the same label with other contents (here another
// environment) upgrades the running clean service: it is stopped, and the
// client's next call reaches a new process running the new definition.
func TestLifecycleUpgradePlistChanged(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	other := filepath.Join(h.dir, "elsewhere")
	os.Mkdir(other, 0o755)
	job := func(v string) testJob {
		return h.lcJob("test.lupp", []string{"test.lupp.svc"}, map[string]string{"XPCD_LC_VALUE": v}, nil, "")
	}
	path := h.writePlist(job("one"), other)
	h.start()
	if s := strOf(h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, path), bootstrap.KeyStatus); s != "loaded" {
		t.Fatalf("bootstrap: %q", s)
	}
	c, ev := h.serviceConn("test.lupp.svc")
	r, err := call(t, c, "ping")
	if err != nil || strOf(r, "value") != "one" {
		t.Fatalf("first call: %v %v", r, err)
	}
	pid1 := intOf(r, "pid")

	// The same contents: nothing happens.
	if s := strOf(h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, path), bootstrap.KeyStatus); s != "already loaded" {
		t.Fatalf("bootstrap of the same plist: %q", s)
	}
	h.writePlist(job("two"), other)
	if s := strOf(h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, path), bootstrap.KeyStatus); s != "upgrade pending" {
		t.Fatalf("bootstrap of a changed plist while running: %q", s)
	}
	d := h.waitState("test.lupp", "waiting")
	if strOf(d, "stop_reason") != "upgrade" || d.Get("upgrade_pending") != nil {
		t.Errorf("after the upgrade: %s", xpc.Format(d))
	}
	waitFor(t, "the client's connection to hear of it", func() bool { return ev.has(xpc.ErrInterrupted) || ev.has(xpc.ErrInvalid) })
	if !ev.has(xpc.ErrInterrupted) || ev.has(xpc.ErrInvalid) {
		t.Fatalf("the client's connection across the upgrade: events %s, want ErrInterrupted only", ev)
	}

	var r2 *xpc.Dictionary
	for try := 0; ; try++ {
		r2, err = call(t, c, "ping")
		if err == nil || !errors.Is(err, xpc.ErrInterrupted) || try == 3 {
			break
		}
	}
	if err != nil {
		t.Fatalf("call after the upgrade: %v", err)
	}
	if intOf(r2, "pid") == pid1 || strOf(r2, "value") != "two" {
		t.Errorf("after the upgrade: %s (the old pid was %d)", xpc.Format(r2), pid1)
	}
	if ev.has(xpc.ErrInvalid) {
		t.Errorf("the client's connection saw ErrInvalid across an upgrade: events %s", ev)
	}
}
