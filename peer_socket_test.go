package xpc

import (
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// pairMakerEnv makes the test binary a process that makes a socket pair,
// sends one end to its parent over descriptor 3, and exits when the
// parent closes its end of descriptor 3.
const pairMakerEnv = "GOXPC_TEST_PAIR_MAKER"

func init() {
	if os.Getenv(pairMakerEnv) == "1" {
		os.Exit(pairMaker())
	}
}

func pairMaker() int {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 1
	}
	if err := unix.Sendmsg(3, []byte{1}, unix.UnixRights(fds[1]), nil, 0); err != nil {
		return 2
	}
	var b [1]byte
	unix.Read(3, b[:]) // until the parent closes its end
	return 0
}

// PeerOfSocket names the process that made a socket pair, whoever holds
// the end: here a child process, seen with its pid, uid and executable
// and a pidfd from the kernel; once that process has exited, it names
// nobody alive (no pidfd by pid, which could be another process's).
func TestPeerOfSocket(t *testing.T) {
	own, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(own[0]), "a"), os.NewFile(uintptr(own[1]), "b")
	defer b.Close()
	p, err := PeerOfSocket(a)
	a.Close()
	if err != nil || p.PID != os.Getpid() || p.UID != uint32(os.Geteuid()) || !p.Alive() {
		t.Fatalf("own pair: %v %v", p, err)
	}
	p.Close()
	if p.Alive() {
		t.Error("alive after Close")
	}

	ctl, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(ctl[0]), "ctl"), os.NewFile(uintptr(ctl[1]), "ctl-child")
	defer mine.Close()
	exe := testExe(t)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), pairMakerEnv+"=1")
	cmd.ExtraFiles = []*os.File{theirs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(ctl[0], buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	var fds []int
	if len(msgs) == 1 {
		fds, _ = unix.ParseUnixRights(&msgs[0])
	}
	if len(fds) != 1 {
		t.Fatalf("no socket from the child")
	}
	end := os.NewFile(uintptr(fds[0]), "end")
	defer end.Close()

	p, err = PeerOfSocket(end)
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != cmd.Process.Pid || p.Exe != exe || !p.Alive() || !p.PIDFDFromKernel {
		t.Errorf("the child's pair: %v (kernel pidfd %v), want pid %d %s", p, p.PIDFDFromKernel, cmd.Process.Pid, exe)
	}
	p.Close()

	mine.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	// (Linux 6.18 gives a pidfd of the exited process; others fail.)
	if p, err = PeerOfSocket(end); err == nil {
		defer p.Close()
		if p.Alive() {
			t.Errorf("the pair's maker has exited, yet %v is alive", p)
		}
	}
}
