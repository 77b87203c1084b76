package xpcd

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// monitorEnds makes a socket pair for a monitor: the end xpcctl keeps and
// the end it sends (an FD object, which the caller closes once sent).
func monitorEnds(t *testing.T) (*os.File, *xpc.FD) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine := os.NewFile(uintptr(fds[0]), "monitor")
	t.Cleanup(func() { mine.Close() })
	return mine, xpc.NewFD(os.NewFile(uintptr(fds[1]), "monitor-service"))
}

// attachMonitor sends OpMonitor with a new socket and kv (the target or
// pid), and returns the monitor's end and the reply.
func (h *harness) attachMonitor(kv ...any) (*os.File, *xpc.Dictionary, error) {
	h.t.Helper()
	mine, theirs := monitorEnds(h.t)
	defer theirs.Close()
	r, err := h.admin(bootstrap.OpMonitor, append(kv, bootstrap.KeySocket, theirs)...)
	return mine, r, err
}

// readRecord reads the next mirror record.
func readRecord(t *testing.T, f *os.File) *xpc.Dictionary {
	t.Helper()
	buf := make([]byte, bootstrap.MonitorRecordMax+4096)
	f.SetReadDeadline(time.Now().Add(testTimeout))
	n, err := f.Read(buf)
	if err != nil {
		t.Fatalf("no mirror record: %v", err)
	}
	obj, err := xpc.Decode(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*xpc.Dictionary)
}

// recordBody decodes a record's body.
func recordBody(t *testing.T, rec *xpc.Dictionary) *xpc.Dictionary {
	t.Helper()
	b, _ := rec.Data(bootstrap.KeyMonBody)
	obj, err := xpc.Decode(b)
	if err != nil {
		t.Fatalf("record body: %v", err)
	}
	return obj.(*xpc.Dictionary)
}

// A monitor attached before the service launches waits for it, and sees
// its first request and the reply; a monitor attached by pid to the
// running instance sees the next. Either, gone, is forgotten by xpcd.
func TestMonitorSeesRequestAndReply(t *testing.T) {
	h := newHarness(t)
	h.writePlist(testJob{label: "test.mon", names: []string{"test.mon.svc"}, env: map[string]string{"XPCD_TEST_RUNTIME": "1"}})
	h.start()
	mon, r, err := h.attachMonitor(bootstrap.KeyTarget, h.target("test.mon"))
	if err != nil {
		t.Fatal(err)
	}
	if s := strOf(r, bootstrap.KeyStatus); s != bootstrap.MonitorWaiting {
		t.Fatalf("status %q before the service runs, want %q", s, bootstrap.MonitorWaiting)
	}
	c := h.mustLookup("test.mon.svc")
	pid := ping(t, c)
	in, out := readRecord(t, mon), readRecord(t, mon)
	if strOf(in, bootstrap.KeyMonDir) != bootstrap.MonIn || strOf(in, bootstrap.KeyMonKind) != bootstrap.MonRequest ||
		strOf(recordBody(t, in), "cmd") != "ping" {
		t.Fatalf("first record: %s", xpc.Format(in))
	}
	if strOf(out, bootstrap.KeyMonDir) != bootstrap.MonOut || strOf(out, bootstrap.KeyMonKind) != bootstrap.MonReply ||
		intOf(recordBody(t, out), "pid") != pid {
		t.Fatalf("second record: %s", xpc.Format(out))
	}
	id, _ := in.Uint64(bootstrap.KeyMonID)
	to, _ := out.Uint64(bootstrap.KeyMonReplyTo)
	if id == 0 || to != id || intOf(in, bootstrap.KeyMonPID) != os.Getpid() || intOf(in, bootstrap.KeyMonFDs) != 0 ||
		intOf(in, bootstrap.KeyMonSize) <= 0 {
		t.Fatalf("request %s, reply %s", xpc.Format(in), xpc.Format(out))
	}
	tin, _ := in.Date(bootstrap.KeyMonTime)
	tout, _ := out.Date(bootstrap.KeyMonTime)
	if tout.Before(tin) {
		t.Errorf("the reply's time %v is before the request's %v", tout, tin)
	}

	// By pid, on the running instance: attached at once.
	mon2, r, err := h.attachMonitor(bootstrap.KeyPID, int64(pid))
	if err != nil {
		t.Fatal(err)
	}
	if s := strOf(r, bootstrap.KeyStatus); s != bootstrap.MonitorAttached || intOf(r, bootstrap.KeyPID) != pid {
		t.Fatalf("by pid: %s", xpc.Format(r))
	}
	// The socket goes to the service on its check-in channel, not on c:
	// ping until the service has it. It may come between a request and
	// its reply: the first record is then that reply.
	buf := make([]byte, bootstrap.MonitorRecordMax)
	deadline := time.Now().Add(testTimeout)
	for got := false; !got; {
		if time.Now().After(deadline) {
			t.Fatal("the monitor attached by pid sees nothing")
		}
		ping(t, c)
		mon2.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := mon2.Read(buf)
		if err == nil {
			rec, _ := xpc.Decode(buf[:n])
			d, _ := rec.(*xpc.Dictionary)
			if d == nil {
				t.Fatalf("after attaching by pid: %v", rec)
			}
			switch strOf(d, bootstrap.KeyMonKind) {
			case bootstrap.MonRequest:
				got = true
			case bootstrap.MonReply:
			default:
				t.Fatalf("after attaching by pid: %v", rec)
			}
		}
	}
	// Gone: xpcd lets go of both.
	mon.Close()
	mon2.Close()
	waitFor(t, "xpcd to forget the monitors", func() bool {
		n := -1
		h.d.sup.call(testCtx(t), func() { n = len(h.d.sup.mon.byJob) })
		return n == 0
	})
	ping(t, c)
}

// A job has at most maxMonitorsPerJob monitors; the next is refused, by
// rule.
func TestMonitorLimit(t *testing.T) {
	h := newHarness(t)
	h.writePlist(testJob{label: "test.monlim", names: []string{"test.monlim.svc"}})
	h.start()
	for range maxMonitorsPerJob {
		if _, _, err := h.attachMonitor(bootstrap.KeyTarget, h.target("test.monlim")); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := h.attachMonitor(bootstrap.KeyTarget, h.target("test.monlim"))
	if reasonOf(err) != bootstrap.ReasonDenied || !strings.Contains(err.Error(), bootstrap.RuleMonitorLimit) {
		t.Fatalf("monitor past the limit: %v", err)
	}
}

// Hostile OpMonitor requests are refused with a typed error and leave
// nothing behind: no socket, a descriptor that is not a socket, a stream
// socket, no target, an unknown pid.
func TestMonitorHostileRequests(t *testing.T) {
	h := newHarness(t)
	h.writePlist(testJob{label: "test.monbad", names: []string{"test.monbad.svc"}})
	h.start()
	target := h.target("test.monbad")
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	defer a.Close()
	defer b.Close()
	_, good := monitorEnds(t)
	defer good.Close()
	for _, c := range []struct {
		name string
		kv   []any
	}{
		{"no socket", []any{bootstrap.KeyTarget, target}},
		{"a string for the socket", []any{bootstrap.KeyTarget, target, bootstrap.KeySocket, "3"}},
		{"a file", []any{bootstrap.KeyTarget, target, bootstrap.KeySocket, xpc.NewFD(devnull)}},
		{"a stream socket", []any{bootstrap.KeyTarget, target, bootstrap.KeySocket, xpc.NewFD(a)}},
		{"no target", []any{bootstrap.KeySocket, good}},
		{"a domain alone", []any{bootstrap.KeyTarget, "system", bootstrap.KeySocket, good}},
	} {
		_, err := h.admin(bootstrap.OpMonitor, c.kv...)
		if reasonOf(err) != bootstrap.ReasonBadRequest {
			t.Errorf("%s: %v, want reason %s", c.name, err, bootstrap.ReasonBadRequest)
		}
	}
	_, err = h.admin(bootstrap.OpMonitor, bootstrap.KeyPID, int64(1<<30), bootstrap.KeySocket, good)
	if reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("unknown pid: %v", err)
	}
	n := -1
	h.d.sup.call(testCtx(t), func() { n = len(h.d.sup.mon.byJob) })
	if n != 0 {
		t.Errorf("%d jobs have monitors after refused requests", n)
	}
}

// Another user may not monitor a user's agent or a system daemon: the
// refusal names the rule.
func TestMonitorOtherUserRefused(t *testing.T) {
	b := newTestUser(t)
	in := newIsoInstance(t)
	h := in.h
	h.writePlist(h.lcJob("test.mon.sys", []string{"test.mon.sys.svc"}, nil, nil, in.exe), h.paths.Daemons)
	h.start()
	steps := []isoStep{
		{ID: "system", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpMonitor, bootstrap.KeyTarget: "system/test.mon.sys"}},
		{ID: "user", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpMonitor, bootstrap.KeyTarget: UserDomain(isoUserA) + "/x"}},
	}
	res := isoClient(t, in.exe, b.uid, b.gid, h.dir, steps)
	for _, s := range steps {
		r := res[s.ID]
		if r.OK || r.Reason != bootstrap.ReasonDenied || !strings.Contains(r.Error, bootstrap.RuleMonitorAccess) {
			t.Errorf("%s: %+v, want denied by rule %s", s.ID, r, bootstrap.RuleMonitorAccess)
		}
	}
}

// A job booted out lets its monitors go: the monitor's end reads the end
// of the socket, which xpcctl reports.
func TestMonitorEndsWithTheJob(t *testing.T) {
	h := newHarness(t)
	h.writePlist(testJob{label: "test.monout", names: []string{"test.monout.svc"}})
	h.start()
	mon, _, err := h.attachMonitor(bootstrap.KeyTarget, h.target("test.monout"))
	if err != nil {
		t.Fatal(err)
	}
	h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.monout"), bootstrap.KeyWait, true)
	mon.SetReadDeadline(time.Now().Add(testTimeout))
	var b [64]byte
	if n, err := mon.Read(b[:]); !errors.Is(err, io.EOF) {
		t.Fatalf("monitor after bootout: %d bytes, %v; want the end", n, err)
	}
}
