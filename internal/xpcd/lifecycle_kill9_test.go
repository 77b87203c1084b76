package xpcd

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// The real xpcd (cmd/xpcd, built here) is killed with SIGKILL while a
// service it launched runs. The service lives on; a new xpcd on the same
// root adopts it (same pid, adopted), new clients reach it, and the
// enable/disable overrides made before the kill are still in force.
func TestLifecycleAdoptAfterKill9(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	bin := filepath.Join(h.dir, "bin")
	os.Mkdir(bin, 0o755)
	xpcdBin := filepath.Join(buildPackages(t, bin, "github.com/goxpc/xpc/cmd/xpcd"), "xpcd")

	h.writePlist(h.lcJob("test.k9", []string{"test.k9.svc"}, nil, map[string]any{"ExitTimeOut": 5}, ""))
	h.writePlist(h.lcJob("test.k9.off", []string{"test.k9.off.svc"}, nil, nil, ""))
	h.writePlist(h.lcJob("test.k9.on", []string{"test.k9.on.svc"}, nil, map[string]any{"Disabled": true}, ""))

	logPath := filepath.Join(h.dir, "xpcd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("xpcd's log:\n%s", b)
		}
	})
	startXpcd := func() (*exec.Cmd, <-chan struct{}) {
		t.Helper()
		cmd := exec.Command(xpcdBin, "--user", "--root", h.dir, "--log-level", "debug")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		waitFor(t, "xpcd to answer", func() bool {
			select {
			case <-exited:
				t.Fatalf("xpcd exited: %v", cmd.ProcessState)
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			c, err := xpc.DialUnix(ctx, h.paths.Socket)
			if err != nil {
				return false
			}
			c.Activate()
			defer c.Cancel()
			_, err = c.SendWithReply(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpList))
			return err == nil
		})
		return cmd, exited
	}

	x1, x1exited := startXpcd()
	c, ev := h.serviceConn("test.k9.svc")
	pid := ping(t, c)
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	t.Cleanup(func() { unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0) })
	if d := h.print("test.k9"); d.Get("adopted") != nil || intOf(d, "pid") != pid {
		t.Fatalf("before the kill: %s", xpc.Format(d))
	}
	// Overrides (written before the reply), and the process record.
	h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, h.target("test.k9.off"))
	h.mustAdmin(bootstrap.OpEnable, bootstrap.KeyTarget, h.target("test.k9.on"))
	waitFor(t, "the service's process record", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.paths.StateDir, processesFile))
		var doc processesDoc
		if json.Unmarshal(b, &doc) != nil {
			return false
		}
		for _, r := range doc.Processes {
			if r.Label == "test.k9" && r.PID == pid {
				return true
			}
		}
		return false
	})

	x1.Process.Signal(syscall.SIGKILL)
	<-x1exited
	// The service outlives it, and so does the client's connection to it.
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		t.Fatalf("the service died with xpcd: %v", err)
	}
	if got := ping(t, c); got != pid {
		t.Fatalf("while xpcd is dead, pid %d answered, want %d", got, pid)
	}

	x2, x2exited := startXpcd()
	d := h.print("test.k9")
	if strOf(d, "state") != "running" || intOf(d, "pid") != pid || d.Get("adopted") != xpc.Bool(true) {
		t.Fatalf("after the restart: %s", xpc.Format(d))
	}
	waitFor(t, "the service to check in with the new xpcd", func() bool {
		a, _ := h.print("test.k9").Array("checked_in")
		return len(a) == 1
	})
	c2, _ := h.serviceConn("test.k9.svc")
	if got := ping(t, c2); got != pid {
		t.Errorf("a new client reached pid %d, want the adopted %d", got, pid)
	}
	if got := ping(t, c); got != pid {
		t.Errorf("the old client reached pid %d, want %d", got, pid)
	}
	if ev.has(xpc.ErrInterrupted) || ev.has(xpc.ErrInvalid) {
		t.Errorf("the client's connection was disturbed by xpcd's restart: %s", ev)
	}
	if d := h.print("test.k9.off"); d.Get("disabled") != xpc.Bool(true) || strOf(d, "state") != "disabled" {
		t.Errorf("the job disabled before the kill: %s", xpc.Format(d))
	}
	if d := h.print("test.k9.on"); d.Get("disabled") != xpc.Bool(false) || strOf(d, "state") != "waiting" {
		t.Errorf("the job enabled before the kill: %s", xpc.Format(d))
	}
	if _, err := h.lookup("test.k9.off.svc"); reasonOf(err) != "not-found" {
		t.Errorf("lookup of the disabled job's name: %v", err)
	}

	// The adopted process is stopped through the new xpcd.
	if r := h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.k9"), bootstrap.KeyWait, true); strOf(r, bootstrap.KeyStatus) != "unloaded" {
		t.Errorf("bootout: %s", xpc.Format(r))
	}
	waitFor(t, "the adopted service to exit", func() bool {
		pfd := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, _ := unix.Poll(pfd, 0)
		return n > 0
	})
	// And the new xpcd shuts down cleanly.
	x2.Process.Signal(syscall.SIGTERM)
	<-x2exited
	if code := x2.ProcessState.ExitCode(); code != 0 {
		t.Errorf("xpcd after SIGTERM: exit status %d", code)
	}
}
