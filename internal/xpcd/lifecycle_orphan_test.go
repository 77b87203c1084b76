package xpcd

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// A process xpcd started but never recorded (xpcd was killed between the
// fork and the write of processes.json, or the write failed) is found by
// the next xpcd through the marker in its environment: adopted if its job
// is loaded, with no second instance launched beside it, and stopped if
// its job is not loaded any more.

// TestXpcdProcess is not a test: it is an xpcd (on XPCD_TEST_XPCD_ROOT, a
// --user instance) that kills itself with SIGKILL right after it has
// started its first process, before anything of that process is recorded.
func TestXpcdProcess(t *testing.T) {
	root := os.Getenv("XPCD_TEST_XPCD_ROOT")
	if root == "" {
		t.Skip("not a test: the xpcd the orphan tests run, which dies right after a fork")
	}
	os.Exit(dyingXpcdMain(root))
}

func dyingXpcdMain(root string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(Config{Paths: bootstrap.ForRoot(root, true), User: true, Logger: log, PressureInterval: -1, UpgradeInterval: -1})
	if err != nil {
		log.Error("new", "err", err)
		return 1
	}
	d.sup.launcher.(*execLauncher).afterFork = func(*spawnSpec, int) {
		// As kill -9 would, before the process is recorded.
		if fd, err := unix.PidfdOpen(os.Getpid(), 0); err == nil {
			unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
		time.Sleep(testTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		log.Error("start", "err", err)
		return 1
	}
	<-ctx.Done()
	d.Close(context.Background())
	return 1
}

// runDyingXpcd runs TestXpcdProcess on the harness's root until it has
// killed itself after starting the first of its jobs' processes.
func runDyingXpcd(h *harness) {
	h.t.Helper()
	var out bytes.Buffer
	cmd := exec.CommandContext(testCtx(h.t), h.exe, "-test.run=^TestXpcdProcess$")
	cmd.Env = append(os.Environ(), "XPCD_TEST_XPCD_ROOT="+h.dir, "XPCD_TEST_HELPER=1")
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		h.t.Fatalf("xpcd was to kill itself right after a fork; it ended: %v\n%s", err, out.String())
	}
}

// plainJob is a plain daemon (no check-in) whose processes carry tag.
func (h *harness) plainJob(label, tag string, extra map[string]any) testJob {
	return h.lcJob(label, nil, map[string]string{"XPCD_LC_PLAIN": "1", "XPCD_LC_TAG": tag}, extra, "")
}

// taggedPIDs returns the pids of the processes whose environment has
// XPCD_LC_TAG=tag.
func taggedPIDs(t *testing.T, tag string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("XPCD_LC_TAG=" + tag)
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if slices.ContainsFunc(bytes.Split(b, []byte{0}), func(kv []byte) bool { return bytes.Equal(kv, want) }) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// theOrphan returns the one process carrying tag, and a pidfd on it that
// kills it when the test ends.
func theOrphan(t *testing.T, tag string) (int, int) {
	t.Helper()
	pids := taggedPIDs(t, tag)
	if len(pids) != 1 {
		t.Fatalf("processes left by the killed xpcd: %v, want one", pids)
	}
	fd, err := unix.PidfdOpen(pids[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		unix.Close(fd)
	})
	return pids[0], fd
}

// recordedPIDs returns the pids processes.json records for label.
func (h *harness) recordedPIDs(label string) []int {
	b, _ := os.ReadFile(filepath.Join(h.paths.StateDir, processesFile))
	var doc processesDoc
	json.Unmarshal(b, &doc)
	var pids []int
	for _, r := range doc.Processes {
		if r.Label == label {
			pids = append(pids, r.PID)
		}
	}
	return pids
}

// wantAdopted checks that pid is label's one instance, adopted, and that
// no other process of the job runs.
func (h *harness) wantAdopted(label, tag string, pid int) {
	h.t.Helper()
	d := h.print(label)
	if strOf(d, "state") != "running" || intOf(d, "pid") != pid || d.Get("adopted") != xpc.Bool(true) {
		h.t.Errorf("after the restart: %s; want running pid %d, adopted", xpc.Format(d), pid)
	}
	// print answers after the jobs that start at load were considered: a
	// second launch would have begun by now.
	if pids := taggedPIDs(h.t, tag); len(pids) != 1 || pids[0] != pid {
		h.t.Errorf("the job's processes: %v, want only %d", pids, pid)
	}
	if strings.Contains(h.logs.String(), "msg=launching") {
		h.t.Errorf("xpcd launched the job again beside its adopted process")
	}
}

func TestOrphanAdoptedAfterKillBeforeRecord(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tag := "kill-" + filepath.Base(h.dir)
	h.writePlist(h.plainJob("test.orphan", tag, map[string]any{"KeepAlive": true, "ExitTimeOut": 2}))
	runDyingXpcd(h)
	pid, _ := theOrphan(t, tag)
	if rec := h.recordedPIDs("test.orphan"); len(rec) > 0 {
		t.Fatalf("the process was recorded (%v) before xpcd died", rec)
	}
	h.start()
	h.wantAdopted("test.orphan", tag, pid)
}

func TestOrphanOfUnloadedJobStopped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tag := "gone-" + filepath.Base(h.dir)
	path := h.writePlist(h.plainJob("test.orphan.gone", tag, map[string]any{"RunAtLoad": true}))
	runDyingXpcd(h)
	_, pidfd := theOrphan(t, tag)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	h.start()
	waitFor(t, "the unloaded job's process to be stopped", func() bool {
		pfd := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, _ := unix.Poll(pfd, 0)
		return n > 0
	})
	if _, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, h.target("test.orphan.gone")); reasonOf(err) != "not-found" {
		t.Errorf("print of the unloaded job: %v", err)
	}
}

// mountFullTmpfs mounts a tmpfs on dir and fills it, so that no state can
// be written there.
func mountFullTmpfs(t *testing.T, dir string) {
	t.Helper()
	mountTmpfs(t, dir, "64k")
	fillUp(t, dir)
	if err := writeFileAtomic(dir, "probe", []byte("x")); err == nil {
		t.Fatal("the full tmpfs still takes writes")
	}
}

func TestOrphanAdoptedAfterStateWriteFailed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	mountFullTmpfs(t, h.paths.StateDir)
	tag := "full-" + filepath.Base(h.dir)
	h.writePlist(h.plainJob("test.orphan.full", tag, map[string]any{"RunAtLoad": true, "ExitTimeOut": 2}))
	h.cfg.StopServicesOnClose = false
	d1 := h.start()
	pid := intOf(h.waitState("test.orphan.full", "running"), "pid")
	h.close(d1) // the service runs on; its record is not written
	if rec := h.recordedPIDs("test.orphan.full"); len(rec) > 0 {
		t.Fatalf("the process was recorded (%v) on a full file system", rec)
	}
	if !strings.Contains(h.logs.String(), "state: write failed") {
		t.Fatal("no state write failed")
	}
	h.logs = &logBuffer{}
	h.cfg.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.cfg.StopServicesOnClose = true
	h.start()
	h.wantAdopted("test.orphan.full", tag, pid)
}
