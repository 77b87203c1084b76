package xpcd

import (
	"context"
	"encoding/json"
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
	"github.com/goxpc/xpc/launchd"
)

// TestLaunchEventSurvivesRestart: an event posted while the job is
// disabled waits through xpcd being stopped and started again on the same
// state directory, and is delivered exactly once when the job is enabled;
// the next event gets a new ID.
func TestLaunchEventSurvivesRestart(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	logPath := filepath.Join(h.dir, "events.log")
	const label = "test.ev.persist"
	h.writePlist(h.eventsJob(label, logPath, launchd.StreamNotify, "ack", nil, notifyEvents("changed", "org.goxpc.test.persist")))
	d1 := h.start()
	h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, h.target(label))
	h.post("org.goxpc.test.persist", 5)
	if _, n := h.streamStatus(label, launchd.StreamNotify); n != 1 {
		t.Fatalf("%d events pending for the disabled job, want 1", n)
	}
	h.close(d1)
	if b, err := os.ReadFile(filepath.Join(h.paths.StateDir, eventsFile)); err != nil || !strings.Contains(string(b), label) {
		t.Fatalf("%s after the stop: %v\n%s", eventsFile, err, b)
	}
	h.start()
	if _, n := h.streamStatus(label, launchd.StreamNotify); n != 1 {
		t.Fatalf("%d events pending after the restart, want 1", n)
	}
	time.Sleep(time.Second)
	if d := h.print(label); intOf(d, bootstrap.KeyRuns) != 0 || len(eventLines(logPath, 0)) != 0 {
		t.Fatalf("the disabled job ran: runs %d", intOf(d, bootstrap.KeyRuns))
	}
	h.mustAdmin(bootstrap.OpEnable, bootstrap.KeyTarget, h.target(label))
	waitFor(t, "the event delivered once the job is enabled", func() bool { return len(eventLines(logPath, 0)) > 0 })
	waitFor(t, "the acknowledgement", func() bool { _, n := h.streamStatus(label, launchd.StreamNotify); return n == 0 })
	time.Sleep(time.Second)
	lines := eventLines(logPath, 0)
	if len(lines) != 1 || !strings.Contains(lines[0], payloadState+"=5") || strings.Fields(lines[0])[1] != "1" {
		t.Fatalf("handler saw %q, want event 1 once", lines)
	}
	h.post("org.goxpc.test.persist", 6)
	waitFor(t, "the next event", func() bool { return len(eventLines(logPath, 0)) == 2 })
	if id := strings.Fields(eventLines(logPath, 0)[1])[1]; id != "2" {
		t.Errorf("the next event has ID %s, want 2", id)
	}
}

// TestLaunchEventUnackedAdoptedRestart: an event delivered and not
// acknowledged when xpcd stops is delivered again to the instance the next
// xpcd adopts, and acknowledged once.
func TestLaunchEventUnackedAdoptedRestart(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	h.cfg.StopServicesOnClose = false
	logPath := filepath.Join(h.dir, "events.log")
	const label = "test.ev.persist.adopt"
	h.writePlist(h.eventsJob(label, logPath, launchd.StreamNotify, "slow-once", map[string]string{"XPCD_EV_SLOW_MS": "2000"},
		notifyEvents("changed", "org.goxpc.test.persist.adopt")))
	d1 := h.start()
	h.post("org.goxpc.test.persist.adopt", 1)
	waitFor(t, "the first delivery", func() bool { return len(eventLines(logPath, 0)) == 1 })
	h.close(d1)
	h.cfg.StopServicesOnClose = true
	h.start()
	waitFor(t, "the event delivered again", func() bool { return len(eventLines(logPath, 0)) == 2 })
	waitFor(t, "the acknowledgement", func() bool { _, n := h.streamStatus(label, launchd.StreamNotify); return n == 0 })
	time.Sleep(time.Second)
	lines := eventLines(logPath, 0)
	if len(lines) != 2 {
		t.Fatalf("handler saw %d deliveries, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	first, second := strings.Fields(lines[0]), strings.Fields(lines[1])
	if first[0] != second[0] || first[1] != second[1] {
		t.Errorf("first delivery %v, second %v: want the same event in the adopted process", first, second)
	}
	if d := h.print(label); intOf(d, bootstrap.KeyRuns) != 1 {
		t.Errorf("runs %d, want 1 (the adopted instance)", intOf(d, bootstrap.KeyRuns))
	}
}

// TestLaunchEventUnackedRestartRelaunch: an event whose instance ended
// unacknowledged as xpcd stopped launches the job when xpcd starts again,
// and the new instance acknowledges it.
func TestLaunchEventUnackedRestartRelaunch(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	logPath := filepath.Join(h.dir, "events.log")
	const label = "test.ev.persist.relaunch"
	h.writePlist(h.eventsJob(label, logPath, launchd.StreamNotify, "hang-once", nil,
		notifyEvents("changed", "org.goxpc.test.persist.relaunch")))
	d1 := h.start()
	h.post("org.goxpc.test.persist.relaunch", 1)
	waitFor(t, "the first delivery", func() bool { return len(eventLines(logPath, 0)) == 1 })
	first := strings.Fields(eventLines(logPath, 0)[0])
	h.close(d1)
	var doc eventsDoc
	if b, err := os.ReadFile(filepath.Join(h.paths.StateDir, eventsFile)); err != nil || json.Unmarshal(b, &doc) != nil ||
		len(doc.Jobs) != 1 || len(doc.Jobs[0].Pending) != 1 || doc.Jobs[0].Pending[0].Deaths != 0 {
		t.Errorf("%s after the stop: %+v %v (want the event, no death counted: xpcd stopped the instance)", eventsFile, doc, err)
	}
	if pid, _ := strconv.Atoi(first[0]); syscall.Kill(pid, 0) == nil {
		t.Fatalf("the instance %d runs on after the stop", pid)
	}
	h.start()
	waitFor(t, "the event delivered to a new instance", func() bool { return len(eventLines(logPath, 0)) == 2 })
	waitFor(t, "the acknowledgement", func() bool { _, n := h.streamStatus(label, launchd.StreamNotify); return n == 0 })
	time.Sleep(time.Second)
	lines := eventLines(logPath, 0)
	if len(lines) != 2 {
		t.Fatalf("handler saw %d deliveries, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if second := strings.Fields(lines[1]); second[0] == first[0] || second[1] != first[1] {
		t.Errorf("first delivery %v, second %v: want the same event in another process", first, second)
	}
	if d := h.print(label); strOf(d, bootstrap.KeyLaunchReason) != reasonEvent {
		t.Errorf("launch_reason %q, want %q", strOf(d, bootstrap.KeyLaunchReason), reasonEvent)
	}
}

// TestLaunchEventCorruptState: an events.json that does not parse is moved
// aside, and xpcd starts and delivers events.
func TestLaunchEventCorruptState(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	logPath := filepath.Join(h.dir, "events.log")
	const label = "test.ev.persist.corrupt"
	h.writePlist(h.eventsJob(label, logPath, launchd.StreamNotify, "ack", nil, notifyEvents("changed", "org.goxpc.test.persist.corrupt")))
	if err := os.MkdirAll(h.paths.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(h.paths.StateDir, eventsFile)
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.start()
	if b, err := os.ReadFile(path + ".corrupt"); err != nil || string(b) != "{not json" {
		t.Errorf("corrupt file not kept aside: %q %v", b, err)
	}
	if !strings.Contains(h.logs.String(), "pending launch events are lost") {
		t.Error("the corrupt file is not reported")
	}
	h.post("org.goxpc.test.persist.corrupt", 1)
	waitFor(t, "the event", func() bool { return len(eventLines(logPath, 0)) == 1 })
}

// TestLaunchEventKill9: the real xpcd is killed with SIGKILL while an event
// it delivered is not acknowledged; the next xpcd delivers it again to the
// adopted service, which acknowledges it once.
func TestLaunchEventKill9(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	bin := filepath.Join(h.dir, "bin")
	os.Mkdir(bin, 0o755)
	xpcdBin := filepath.Join(buildPackages(t, bin, "github.com/goxpc/xpc/cmd/xpcd"), "xpcd")
	logPath := filepath.Join(h.dir, "events.log")
	const label = "test.ev.persist.k9"
	h.writePlist(h.eventsJob(label, logPath, launchd.StreamNotify, "slow-once", map[string]string{"XPCD_EV_SLOW_MS": "3000"},
		notifyEvents("changed", "org.goxpc.test.persist.k9")))
	x1, x1exited := startRealXpcd(t, h, xpcdBin)
	h.post("org.goxpc.test.persist.k9", 1)
	waitFor(t, "the first delivery", func() bool { return len(eventLines(logPath, 0)) == 1 })
	waitFor(t, "the event in "+eventsFile, func() bool {
		b, _ := os.ReadFile(filepath.Join(h.paths.StateDir, eventsFile))
		return strings.Contains(string(b), label)
	})
	x1.Process.Signal(syscall.SIGKILL)
	<-x1exited
	startRealXpcd(t, h, xpcdBin)
	waitFor(t, "the event delivered again", func() bool { return len(eventLines(logPath, 0)) == 2 })
	waitFor(t, "the acknowledgement", func() bool { _, n := h.streamStatus(label, launchd.StreamNotify); return n == 0 })
	time.Sleep(time.Second)
	lines := eventLines(logPath, 0)
	if len(lines) != 2 {
		t.Fatalf("handler saw %d deliveries, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if first, second := strings.Fields(lines[0]), strings.Fields(lines[1]); first[0] != second[0] || first[1] != second[1] {
		t.Errorf("first delivery %v, second %v: want the same event in the adopted process", first, second)
	}
}

// startRealXpcd runs xpcdBin as a user instance on h's root until the test
// ends, and waits until it answers; the channel is closed when it exits.
func startRealXpcd(t *testing.T, h *harness, xpcdBin string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(h.dir, "xpcd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(xpcdBin, "--user", "--root", h.dir, "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(h.dir, "xpcd.log"))
			t.Logf("xpcd's log:\n%s", b)
		}
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

// TestLaunchEventReadOnlyState: events recorded by a newer xpcd, in this
// version's format, are delivered, and events.json is never written while
// the state is read-only.
func TestLaunchEventReadOnlyState(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	logPath := filepath.Join(h.dir, "events.log")
	const label = "test.ev.persist.ro"
	h.writePlist(h.eventsJob(label, logPath, launchd.StreamNotify, "ack", nil, notifyEvents("changed", "org.goxpc.test.persist.ro")))
	if err := os.MkdirAll(h.paths.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(h.paths.StateDir, eventsFile)
	doc := []byte(`{"version":2,"jobs":[{"domain":"` + UserDomain(uint32(os.Geteuid())) + `","label":"` + label + `","next_id":7,"pending":[` +
		`{"stream":"` + launchd.StreamNotify + `","name":"changed","id":7,"at":"2026-01-02T03:04:05Z",` +
		`"payload":{"dictionary":{"Notification":{"string":"org.goxpc.test.persist.ro"},"State":{"uint64":3}}}}]}]}`)
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	d1 := h.start()
	waitFor(t, "the recorded event delivered", func() bool { return len(eventLines(logPath, 0)) == 1 })
	if line := eventLines(logPath, 0)[0]; strings.Fields(line)[1] != "7" || !strings.Contains(line, payloadState+"=3") {
		t.Errorf("delivered %q, want event 7 with state 3", line)
	}
	waitFor(t, "the acknowledgement", func() bool { _, n := h.streamStatus(label, launchd.StreamNotify); return n == 0 })
	h.post("org.goxpc.test.persist.ro", 4)
	waitFor(t, "the next event", func() bool { return len(eventLines(logPath, 0)) == 2 })
	if id := strings.Fields(eventLines(logPath, 0)[1])[1]; id != "8" {
		t.Errorf("the next event has ID %s, want 8", id)
	}
	h.close(d1)
	if b, err := os.ReadFile(path); err != nil || string(b) != string(doc) {
		t.Errorf("%s was written while the state is read-only: %q %v", eventsFile, b, err)
	}
}

// TestLaunchEventRestoreDrops: recorded events of a job no longer loaded,
// or of a descriptor the job no longer declares, are dropped with a log
// line, and go from events.json.
func TestLaunchEventRestoreDrops(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	logPath := filepath.Join(h.dir, "events.log")
	const label = "test.ev.persist.drops"
	h.writePlist(h.eventsJob(label, logPath, launchd.StreamNotify, "ack", nil, notifyEvents("changed", "org.goxpc.test.persist.drops")))
	if err := os.MkdirAll(h.paths.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	rec := func(label, name string) string {
		return `{"domain":"` + UserDomain(uint32(os.Geteuid())) + `","label":"` + label + `","next_id":1,"pending":[` +
			`{"stream":"` + launchd.StreamNotify + `","name":"` + name + `","id":1,"at":"2026-01-02T03:04:05Z",` +
			`"payload":{"dictionary":{"Notification":{"string":"x"},"State":{"uint64":3}}}}]}`
	}
	path := filepath.Join(h.paths.StateDir, eventsFile)
	doc := `{"version":1,"jobs":[` + rec(label, "gone") + `,` + rec("test.ev.persist.unloaded", "changed") + `]}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	d1 := h.start()
	for _, want := range []string{"recorded event dropped, the job no longer declares its descriptor",
		"recorded events dropped, the job is not loaded"} {
		if !strings.Contains(h.logs.String(), want) {
			t.Errorf("the log does not say %q", want)
		}
	}
	if _, n := h.streamStatus(label, launchd.StreamNotify); n != 0 {
		t.Errorf("%d events pending, want 0", n)
	}
	h.close(d1)
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "test.ev.persist") {
		t.Errorf("%s keeps the dropped events:\n%s", eventsFile, b)
	}
	if len(eventLines(logPath, 0)) != 0 {
		t.Error("a dropped event was delivered")
	}
}
