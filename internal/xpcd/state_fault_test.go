package xpcd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
)

// mountTmpfs mounts a tmpfs of size bytes (mode 0700, root's) on dir, made
// if need be, until the test ends; it skips the test where mounting is
// impossible.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs takes root")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700")
	if errors.Is(err, unix.EPERM) {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	if err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// remount makes the tmpfs on dir read-only or writable again.
func remount(t *testing.T, dir string, readOnly bool) {
	t.Helper()
	flags := uintptr(unix.MS_REMOUNT)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	// EBUSY while xpcd has a file open for writing: a moment later it
	// has not.
	deadline := time.Now().Add(testTimeout)
	for {
		err := unix.Mount("tmpfs", dir, "tmpfs", flags, "")
		if err == nil {
			return
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			t.Fatalf("remount %s (read-only %v): %v", dir, readOnly, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// fillUp writes into dir until its file system is full.
func fillUp(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return
		}
	}
}

func disabledOf(h *harness, label string) bool {
	h.t.Helper()
	v, _ := h.print(label).Bool("disabled")
	return v
}

// expectStateErr checks that err is an error reply with reason and a
// description holding every one of want.
func expectStateErr(t *testing.T, what string, err error, reason string, want ...string) {
	t.Helper()
	if reasonOf(err) != reason {
		t.Fatalf("%s: %v, want reason %s", what, err, reason)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q does not say %q", what, err, w)
		}
	}
}

// An enable whose override cannot be written (the state directory was
// made read-only under xpcd) fails with io-error, naming the file and the
// cause, and changes nothing: the job stays disabled, now and after a
// restart.
func TestStateWriteFailsChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	mountTmpfs(t, h.paths.StateDir, "64k")
	h.writePlist(testJob{label: "test.wfail", names: []string{"test.wfail.svc"}})
	d1 := h.start()
	h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, h.target("test.wfail"))

	remount(t, h.paths.StateDir, true)
	_, err := h.admin(bootstrap.OpEnable, bootstrap.KeyTarget, h.target("test.wfail"))
	expectStateErr(t, "enable on a read-only state directory", err, bootstrap.ReasonIO,
		filepath.Join(h.paths.StateDir, overridesFile), "read-only file system")
	if !disabledOf(h, "test.wfail") {
		t.Fatal("the failed enable enabled the job")
	}
	if _, err := h.lookup("test.wfail.svc"); err == nil {
		t.Error("lookup of the job a failed enable was for succeeded")
	}
	dom := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, UserDomain(uint32(os.Geteuid())))
	if o, _ := dom.Dictionary("overrides"); o == nil || o.Get("test.wfail") != xpc.Bool(true) {
		t.Errorf("overrides after the failed enable: %s", xpc.Format(dom))
	}

	remount(t, h.paths.StateDir, false)
	h.close(d1)
	h.start()
	if !disabledOf(h, "test.wfail") {
		t.Error("after a restart the job is enabled")
	}
}

// On a full disk a disable fails with io-error (ENOSPC) and the job stays
// enabled: its service is still looked up.
func TestStateDiskFull(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	mountTmpfs(t, h.paths.StateDir, "64k")
	h.writePlist(testJob{label: "test.full", names: []string{"test.full.svc"}})
	h.start()
	fillUp(t, h.paths.StateDir)

	_, err := h.admin(bootstrap.OpDisable, bootstrap.KeyTarget, h.target("test.full"))
	expectStateErr(t, "disable on a full disk", err, bootstrap.ReasonIO,
		filepath.Join(h.paths.StateDir, overridesFile), "no space left on device", "nothing changed")
	if disabledOf(h, "test.full") {
		t.Fatal("the failed disable disabled the job")
	}
	if pid := h.lookupPing("test.full.svc"); pid <= 0 {
		t.Errorf("service pid %d", pid)
	}
	if ov := h.mustAdmin(bootstrap.OpPrintDisabled); ov != nil {
		if o, _ := ov.Dictionary("overrides"); o == nil || o.Len() != 0 {
			t.Errorf("overrides after the failed disable: %s", xpc.Format(ov))
		}
	}
}

// On a read-only state directory xpcd starts, adopts the service the
// previous xpcd left running, serves it, keeps the overrides it reads,
// says in print why its state is read-only, and refuses every request
// that would change overrides.
func TestStateReadOnlyAtStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	mountTmpfs(t, h.paths.StateDir, "64k")
	h.cfg.StopServicesOnClose = false
	h.writePlist(testJob{label: "test.ro", names: []string{"test.ro.svc"}})
	h.writePlist(testJob{label: "test.ro.off", names: []string{"test.ro.off.svc"}})
	d1 := h.start()
	h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, h.target("test.ro.off"))
	pid := ping(t, h.mustLookup("test.ro.svc"))
	h.close(d1)

	remount(t, h.paths.StateDir, true)
	h.cfg.StopServicesOnClose = true
	h.start()
	d := h.print("test.ro")
	if strOf(d, "state") != "running" || intOf(d, "pid") != pid || d.Get("adopted") != xpc.Bool(true) {
		t.Fatalf("not adopted: %s", xpc.Format(d))
	}
	if d.Get(bootstrap.KeyStateReadOnly) != xpc.Bool(true) || !strings.Contains(strOf(d, bootstrap.KeyStateReadOnlyWhy), "read-only file system") {
		t.Errorf("print of a job does not say the state is read-only: %s", xpc.Format(d))
	}
	dom := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, UserDomain(uint32(os.Geteuid())))
	if dom.Get(bootstrap.KeyStateReadOnly) != xpc.Bool(true) || !strings.Contains(strOf(dom, bootstrap.KeyStateReadOnlyWhy), h.paths.StateDir) {
		t.Errorf("print of the domain does not say the state is read-only: %s", xpc.Format(dom))
	}
	if !disabledOf(h, "test.ro.off") {
		t.Error("the override read from the read-only state is not applied")
	}
	waitFor(t, "the service to check in again", func() bool {
		a, _ := h.print("test.ro").Array("checked_in")
		return len(a) == 1
	})
	if got := ping(t, h.mustLookup("test.ro.svc")); got != pid {
		t.Errorf("served by pid %d, want the adopted %d", got, pid)
	}
	for _, req := range [][]any{
		{bootstrap.OpEnable, bootstrap.KeyTarget, h.target("test.ro.off")},
		{bootstrap.OpDisable, bootstrap.KeyTarget, h.target("test.ro")},
		{bootstrap.OpRemoveDisabled},
	} {
		_, err := h.admin(req[0].(string), req[1:]...)
		expectStateErr(t, req[0].(string), err, bootstrap.ReasonReadOnlyState, "read-only")
	}
	if disabledOf(h, "test.ro") || !disabledOf(h, "test.ro.off") {
		t.Error("a refused request changed a job")
	}
}

// A state file of a newer version makes the state read-only: xpcd starts,
// uses what it can read (the overrides), says why in print and its log,
// refuses enable, and never writes the files, even when it launches.
func TestStateNewerVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dom := UserDomain(uint32(os.Geteuid()))
	if err := os.MkdirAll(h.paths.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		overridesFile: fmt.Appendf(nil, `{"version":2,"overrides":{%q:{"test.newer":true}},"future":"x"}`, dom),
		processesFile: []byte(`{"version":2,"processes":"not a list any more"}`),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(h.paths.StateDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h.writePlist(testJob{label: "test.newer", names: []string{"test.newer.svc"}})
	h.writePlist(testJob{label: "test.newer.on", names: []string{"test.newer.on.svc"}})
	d1 := h.start()

	d := h.print("test.newer")
	if d.Get(bootstrap.KeyStateReadOnly) != xpc.Bool(true) || !strings.Contains(strOf(d, bootstrap.KeyStateReadOnlyWhy), "version 2") {
		t.Errorf("print does not say the state is read-only: %s", xpc.Format(d))
	}
	if !disabledOf(h, "test.newer") {
		t.Error("the newer file's override is not used")
	}
	_, err := h.admin(bootstrap.OpEnable, bootstrap.KeyTarget, h.target("test.newer"))
	expectStateErr(t, "enable", err, bootstrap.ReasonReadOnlyState, overridesFile, "version 2")
	h.lookupPing("test.newer.on.svc") // a launch, which would record the process
	h.close(d1)
	if !strings.Contains(h.logs.String(), "version 2") {
		t.Error("the log does not say why the state is read-only")
	}
	for name, want := range files {
		if b, err := os.ReadFile(filepath.Join(h.paths.StateDir, name)); err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s was changed: %q %v", name, b, err)
		}
	}
	if ents, _ := os.ReadDir(h.paths.StateDir); len(ents) != len(files) {
		t.Errorf("the state directory has %d entries, want %d", len(ents), len(files))
	}
}

// Run count and last exit are kept across a restart for a job that does
// not run any more.
func TestJobHistoryPersists(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.hist", names: []string{"test.hist.svc"}})
	d1 := h.start()
	c := h.mustLookup("test.hist.svc")
	if _, err := call(t, c, "crash"); err == nil {
		t.Fatal("crash replied")
	}
	before := h.waitState("test.hist", "waiting")
	if intOf(before, "runs") != 1 || intOf(before, "last_exit_signal") != int(unix.SIGSEGV) {
		t.Fatalf("before the restart: %s", xpc.Format(before))
	}
	h.close(d1)
	h.start()
	after := h.print("test.hist")
	for _, k := range []string{"runs", "last_exit", "last_exit_signal", "last_exit_at"} {
		if !xpc.Equal(after.Get(k), before.Get(k)) {
			t.Errorf("%s after the restart: %v, want %v", k, after.Get(k), before.Get(k))
		}
	}
}

// Concurrent enables and disables, while the state directory turns
// read-only, writable again and read-only again, leave xpcd's overrides and the file's the
// same, and every job following them.
func TestOverridesConsistentUnderFaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	mountTmpfs(t, h.paths.StateDir, "64k")
	labels := []string{"test.c0", "test.c1", "test.c2"}
	for _, l := range labels {
		h.writePlist(testJob{label: l})
	}
	h.start()
	const workers, each = 6, 15
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	progress := make(chan struct{}, workers*each)
	for g := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range each {
				op := bootstrap.OpEnable
				if r.IntN(2) == 0 {
					op = bootstrap.OpDisable
				}
				_, err := h.admin(op, bootstrap.KeyTarget, h.target(labels[r.IntN(len(labels))]))
				if err != nil {
					if reasonOf(err) != bootstrap.ReasonIO {
						t.Errorf("%s: %v", op, err)
					}
					mu.Lock()
					failed++
					mu.Unlock()
				}
				progress <- struct{}{}
			}
		})
	}
	// Read-only from the 20th request done to the 45th, and from the 70th
	// to the end.
	for i := range workers * each {
		<-progress
		switch i {
		case 20, 70:
			remount(t, h.paths.StateDir, true)
		case 45:
			remount(t, h.paths.StateDir, false)
		}
	}
	wg.Wait()
	if failed == 0 {
		t.Error("no request failed while the state directory was read-only")
	}
	t.Logf("%d requests failed", failed)

	ov, _ := h.mustAdmin(bootstrap.OpPrintDisabled).Dictionary("overrides")
	var doc overridesDoc
	b, err := os.ReadFile(filepath.Join(h.paths.StateDir, overridesFile))
	if err != nil || json.Unmarshal(b, &doc) != nil {
		t.Fatalf("overrides.json: %q %v", b, err)
	}
	onDisk := doc.Overrides[UserDomain(uint32(os.Geteuid()))]
	if ov.Len() != len(onDisk) {
		t.Errorf("xpcd has %s, the disk %v", xpc.Format(ov), onDisk)
	}
	for _, l := range labels {
		v, inMem := ov.Bool(l)
		if inMem != nil {
			v = false
		}
		if disk, ok := onDisk[l]; ok != (inMem == nil) || disk != v {
			t.Errorf("%s: xpcd %v (%v), disk %v (%v)", l, v, inMem == nil, disk, ok)
		}
		if disabledOf(h, l) != onDisk[l] {
			t.Errorf("%s: the job's disabled is %v, the override on disk %v", l, !onDisk[l], onDisk[l])
		}
	}
}

// A newer file that this version cannot decode at all is used for
// nothing, kept as it is (not moved aside as corrupt), and makes the state
// read-only.
func TestStateNewerUndecodable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	os.MkdirAll(dir, 0o700)
	want := []byte(`{"version":3,"overrides":[["user/0","a",true]]}`)
	os.WriteFile(filepath.Join(dir, overridesFile), want, 0o600)
	s := openStore(t, dir)
	if len(s.loadedOverrides) != 0 || !strings.Contains(s.readOnly, "version 3") {
		t.Errorf("loaded %v, read-only %q", s.loadedOverrides, s.readOnly)
	}
	if err := <-s.saveOverrides(nil); !errors.Is(err, ErrStateReadOnly) {
		t.Errorf("save: %v", err)
	}
	s.close(context.Background())
	if b, _ := os.ReadFile(filepath.Join(dir, overridesFile)); !bytes.Equal(b, want) {
		t.Errorf("the file was changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, overridesFile+".corrupt")); err == nil {
		t.Error("the newer file was moved aside")
	}
}

// A state directory that cannot be made (its parent is on a read-only
// file system) is read-only state with nothing in it, not a failure.
func TestStateDirCannotBeMade(t *testing.T) {
	t.Parallel()
	mnt := t.TempDir()
	mountTmpfs(t, mnt, "64k")
	remount(t, mnt, true)
	dir := filepath.Join(mnt, "state")
	s := openStore(t, dir)
	if !strings.Contains(s.readOnly, "cannot be made") || !strings.Contains(s.readOnly, "read-only file system") {
		t.Errorf("read-only %q", s.readOnly)
	}
	s.saveProcesses(nil, nil)
	if err := <-s.saveOverrides(nil); !errors.Is(err, ErrStateReadOnly) {
		t.Errorf("save: %v", err)
	}
}
