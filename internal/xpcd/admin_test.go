package xpcd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

func TestBootstrapBootoutIdempotent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start()
	other := filepath.Join(h.dir, "elsewhere")
	os.Mkdir(other, 0o755)
	path := h.writePlist(testJob{label: "test.bs", names: []string{"test.bs.svc"}}, other)

	status := func(r *xpc.Dictionary) string { return strOf(r, bootstrap.KeyStatus) }
	if s := status(h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, path)); s != "loaded" {
		t.Fatalf("first bootstrap: %q", s)
	}
	if s := status(h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, path)); s != "already loaded" {
		t.Fatalf("second bootstrap: %q", s)
	}
	// Changed contents, not running: the new definition at once.
	h.writePlist(testJob{label: "test.bs", names: []string{"test.bs.svc", "test.bs.new"}}, other)
	if s := status(h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, path)); s != "upgraded" {
		t.Fatalf("bootstrap of changed contents: %q", s)
	}
	c := h.mustLookup("test.bs.new")
	pid1 := ping(t, c)

	// Changed again while running: drained, then the new one on demand.
	h.writePlist(testJob{label: "test.bs", names: []string{"test.bs.svc"}, env: map[string]string{"V": "3"}}, other)
	if s := status(h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, path)); s != "upgrade pending" {
		t.Fatalf("bootstrap of changed contents while running: %q", s)
	}
	d := h.waitState("test.bs", "waiting")
	if strOf(d, "stop_reason") != "upgrade" {
		t.Errorf("after the upgrade: %s", xpc.Format(d))
	}
	if _, err := h.lookup("test.bs.new"); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("a name the new definition dropped: %v", err)
	}
	c = h.mustLookup("test.bs.svc")
	if pid := ping(t, c); pid == pid1 {
		t.Error("the old instance still serves")
	}
	if r, _ := call(t, c, "env", "key", "V"); strOf(r, "value") != "3" {
		t.Errorf("the new instance does not run the new definition: %s", xpc.Format(r))
	}

	if s := status(h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.bs"), bootstrap.KeyWait, true)); s != "unloaded" {
		t.Fatalf("bootout: %q", s)
	}
	if s := status(h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.bs"))); s != "not loaded" {
		t.Fatalf("second bootout: %q", s)
	}
	if _, err := h.lookup("test.bs.svc"); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("lookup after bootout: %v", err)
	}
	if _, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, h.target("test.bs")); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("print after bootout: %v", err)
	}
	// And loadable again.
	if s := status(h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, path)); s != "loaded" {
		t.Fatalf("bootstrap after bootout: %q", s)
	}
}

func TestEnableDisablePersisted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.dis", names: []string{"test.dis.svc"}})
	// Disabled in its plist, enabled by override.
	h.writePlist(testJob{label: "test.en", names: []string{"test.en.svc"}, extra: map[string]any{"Disabled": true}})
	d1 := h.start()

	h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, h.target("test.dis"))
	h.mustAdmin(bootstrap.OpEnable, bootstrap.KeyTarget, h.target("test.en"))
	// An override for a job that is not loaded any more is kept too.
	other := filepath.Join(h.dir, "elsewhere")
	os.Mkdir(other, 0o755)
	h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, h.writePlist(testJob{label: "test.gone"}, other))
	h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, h.target("test.gone"))
	h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.gone"), bootstrap.KeyWait, true)
	_, err := h.lookup("test.dis.svc")
	if reasonOf(err) != bootstrap.ReasonNotFound || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("lookup of a disabled job: %v", err)
	}
	ping(t, h.mustLookup("test.en.svc"))

	h.close(d1)
	h.start()
	if st := strOf(h.print("test.dis"), "state"); st != "disabled" {
		t.Errorf("after restart: %s is %s", "test.dis", st)
	}
	if _, err := h.lookup("test.dis.svc"); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("lookup of a disabled job after restart: %v", err)
	}
	ping(t, h.mustLookup("test.en.svc"))
	r := h.mustAdmin(bootstrap.OpPrintDisabled)
	ov, _ := r.Dictionary("overrides")
	stale, _ := r.Array("stale")
	if ov.Len() != 3 || ov.Get("test.dis") != xpc.Bool(true) || ov.Get("test.en") != xpc.Bool(false) ||
		len(stale) != 1 || stale[0] != xpc.String("test.gone") {
		t.Errorf("print-disabled: %s", xpc.Format(r))
	}
	r = h.mustAdmin(bootstrap.OpRemoveDisabled)
	if rm, _ := r.Array("removed"); len(rm) != 1 || rm[0] != xpc.String("test.gone") {
		t.Errorf("remove-disabled: %s", xpc.Format(r))
	}
	h.mustAdmin(bootstrap.OpEnable, bootstrap.KeyTarget, h.target("test.dis"))
	ping(t, h.mustLookup("test.dis.svc"))
}

func TestKickstartKillBlameProcinfo(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.ks", names: []string{"test.ks.svc"}})
	h.start()
	if why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("test.ks")), bootstrap.KeyWhy); !strings.Contains(why, "waiting for demand") {
		t.Errorf("blame while waiting: %q", why)
	}
	r := h.mustAdmin(bootstrap.OpKickstart, bootstrap.KeyTarget, h.target("test.ks"))
	pid := intOf(r, bootstrap.KeyPID)
	if strOf(r, bootstrap.KeyStatus) != "started" || pid == 0 {
		t.Fatalf("kickstart: %s", xpc.Format(r))
	}
	if s := strOf(h.mustAdmin(bootstrap.OpKickstart, bootstrap.KeyTarget, h.target("test.ks")), bootstrap.KeyStatus); s != "already running" {
		t.Errorf("second kickstart: %q", s)
	}
	r = h.mustAdmin(bootstrap.OpProcinfo, bootstrap.KeyPID, int64(pid))
	if strOf(r, "label") != "test.ks" || strOf(r, "launch_reason") != "kickstart" {
		t.Errorf("procinfo: %s", xpc.Format(r))
	}
	if _, err := h.admin(bootstrap.OpProcinfo, bootstrap.KeyPID, int64(os.Getpid())); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("procinfo of a process xpcd did not launch: %v", err)
	}
	if why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("test.ks")), bootstrap.KeyWhy); !strings.Contains(why, "kickstart") {
		t.Errorf("blame while running: %q", why)
	}
	r = h.mustAdmin(bootstrap.OpKickstart, bootstrap.KeyTarget, h.target("test.ks"), "kill", true)
	if strOf(r, bootstrap.KeyStatus) != "restarting" {
		t.Fatalf("kickstart -k: %s", xpc.Format(r))
	}
	waitFor(t, "a new instance", func() bool {
		d := h.print("test.ks")
		return strOf(d, "state") == "running" && intOf(d, "pid") != pid
	})
	r = h.mustAdmin(bootstrap.OpKill, bootstrap.KeyTarget, h.target("test.ks"), bootstrap.KeySignal, int64(9))
	if strOf(r, bootstrap.KeyStatus) != "signaled" {
		t.Fatalf("kill: %s", xpc.Format(r))
	}
	d := h.waitState("test.ks", "waiting")
	if intOf(d, "last_exit_signal") != 9 {
		t.Errorf("after kill -9: %s", xpc.Format(d))
	}
	if why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("test.ks")), bootstrap.KeyWhy); !strings.Contains(why, "SIGKILL") {
		t.Errorf("blame after kill: %q", why)
	}
	if _, err := h.admin(bootstrap.OpKill, bootstrap.KeyTarget, h.target("test.ks")); reasonOf(err) != bootstrap.ReasonNotRunning {
		t.Errorf("kill of a job that does not run: %v", err)
	}
}

// watch: the reply, the current state, then each change.
func TestWatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.watch", names: []string{"test.watch.svc"}})
	h.start()
	var mu sync.Mutex
	var states []string
	c := h.dial(xpc.HandlerFunc(func(_ context.Context, m *xpc.Message) {
		ev, err := m.Body.Dictionary(bootstrap.KeyEvent)
		if err != nil {
			return
		}
		mu.Lock()
		states = append(states, strOf(ev, "state"))
		mu.Unlock()
	}))
	if _, err := c.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpWatch, bootstrap.KeyTarget, h.target("test.watch"))); err != nil {
		t.Fatal(err)
	}
	ping(t, h.mustLookup("test.watch.svc"))
	h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.watch"), bootstrap.KeyWait, true)
	waitFor(t, "the unloaded event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) > 0 && states[len(states)-1] == "unloaded"
	})
	mu.Lock()
	got := strings.Join(states, " ")
	mu.Unlock()
	// Duplicate states may appear (other fields changed); the order may
	// not differ.
	want := []string{"waiting", "spawning", "running", "exiting", "unloaded"}
	i := 0
	for _, s := range strings.Fields(got) {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	if i != len(want) || !strings.HasPrefix(got, "waiting") {
		t.Errorf("states seen: %s; want in order %v", got, want)
	}
}

func TestAdoptAfterRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.StopServicesOnClose = false
	h.writePlist(testJob{label: "test.adopt", names: []string{"test.adopt.svc"}})
	d1 := h.start()
	c := h.mustLookup("test.adopt.svc")
	pid := ping(t, c)
	h.close(d1)
	// The service lives on, and so does the client's connection to it.
	if got := ping(t, c); got != pid {
		t.Fatalf("pid %d after xpcd stopped", got)
	}
	h.cfg.StopServicesOnClose = true
	h.start()
	d := h.print("test.adopt")
	if strOf(d, "state") != "running" || intOf(d, "pid") != pid || d.Get("adopted") != xpc.Bool(true) {
		t.Fatalf("after restart: %s", xpc.Format(d))
	}
	// It re-adopts and checks in again: new clients reach it.
	waitFor(t, "the service to check in again", func() bool {
		a, _ := h.print("test.adopt").Array("checked_in")
		return len(a) == 1
	})
	if got := ping(t, h.mustLookup("test.adopt.svc")); got != pid {
		t.Errorf("new client served by pid %d, want the adopted %d", got, pid)
	}
	// And it can be stopped through its pidfd.
	r := h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.adopt"), bootstrap.KeyWait, true)
	if strOf(r, bootstrap.KeyStatus) != "unloaded" {
		t.Errorf("bootout: %s", xpc.Format(r))
	}
}

// A process that is not the one xpcd launched for a label cannot adopt it.
func TestAdoptDenied(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.adopt2", names: []string{"test.adopt2.svc"}, runAtLoad: true})
	h.start()
	h.waitState("test.adopt2", "running")
	_, err := h.admin(bootstrap.OpAdopt, bootstrap.KeyLabel, "test.adopt2")
	if reasonOf(err) != bootstrap.ReasonDenied {
		t.Errorf("adopt from the wrong process: %v", err)
	}
	_, err = h.admin(bootstrap.OpCheckin, bootstrap.KeyName, "test.adopt2.svc")
	if reasonOf(err) != bootstrap.ReasonBadRequest {
		t.Errorf("checkin on a bootstrap connection: %v", err)
	}
}

func TestUpgradeOnNewExecutable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.UpgradeInterval = 50 * time.Millisecond
	bin := filepath.Join(h.dir, "bin")
	os.Mkdir(bin, 0o755)
	prog := filepath.Join(bin, "helper")
	copyFile(t, h.exe, prog)
	h.writePlist(testJob{label: "test.up", names: []string{"test.up.svc"}, program: prog})
	h.start()
	c := h.mustLookup("test.up.svc")
	pid1 := ping(t, c)
	if _, err := call(t, c, "begin"); err != nil { // dirty: not stopped yet
		t.Fatal(err)
	}
	copyFile(t, h.exe, prog+".new")
	if err := os.Rename(prog+".new", prog); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "upgrade pending", func() bool { return h.print("test.up").Get("upgrade_pending") == xpc.Bool(true) })
	if st := strOf(h.print("test.up"), "state"); st != "running" {
		t.Fatalf("a dirty service was stopped for an upgrade: %s", st)
	}
	call(t, c, "end")
	d := h.waitState("test.up", "waiting")
	if strOf(d, "stop_reason") != "upgrade" {
		t.Errorf("after upgrade: %s", xpc.Format(d))
	}
	if pid := ping(t, h.mustLookup("test.up.svc")); pid == pid1 {
		t.Error("the old instance still serves")
	}
}

func TestPressuredExit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var mu sync.Mutex
	pressure := false
	h.cfg.PressureInterval = 50 * time.Millisecond
	h.cfg.Pressure = PressureFunc(func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return pressure, nil
	})
	h.writePlist(testJob{label: "test.px", names: []string{"test.px.svc"}, runAtLoad: true,
		extra: map[string]any{"EnablePressuredExit": true}})
	h.writePlist(testJob{label: "test.nopx", names: []string{"test.nopx.svc"}, runAtLoad: true})
	h.start()
	h.waitState("test.px", "running")
	h.waitState("test.nopx", "running")
	mu.Lock()
	pressure = true
	mu.Unlock()
	d := h.waitState("test.px", "waiting")
	if strOf(d, "stop_reason") != "pressure" {
		t.Errorf("after pressure: %s", xpc.Format(d))
	}
	if st := strOf(h.print("test.nopx"), "state"); st != "running" {
		t.Errorf("a job without EnablePressuredExit: %s", st)
	}
}

func TestOutputToFileAndLog(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	out := filepath.Join(h.dir, "out.log")
	h.writePlist(testJob{label: "test.out", names: []string{"test.out.svc"}, runAtLoad: true,
		extra: map[string]any{"StandardOutPath": out}})
	h.writePlist(testJob{label: "test.log", names: []string{"test.log.svc"}, runAtLoad: true})
	h.start()
	waitFor(t, "output in the file", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "helper starting")
	})
	waitFor(t, "output in the log", func() bool {
		return strings.Contains(h.logs.String(), `label=test.log`) && strings.Contains(h.logs.String(), `line="helper starting"`)
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestLaunchFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.nox", names: []string{"test.nox.svc"}, program: "/nonexistent/helper"})
	h.start()
	_, err := h.admin(bootstrap.OpKickstart, bootstrap.KeyTarget, h.target("test.nox"))
	if reasonOf(err) != bootstrap.ReasonLaunchFailed || !strings.Contains(err.Error(), "/nonexistent/helper") {
		t.Fatalf("kickstart of a missing program: %v", err)
	}
	d := h.print("test.nox")
	if !strings.Contains(strOf(d, "error"), "no such file") {
		t.Errorf("job after a failed launch: %s", xpc.Format(d))
	}
	if why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("test.nox")), bootstrap.KeyWhy); !strings.Contains(why, "last launch failed") {
		t.Errorf("blame: %q", why)
	}
}

// bootstrap's reply lists the keys that have no effect: a misspelled
// Requirement would otherwise leave a name open without a word.
func TestBootstrapReportsWarnings(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start()
	other := filepath.Join(h.dir, "elsewhere")
	os.Mkdir(other, 0o755)
	path := h.writePlist(h.lcJob("test.warn", []string{"test.warn.svc"}, nil,
		map[string]any{"MachServices": map[string]any{"test.warn.svc": map[string]any{"Requirment": "uid 0"}}}, ""), other)
	r := h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, path)
	ws, _ := r.Get(bootstrap.KeyWarnings).(xpc.Array)
	if strOf(r, bootstrap.KeyStatus) != "loaded" || len(ws) != 1 || !strings.Contains(string(ws[0].(xpc.String)), "Requirment") {
		t.Fatalf("bootstrap of a plist with a misspelled Requirement: %v", r)
	}
}
