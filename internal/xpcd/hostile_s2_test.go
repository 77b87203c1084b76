package xpcd

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
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
