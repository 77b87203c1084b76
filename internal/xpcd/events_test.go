package xpcd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// The launch-event tests run the test binary, re-executed, as a service
// that handles launch events with the library's HandleEvents.
//
// Environment:
//
//	XPCD_EV_SERVICE=1       be the service
//	XPCD_EV_LOG=PATH        append "PID ID STREAM NAME KEY=VALUE..." for each event
//	XPCD_EV_STREAMS=a,b     handle these streams (none: never call HandleEvents)
//	XPCD_EV_MODE=ack        acknowledge each event (the handler returns)
//	XPCD_EV_MODE=hang-once  hang in the handler for an event the log does not
//	                        have yet (the test kills the process), acknowledge
//	                        one it has
//	XPCD_EV_MODE=hang       always hang
//	XPCD_EV_MODE=slow-once  take XPCD_EV_SLOW_MS ms in the handler for an event
//	                        the log does not have yet, then acknowledge it
//	XPCD_EV_EXIT_MS=N       exit N ms after starting
//	XPCD_LC_OWNER=PID       exit when the test ends
func TestEventsService(t *testing.T) {
	if os.Getenv("XPCD_EV_SERVICE") != "1" {
		t.Skip("not a test: the service the launch-event tests run")
	}
	os.Exit(eventsServiceMain())
}

func eventsServiceMain() int {
	ctx := context.Background()
	ownerGone := watchOwner(os.Getenv("XPCD_LC_OWNER"))
	if f, err := os.OpenFile(os.Getenv("XPCD_EV_LOG")+".crash", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err == nil {
		debug.SetCrashOutput(f, debug.CrashOptions{})
		f.Close()
	}
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "events service: CheckIn:", err)
		return 20
	}
	logPath, mode := os.Getenv("XPCD_EV_LOG"), os.Getenv("XPCD_EV_MODE")
	for _, stream := range strings.Split(os.Getenv("XPCD_EV_STREAMS"), ",") {
		if stream == "" {
			continue
		}
		err := svc.HandleEvents(ctx, stream, func(ctx context.Context, ev *xpc.Event) {
			seen := len(eventLines(logPath, ev.ID)) > 0
			appendEvent(logPath, ev)
			if mode == "hang" || mode == "hang-once" && !seen {
				<-ownerGone
				os.Exit(13)
			}
			if ms, _ := strconv.Atoi(os.Getenv("XPCD_EV_SLOW_MS")); mode == "slow-once" && !seen {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "events service: HandleEvents:", err)
			return 21
		}
	}
	var exit <-chan time.Time
	if ms, _ := strconv.Atoi(os.Getenv("XPCD_EV_EXIT_MS")); ms > 0 {
		exit = time.After(time.Duration(ms) * time.Millisecond)
	}
	select {
	case <-exit:
		return 0
	case <-svc.Terminating():
		return 0
	case <-ownerGone:
		return 13
	}
}

func appendEvent(path string, ev *xpc.Event) {
	var kv []string
	for k, v := range ev.Payload.All() {
		kv = append(kv, fmt.Sprintf("%s=%v", k, v))
	}
	line := fmt.Sprintf("%d %d %s %s %s\n", os.Getpid(), ev.ID, ev.Stream, ev.Name, strings.Join(kv, " "))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	f.WriteString(line)
	f.Close()
}

// eventLines returns the lines of the log at path; only those of event id
// if id is not 0.
func eventLines(path string, id uint64) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && (id == 0 || fields[1] == strconv.FormatUint(id, 10)) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// eventsJob describes a job run by TestEventsService, with the launch
// events events (stream -> name -> descriptor).
func (h *harness) eventsJob(label, logPath, streams, mode string, env map[string]string, events map[string]any) testJob {
	e := map[string]string{"XPCD_EV_SERVICE": "1", "XPCD_LC_OWNER": strconv.Itoa(os.Getpid()),
		"XPCD_EV_LOG": logPath, "XPCD_EV_STREAMS": streams, "XPCD_EV_MODE": mode}
	for k, v := range env {
		e[k] = v
	}
	h.t.Cleanup(func() {
		if b, _ := os.ReadFile(logPath + ".crash"); h.t.Failed() && len(b) > 0 {
			h.t.Logf("%s's standard error:\n%s", label, b)
		}
	})
	return testJob{label: label, env: e, extra: map[string]any{
		"ProgramArguments": []any{h.exe, "-test.run=^TestEventsService$"},
		"ThrottleInterval": 1,
		"LaunchEvents":     events,
	}}
}

func notifyEvents(kv ...string) map[string]any {
	descs := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		descs[kv[i]] = map[string]any{launchd.NotificationKey: kv[i+1]}
	}
	return map[string]any{launchd.StreamNotify: descs}
}

// post posts a notification as a client does (OpNotifyPost), as root.
func (h *harness) post(name string, state uint64) {
	h.t.Helper()
	h.mustAdmin(bootstrap.OpNotifyPost, bootstrap.KeyName, name, bootstrap.KeyNotifyState, state)
}

// streamStatus returns print's status of stream, and its pending count.
func (h *harness) streamStatus(label, stream string) (string, int) {
	h.t.Helper()
	le, _ := h.print(label).Get("launch_events").(*xpc.Dictionary)
	if le == nil {
		return "", 0
	}
	s, _ := le.Get(stream).(*xpc.Dictionary)
	if s == nil {
		return "", 0
	}
	return strOf(s, "status"), intOf(s, "pending")
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// TestLaunchEventNotification: a post launches the job, whose handler gets
// the event exactly once; a user's name is not told to another user's
// job.
func TestLaunchEventNotification(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	logPath := filepath.Join(h.dir, "events.log")
	other := bootstrap.UserNotificationPrefix + strconv.Itoa(os.Geteuid()+4242) + ".test"
	h.writePlist(h.eventsJob("test.ev.notify", logPath, launchd.StreamNotify, "ack", nil,
		notifyEvents("changed", "org.goxpc.test.changed", "theirs", other)))
	h.start()
	// Only the names some job has a descriptor for reach the loop.
	if m := h.d.sup; !m.notificationWatched("org.goxpc.test.changed") || m.notificationWatched("org.goxpc.test.other") {
		t.Error("notificationWatched: want the declared name only")
	}
	h.post(other, 1)
	h.post("org.goxpc.test.changed", 7)
	waitFor(t, "the event to reach the handler", func() bool { return len(eventLines(logPath, 0)) > 0 })
	d := h.print("test.ev.notify")
	if r := strOf(d, bootstrap.KeyLaunchReason); r != reasonEvent {
		t.Errorf("launch_reason %q, want %q", r, reasonEvent)
	}
	if e := strOf(d, "launch_event"); e != launchd.StreamNotify+" changed" {
		t.Errorf("launch_event %q", e)
	}
	waitFor(t, "the event to be acknowledged", func() bool { _, n := h.streamStatus("test.ev.notify", launchd.StreamNotify); return n == 0 })
	time.Sleep(time.Second)
	lines := eventLines(logPath, 0)
	if len(lines) != 1 {
		t.Fatalf("handler saw %d events, want 1:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	f := strings.Fields(lines[0])
	if f[2] != launchd.StreamNotify || f[3] != "changed" || !strings.Contains(lines[0], "Notification=org.goxpc.test.changed") ||
		!strings.Contains(lines[0], payloadState+"=7") {
		t.Errorf("event %q", lines[0])
	}
	if why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("test.ev.notify")), bootstrap.KeyWhy); !strings.Contains(why, "launched by the launch event changed of "+launchd.StreamNotify) {
		t.Errorf("blame: %s", why)
	}
}

// synthesizeUEvent makes the kernel send a "change" uevent for /dev/null.
func synthesizeUEvent(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/sys/devices/virtual/mem/null/uevent", []byte("change"), 0); err != nil {
		t.Skipf("cannot synthesize a uevent: %v", err)
	}
}

// TestLaunchEventUEvent: a kernel uevent matching a job's descriptor
// launches it and reaches its handler; the listener stops once no job
// wants uevents.
func TestLaunchEventUEvent(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	logPath := filepath.Join(h.dir, "events.log")
	h.writePlist(h.eventsJob("test.ev.uevent", logPath, launchd.StreamIOKit, "ack", nil, map[string]any{
		launchd.StreamIOKit: map[string]any{"null": map[string]any{"SUBSYSTEM": "mem", "DEVNAME": "null", "ACTION": "ch*"}},
	}))
	h.start()
	// The listener starts with the job: write until an event arrives.
	waitFor(t, "a uevent to reach the handler", func() bool {
		if len(eventLines(logPath, 0)) > 0 {
			return true
		}
		synthesizeUEvent(t)
		time.Sleep(300 * time.Millisecond)
		return len(eventLines(logPath, 0)) > 0
	})
	line := eventLines(logPath, 0)[0]
	for _, want := range []string{" " + launchd.StreamUEvent + " null ", "ACTION=change", "SUBSYSTEM=mem", "DEVPATH=/devices/virtual/mem/null", "SEQNUM="} {
		if !strings.Contains(line, want) {
			t.Errorf("event %q lacks %q", line, want)
		}
	}
	if e := strOf(h.print("test.ev.uevent"), "launch_event"); e != launchd.StreamUEvent+" null" {
		t.Errorf("launch_event %q", e)
	}
	m := h.d.sup
	listening := func() bool {
		var on bool
		m.call(testCtx(t), func() { on = m.ev.stop != nil })
		return on
	}
	if !listening() {
		t.Error("no uevent listener while a job wants uevents")
	}
	h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.ev.uevent"), bootstrap.KeyWait, true)
	if listening() {
		t.Error("the uevent listener runs on with no job wanting uevents")
	}
}

// TestLaunchEventRedelivered: an instance killed before acknowledging its
// event leaves it to the next, which gets the same event; print tells the
// slow handler apart meanwhile.
func TestLaunchEventRedelivered(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	logPath := filepath.Join(h.dir, "events.log")
	h.writePlist(h.eventsJob("test.ev.redeliver", logPath, launchd.StreamNotify, "hang-once", nil,
		notifyEvents("changed", "org.goxpc.test.redeliver")))
	h.start()
	h.post("org.goxpc.test.redeliver", 1)
	waitFor(t, "the first delivery", func() bool { return len(eventLines(logPath, 0)) == 1 })
	first := strings.Fields(eventLines(logPath, 0)[0])
	status, n := h.streamStatus("test.ev.redeliver", launchd.StreamNotify)
	if n != 1 || !strings.Contains(status, "not yet acknowledged") {
		t.Errorf("while the handler runs: %d pending, status %q", n, status)
	}
	pid, _ := strconv.Atoi(first[0])
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, "the event delivered again", func() bool { return len(eventLines(logPath, 0)) == 2 })
	second := strings.Fields(eventLines(logPath, 0)[1])
	if second[0] == first[0] || second[1] != first[1] {
		t.Errorf("first delivery %v, second %v: want the same event in another process", first, second)
	}
	waitFor(t, "the acknowledgement", func() bool { _, n := h.streamStatus("test.ev.redeliver", launchd.StreamNotify); return n == 0 })
	if d := h.print("test.ev.redeliver"); intOf(d, bootstrap.KeyRuns) != 2 || strOf(d, bootstrap.KeyLaunchReason) != reasonEvent {
		t.Errorf("runs %d, launch_reason %q", intOf(d, bootstrap.KeyRuns), strOf(d, bootstrap.KeyLaunchReason))
	}
}

// TestLaunchEventDropped: an event whose handler never returns is dropped
// after maxEventDeaths instances died with it, and reported.
func TestLaunchEventDropped(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	logPath := filepath.Join(h.dir, "events.log")
	h.writePlist(h.eventsJob("test.ev.drop", logPath, launchd.StreamNotify, "hang", nil,
		notifyEvents("changed", "org.goxpc.test.drop")))
	h.start()
	h.post("org.goxpc.test.drop", 1)
	for i := 1; i <= maxEventDeaths; i++ {
		waitFor(t, fmt.Sprintf("delivery %d", i), func() bool { return len(eventLines(logPath, 0)) == i })
		pid, _ := strconv.Atoi(strings.Fields(eventLines(logPath, 0)[i-1])[0])
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitFor(t, "the event to be dropped", func() bool {
		le, _ := h.print("test.ev.drop").Get("launch_events").(*xpc.Dictionary)
		return le != nil && le.Get("dropped") != nil
	})
	why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("test.ev.drop")), bootstrap.KeyWhy)
	if !strings.Contains(why, "1 launch events dropped") || !strings.Contains(why, "3 instances ended before acknowledging it") {
		t.Errorf("blame: %s", why)
	}
	time.Sleep(2 * time.Second)
	if d := h.print("test.ev.drop"); intOf(d, bootstrap.KeyRuns) != maxEventDeaths || strOf(d, bootstrap.KeyState) == "running" {
		t.Errorf("after the drop: runs %d, state %s", intOf(d, bootstrap.KeyRuns), strOf(d, bootstrap.KeyState))
	}
}

// TestLaunchEventUnhandledNoLoop: a job that runs without ever handling
// its stream is not launched again for its events, and print says why
// they wait.
func TestLaunchEventUnhandledNoLoop(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	logPath := filepath.Join(h.dir, "events.log")
	h.writePlist(h.eventsJob("test.ev.unhandled", logPath, "", "ack", map[string]string{"XPCD_EV_EXIT_MS": "300"},
		notifyEvents("changed", "org.goxpc.test.unhandled")))
	h.start()
	h.post("org.goxpc.test.unhandled", 1)
	waitFor(t, "the job to run once and exit", func() bool {
		d := h.print("test.ev.unhandled")
		return intOf(d, bootstrap.KeyRuns) == 1 && strOf(d, bootstrap.KeyState) == "waiting"
	})
	h.post("org.goxpc.test.unhandled", 2)
	time.Sleep(4 * time.Second)
	d := h.print("test.ev.unhandled")
	if runs := intOf(d, bootstrap.KeyRuns); runs != 1 {
		t.Errorf("launched %d times, want 1 (a relaunch loop)", runs)
	}
	status, n := h.streamStatus("test.ev.unhandled", launchd.StreamNotify)
	if n != 2 || !strings.Contains(status, "2 events pending for "+launchd.StreamNotify+": the job ran without handling the stream (no HandleEvents") {
		t.Errorf("%d pending, status %q", n, status)
	}
	if len(eventLines(logPath, 0)) != 0 {
		t.Error("a handler the job never set got events")
	}
}

// TestLaunchEventHandlersAfterRestart: a service adopted by the next xpcd
// declares its handlers again, and its events reach it.
func TestLaunchEventHandlersAfterRestart(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	h.cfg.StopServicesOnClose = false
	logPath := filepath.Join(h.dir, "events.log")
	h.writePlist(h.eventsJob("test.ev.adopt", logPath, launchd.StreamNotify, "ack", nil,
		notifyEvents("changed", "org.goxpc.test.adopt")))
	d1 := h.start()
	h.post("org.goxpc.test.adopt", 1)
	waitFor(t, "the first event", func() bool { return len(eventLines(logPath, 0)) == 1 })
	pid := strings.Fields(eventLines(logPath, 0)[0])[0]
	waitFor(t, "the acknowledgement", func() bool { _, n := h.streamStatus("test.ev.adopt", launchd.StreamNotify); return n == 0 })
	h.close(d1)
	h.cfg.StopServicesOnClose = true
	h.start()
	waitFor(t, "the handler declared to the new xpcd", func() bool {
		return strings.Contains(h.logs.String(), "launch events: handler set") &&
			strings.Count(h.logs.String(), "launch events: handler set") >= 2
	})
	h.post("org.goxpc.test.adopt", 2)
	waitFor(t, "the event after the restart", func() bool { return len(eventLines(logPath, 0)) == 2 })
	if got := strings.Fields(eventLines(logPath, 0)[1])[0]; got != pid {
		t.Errorf("the event went to pid %s, want the adopted %s", got, pid)
	}
}
