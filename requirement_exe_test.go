package xpc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRequirementUnitOf: a bare unit name is the process's systemd unit,
// as sd_pid_get_unit tells it (the first component that is not a slice),
// or a slice above it; what lies below the unit, which a delegate of the
// unit arranges, is not looked at. A "/" name is a path prefix.
func TestRequirementUnitOf(t *testing.T) {
	const userApp = "/user.slice/user-1001.slice/user@1001.service/app.slice/sshd.service"
	for _, tc := range []struct {
		cg, unit string
		met      bool
	}{
		{"/system.slice/sshd.service", "sshd.service", true},
		{"/system.slice/sshd.service", "system.slice", true},
		{"/system.slice/sshd.service/payload", "sshd.service", true},
		{"/system.slice/sshd.service/payload", "payload", false},
		{userApp, "user@1001.service", true},
		{userApp, "user.slice", true},
		{userApp, "user-1001.slice", true},
		{userApp, "sshd.service", false}, // the delegate's own naming
		{userApp, "app.slice", false},
		{"/user.slice/user-1000.slice/session-3.scope", "session-3.scope", true},
		{"/init.scope", "init.scope", true},
		{"/_cpu.service", "cpu.service", true}, // systemd's escape
		{"/_cpu.service", "_cpu.service", false},
		{"/__x.service", "_x.service", true},
		{"/", "x.service", false},
		{"/system.slice", "system.slice", true},
		{"/system.slice", "x.service", false},
		{"/../../system.slice/sshd.service", "sshd.service", false}, // outside the cgroup namespace
		{"/../../system.slice/sshd.service", "system.slice", false},
		{userApp, "/user.slice/user-1001.slice", true},
		{userApp, userApp, true},
		{userApp, "/user.slice/user-1001", false},
		{userApp, "/", true},
		{"/system.slice2/x.service", "/system.slice", false},
	} {
		if got := inUnit(tc.cg, tc.unit); got != tc.met {
			t.Errorf("inUnit(%q, %q) = %v, want %v", tc.cg, tc.unit, got, tc.met)
		}
	}
}

// copyFile copies the file at src to a new file dst, executable.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// startAt starts cmd and waits until its /proc/PID/exe shows exe.
func startAt(t *testing.T, cmd *exec.Cmd, exe string) *child {
	t.Helper()
	c := startChild(t, cmd)
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(time.Millisecond) {
		if got, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", c.peer.PID)); got == exe {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child did not run %s", exe)
		}
	}
}

// TestRequirementExeSameFile: "exe PATH" is met by a process running the
// file at PATH, whatever path it ran it from (a hard link, a symbolic
// link named in the requirement), and not by another file, even one with
// the same contents.
func TestRequirementExeSameFile(t *testing.T) {
	dir := t.TempDir()
	helper, link, copied := filepath.Join(dir, "helper"), filepath.Join(dir, "link"), filepath.Join(dir, "copy")
	copyFile(t, realPath(t, "sleep"), helper)
	copyFile(t, helper, copied)
	if err := os.Link(helper, link); err != nil {
		t.Skipf("no hard link: %v", err)
	}
	sym := filepath.Join(dir, "sym")
	if err := os.Symlink(helper, sym); err != nil {
		t.Fatal(err)
	}

	c := startAt(t, exec.Command(helper, "60"), helper)
	wantMet(t, c.peer, "exe "+quoteValue(helper))
	wantMet(t, c.peer, "exe "+quoteValue(sym))

	c = startAt(t, exec.Command(link, "60"), link)
	wantMet(t, c.peer, "exe "+quoteValue(helper))
	wantMet(t, c.peer, "exe "+quoteValue(link))

	c = startAt(t, exec.Command(copied, "60"), copied)
	req := "exe " + quoteValue(helper)
	wantFail(t, c.peer, req, req, "")
	wantMet(t, c.peer, "exe "+quoteValue(copied))
	none := "exe " + quoteValue(filepath.Join(dir, "none"))
	wantFail(t, c.peer, none, none, "no such file")
	wantMet(t, c.peer, "not "+none)
	notDir := "exe " + quoteValue(filepath.Join(copied, "x"))
	wantFail(t, c.peer, notDir, notDir, "not a directory")
}

// TestRequirementExeBindMount: a process that bind-mounts another file
// over PATH in a mount namespace of its own and runs it from there (a
// user can, in a user namespace) shows PATH as its /proc/PID/exe, and
// fails "exe PATH": the file at PATH, as the checker sees it, is not the
// one it runs.
func TestRequirementExeBindMount(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a mount namespace needs root")
	}
	sh, mount := realPath(t, "sh"), realPath(t, "mount")
	dir := t.TempDir()
	helper, fake := filepath.Join(dir, "helper"), filepath.Join(dir, "fake")
	copyFile(t, realPath(t, "sleep"), helper)
	copyFile(t, realPath(t, "sleep"), fake)
	// Go makes the child's mounts private (MS_REC|MS_PRIVATE on /) after
	// unsharing CLONE_NEWNS, so the bind mount stays in its namespace.
	cmd := exec.Command(sh, "-c", `"$1" --bind "$2" "$3" && exec "$3" 60`, "sh", mount, fake, helper)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	c := startAt(t, cmd, helper)
	var inChild, outside syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/exe", c.peer.PID), &inChild); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(helper, &outside); err != nil {
		t.Fatal(err)
	}
	if inChild.Ino == outside.Ino {
		t.Fatal("the bind mount is seen outside the child's mount namespace")
	}
	req := "exe " + quoteValue(helper)
	re := wantFail(t, c.peer, req, req, "its executable is not the file at "+helper)
	if want := fmt.Sprintf("pid %d uid 0 exe %s", c.peer.PID, helper); re.Peer != want {
		t.Errorf("peer %q, want %q", re.Peer, want)
	}
	if err := MustParseRequirement(req).recheck(c.peer); !errors.Is(err, ErrPeerRequirement) {
		t.Errorf("recheck: %v", err)
	}
	wantMet(t, c.peer, "exe "+quoteValue(fake))
}

// TestRequirementExeOtherDevice: a file with the inode number of the file
// at PATH on another device is another file.
func TestRequirementExeOtherDevice(t *testing.T) {
	exe := testExe(t)
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   exeID
		want verdict
	}{
		{exeID{dev: st.Dev, ino: st.Ino}, met},
		{exeID{dev: st.Dev + 1, ino: st.Ino}, unmet},
		{exeID{dev: st.Dev, ino: st.Ino + 1}, unmet},
	} {
		f := newPeerFacts(selfPeer(t), nil)
		f.exe = lazy[exeFact]{v: exeFact{path: exe, id: tc.id, fd: -1}, done: true}
		if v, err := f.exeIs(exe); v != tc.want {
			t.Errorf("%+v: %v, %v; want %v", tc.id, v, err, tc.want)
		}
	}
}
