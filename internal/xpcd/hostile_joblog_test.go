package xpcd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// A service's output is bytes, not text: a line holding a NUL byte or
// bytes that are not UTF-8 (binary output, Latin-1), or a long line of
// UTF-8 cut in a character, must not make its log unreadable: OpLog,
// follow and print answer with such bytes shown as U+FFFD, for its user
// and for root alike.
func TestLogOfBytesThatAreNotText(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	long := strings.Repeat("€", 400) // 1200 bytes: cut for print in a character
	h.writePlist(shJob("test.bytes", `printf 'nul\000byte\n'; printf 'latin \351t\351\n' >&2; printf '%s\n' "`+long+`"; printf 'last\n'; exec sleep 60`))
	h.start()
	waitFor(t, "the lines", func() bool { return strings.Contains(h.jobLogText("test.bytes"), " last\n") })
	tgt := h.target("test.bytes")
	check := func(what string, ls xpc.Array, want int) {
		t.Helper()
		if len(ls) < want {
			t.Fatalf("%s: %d lines, want %d: %v", what, len(ls), want, ls)
		}
		for _, l := range ls {
			if s := string(l.(xpc.String)); !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Errorf("%s: %q", what, s)
			}
		}
	}
	r, err := h.admin(bootstrap.OpLog, bootstrap.KeyTarget, tgt)
	if err != nil {
		t.Fatalf("log: %v", err)
	}
	ls, _ := r.Array(bootstrap.KeyLogLines)
	check("log", ls, 4)
	if !strings.Contains(xpc.Format(r), "nul\uFFFDbyte") { // the streams' order is not known
		t.Errorf("no NUL line: %s", xpc.Format(r))
	}
	pr, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, tgt)
	if err != nil {
		t.Fatalf("print: %v", err)
	}
	ls, _ = pr.Array(bootstrap.KeyLog)
	check("print", ls, 4)

	got := make(chan xpc.Array, 4)
	fc := h.dial(xpc.HandlerFunc(func(_ context.Context, m *xpc.Message) {
		ls, _ := m.Body.Array(bootstrap.KeyLogLines)
		got <- ls
	}))
	defer fc.Cancel()
	r, err = fc.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpLog, bootstrap.KeyTarget, tgt, bootstrap.KeyFollow, true))
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	ls, _ = r.Array(bootstrap.KeyLogLines)
	check("follow's first reply", ls, 4)
	h.d.sup.logs.record(UserDomain(uint32(os.Geteuid())), "test.bytes",
		logRecord{at: time.Now(), stream: "out", prio: 6, text: "more\x00\xff"})
	select {
	case ls := <-got:
		check("followed", ls, 1)
	case <-time.After(testTimeout):
		t.Fatal("the follower got nothing")
	}
}

// A log outlives its job, and labels are the user's: loading job after
// job under new labels must not grow root's state directory without
// bound. Past maxLogFilesPerDomain files in a domain, the oldest are
// removed, never one a job is writing.
func TestJobLogFilesPerDomainAreBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ls := newJobLogs(dir, 1<<10, "-", discardLogger())
	const dom = "user/4321"
	held := ls.acquire(dom, "test.held")
	defer held.release()
	held.write(logRecord{at: time.Now(), stream: "out", prio: 6, text: "still running"})
	for i := range maxLogFilesPerDomain + 100 {
		ls.record(dom, fmt.Sprintf("test.label%d", i), logRecord{at: time.Now(), stream: "out", prio: 6, text: "x"})
	}
	held.write(logRecord{at: time.Now(), stream: "out", prio: 6, text: "and on"})
	ents, err := os.ReadDir(filepath.Join(dir, logName(dom)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > maxLogFilesPerDomain {
		t.Errorf("%d files in the domain's directory, the bound is %d", len(ents), maxLogFilesPerDomain)
	}
	if b, err := os.ReadFile(held.path); err != nil || !strings.Contains(string(b), "still running") {
		t.Errorf("the log of a running job was removed: %v", err)
	}
	last := fmt.Sprintf("test.label%d", maxLogFilesPerDomain+99)
	if lines, _ := ls.peek(dom, last).lastLines(1); len(lines) != 1 {
		t.Errorf("the newest log: %q", lines)
	}
}

// A follower that never reads, of a job writing long lines, must not make
// xpcd hold a megabyte per message it falls behind: past logFollowBytes
// of lines queued, it is told it overflowed and dropped, long before
// logFollowLimit messages (here 300 lines of 16 KiB, under the count).
func TestLogFollowerBoundedInBytes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: h.paths.Socket}); err != nil {
		t.Fatal(err)
	}
	dom := UserDomain(uint32(os.Geteuid()))
	body, err := xpc.Encode(xpc.Dict(bootstrap.KeyOp, bootstrap.OpLog, bootstrap.KeyTarget, dom+"/test.loud", bootstrap.KeyFollow, true))
	if err != nil {
		t.Fatal(err)
	}
	// A request as the library frames it: version 1, kind 2, no flags,
	// no descriptor, id 1.
	frame := append([]byte{1, 2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, body...)
	if err := unix.Sendmsg(fd, frame, nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	ls := h.d.sup.logs
	followers := func() int32 {
		ls.mu.Lock()
		jl := ls.logs[logKey(dom, "test.loud")]
		ls.mu.Unlock()
		if jl == nil {
			return -1
		}
		return jl.nfollowers.Load()
	}
	waitFor(t, "the follower", func() bool { return followers() == 1 })
	line := strings.Repeat("x", maxLogLine)
	for range 300 {
		ls.record(dom, "test.loud", logRecord{at: time.Now(), stream: "out", prio: 6, text: line})
	}
	if n := followers(); n != 0 {
		t.Errorf("a follower %d MiB behind is still followed", 300*maxLogLine>>20)
	}
}

// A log followed is never forgotten: with more than maxIdleLogs logs,
// one whose follower was being attached (past ls.mu, before jl.mu) was
// evicted as idle, and the follower, left on a log nobody writes, got
// nothing more.
func TestFollowedLogIsNotEvicted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start()
	ls := h.d.sup.logs
	dom := UserDomain(uint32(os.Geteuid()))
	jl := ls.acquire(dom, "test.followed")
	jl.release()
	jl.mu.Lock() // holds the follow between ls.mu and jl.mu
	got := make(chan string, 16)
	fc := h.dial(xpc.HandlerFunc(func(_ context.Context, m *xpc.Message) {
		ls, _ := m.Body.Array(bootstrap.KeyLogLines)
		for _, l := range ls {
			got <- string(l.(xpc.String))
		}
	}))
	defer fc.Cancel()
	replied := make(chan error, 1)
	go func() {
		_, err := fc.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpLog, bootstrap.KeyTarget, dom+"/test.followed", bootstrap.KeyFollow, true))
		replied <- err
	}()
	waitFor(t, "the follow to start", func() bool {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		return len(ls.follows) == 1
	})
	for i := range maxIdleLogs + 10 {
		ls.record(dom, fmt.Sprintf("test.idle%d", i), logRecord{at: time.Now(), stream: "out", prio: 6, text: "x"})
	}
	jl.mu.Unlock()
	if err := <-replied; err != nil {
		t.Fatalf("follow: %v", err)
	}
	ls.record(dom, "test.followed", logRecord{at: time.Now(), stream: "out", prio: 6, text: "for the follower"})
	select {
	case l := <-got:
		if !strings.HasSuffix(l, "for the follower") {
			t.Errorf("followed line %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the follower got nothing: its log was forgotten")
	}
}

// A line starting "panic:" on standard error does not take every later
// line of a service that lives on: past panicWindow, a line ends the
// panic's record and is logged as itself, while the service runs.
func TestPanicLineDoesNotHoldBackLaterLines(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(shJob("test.echoes", `echo "panic: what a client sent" >&2; echo "in the panic" >&2; sleep 1.5; echo "later line" >&2; exec sleep 60`))
	h.start()
	waitFor(t, "the later line", func() bool { return strings.Contains(h.jobLogText("test.echoes"), " err 3 later line\n") })
	text := h.jobLogText("test.echoes")
	if !strings.Contains(text, " err 3 panic: what a client sent\n\tin the panic\n") {
		t.Errorf("the panic's record:\n%s", text)
	}
}

// The name a service tried to check in, which its MachServices do not
// declare, is the service's to choose: a refusal of its waiting clients
// (root's included) names it only if it is a service name, never with
// a line of its own making or kilobytes of text.
func TestFailFastUndeclaredNameIsNotEchoed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	bad := "x\nxpcd: all is well " + strings.Repeat("a", 8<<10)
	h.writePlist(testJob{label: "test.ff.hud", names: []string{bad},
		extra: map[string]any{"MachServices": map[string]any{"test.ff.hud.svc": true}}})
	h.start()
	r := ffCall(t, ffConn(t, h, "test.ff.hud.svc"), xpc.ReasonExited)
	if strings.Contains(r.Description, "\n") || len(r.Description) > 1024 {
		t.Errorf("description of %d bytes: %q", len(r.Description), r.Description[:min(len(r.Description), 200)])
	}
}

// The journal limits entries by sender, and xpcd is the sender of every
// job's: a user's domain gets journalBurst records at once, then
// journalRate a second, so that one user's service writing in a loop
// cannot use up the limit for everyone's lines. The system domain and
// root's own are not limited, and another user has a quota of their own.
func TestJournalQuotaPerUserDomain(t *testing.T) {
	j := journal{quota: true} // as a root xpcd's
	t0 := time.Now()
	sent := func(dom string, n int, at time.Time) int {
		k := 0
		for range n {
			if j.allow(dom, at) {
				k++
			}
		}
		return k
	}
	if n := sent("user/4321", 3*journalBurst, t0); n != journalBurst {
		t.Errorf("a burst of a user's domain: %d records sent, want %d", n, journalBurst)
	}
	if n := sent("user/4322", 10, t0); n != 10 {
		t.Errorf("another user's: %d of 10", n)
	}
	for _, dom := range []string{DomainSystem, UserDomain(0)} {
		if n := sent(dom, 3*journalBurst, t0); n != 3*journalBurst {
			t.Errorf("%s: %d records sent, want all", dom, n)
		}
	}
	if n := sent("user/4321", 3*journalRate, t0.Add(2*time.Second)); n != 2*journalRate {
		t.Errorf("2 s later: %d records sent, want %d", n, 2*journalRate)
	}
}
