package xpcd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// A set-user-ID root program run by another user, which made itself
// root through and through (setresuid(0,0,0)) as many such programs do,
// stands for its invoker's environment: its real uid is root then, so
// the real uid alone does not tell.
func init() {
	if os.Getenv("XPCD_TEST_HOSTILE_SETUID") != "1" {
		return
	}
	if err := syscall.Setresuid(0, 0, 0); err != nil {
		st, _ := os.ReadFile("/proc/self/status")
		os.Stderr.WriteString(err.Error() + "\n" + string(st))
		os.Exit(3)
	}
	os.Stdout.WriteString("ready\n")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// TestHostileSetUIDRootHasNoSession: a set-user-ID root application that
// sets its real uid to root too still has its invoker's environment
// (AT_SECURE): its services must not get that session as root's.
func TestHostileSetUIDRootHasNoSession(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "hostile-s2-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "suid")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prog, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(prog, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prog)
	cmd.Env = []string{"XPCD_TEST_HOSTILE_SETUID=1", "DISPLAY=:attacker", "XAUTHORITY=/tmp/attacker"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242, Groups: []uint32{}}}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		cmd.Process.Kill()
		t.Fatalf("set-user-ID helper: %q %v (%v, dir %s)", buf, err, cmd.Wait(), dir)
	}
	pid := cmd.Process.Pid
	if ruid, err := realUID(pid); err != nil || ruid != 0 {
		t.Fatalf("helper's real uid %d %v, want 0", ruid, err)
	}
	p := &xpc.Peer{PID: pid, UID: 0, GID: 4242}
	var sess map[string]string
	var isSetID bool
	asUser(callerIdent(p.UID, p.GID, true), func() error {
		isSetID = setID(p)
		if !isSetID {
			sess = readSession(pid)
		}
		return nil
	})
	if !isSetID {
		t.Errorf("a set-user-ID root program (real uid made 0) run by uid 4242 is not taken for set-user-ID: its services, run as root, get its invoker's session %q", sess)
	}
}

// Odd spellings of a pid or apps domain's job reach no job: not another
// spelling of the application's own, nor anything for another user.
func TestHostileAppJobOddTargets(t *testing.T) {
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.start()
	const svcName, userSvc = "org.test.hs2.helper", "org.test.hs2.shared"
	_, app := startNobodyApp(t, h, "org.test.hs2", svcName, userSvc)
	inst, shared := app.lookup(svcName), app.lookup(userSvc)
	pid := strconv.Itoa(app.pid)
	a := strconv.Itoa(isoUserA)
	odd := []string{
		"pid/0/" + svcName, "pid/-1/" + svcName, "pid/0" + pid + "/" + svcName, "pid/+" + pid + "/" + svcName,
		"pid/" + pid + "/" + svcName + "/", "pid/" + pid + "//" + svcName, "pid/" + pid + "/", "pid//" + svcName,
		"pid/" + pid + " /" + svcName, "pid/" + pid + "/" + strings.Repeat("x", 1<<16),
		"apps/4294967296/" + userSvc, "apps/" + strconv.Itoa(isoUserA+1<<32) + "/" + userSvc,
		"apps/0" + a + "/" + userSvc, "apps/+" + a + "/" + userSvc, "apps/" + a + "/", "apps/" + a + "/" + userSvc + "/",
		"apps/system/", "apps/System/" + userSvc, "apps/-1/" + userSvc, "apps//" + userSvc,
	}
	for _, target := range odd {
		for _, op := range []string{bootstrap.OpKill, bootstrap.OpKickstart} {
			r, err := h.admin(op, bootstrap.KeyTarget, target, bootstrap.KeyKill, true)
			if err == nil {
				t.Errorf("root's %s of %.80q: %s, want refused", op, target, xpc.Format(r))
			}
		}
	}
	var steps []isoStep
	for i, target := range []string{"pid/" + pid + "/" + svcName, "apps/" + a + "/" + userSvc, "apps/system/" + userSvc} {
		steps = append(steps,
			isoStep{ID: "kill" + strconv.Itoa(i), Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpKill, bootstrap.KeyTarget: target},
				Ints: map[string]int64{bootstrap.KeySignal: int64(syscall.SIGKILL)}},
			isoStep{ID: "kick" + strconv.Itoa(i), Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpKickstart, bootstrap.KeyTarget: target, bootstrap.KeyKill: true}})
	}
	for id, r := range isoClient(t, in.exe, 4242, 4242, h.dir, steps) {
		if r.OK || r.Reason != bootstrap.ReasonNotFound {
			t.Errorf("another user's %s: %+v, want not-found", id, r)
		}
	}
	if !runs(inst) || !runs(shared) {
		t.Fatalf("an instance is gone after odd or foreign requests (%d %v, %d %v)", inst, runs(inst), shared, runs(shared))
	}
	// The application exits: its instance goes, and cannot be started again.
	target := "pid/" + pid + "/" + svcName
	app.cmd.Process.Kill()
	app.cmd.Wait()
	waitFor(t, "the instance to go with its application", func() bool { return !runs(inst) })
	waitFor(t, "the pid domain to go", func() bool {
		_, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, target)
		return err != nil
	})
	if r, err := h.admin(bootstrap.OpKickstart, bootstrap.KeyTarget, target); err == nil {
		t.Errorf("kickstart of %s after its application exited: %s", target, xpc.Format(r))
	}
}
