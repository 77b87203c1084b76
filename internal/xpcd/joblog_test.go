package xpcd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// fakeJournal is a journal socket in a temporary directory: it keeps
// every entry sent to it, parsed.
type fakeJournal struct {
	path string
	mu   sync.Mutex
	ents []map[string]string
	bad  []string
}

func newFakeJournal(t testing.TB) *fakeJournal {
	t.Helper()
	dir, err := os.MkdirTemp("", "jr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	j := &fakeJournal{path: filepath.Join(dir, "socket")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: j.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1<<20)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			e, perr := parseJournalEntry(buf[:n])
			j.mu.Lock()
			if perr != nil {
				j.bad = append(j.bad, perr.Error())
			} else {
				j.ents = append(j.ents, e)
			}
			j.mu.Unlock()
		}
	}()
	return j
}

// parseJournalEntry parses a datagram of the native protocol.
func parseJournalEntry(b []byte) (map[string]string, error) {
	e := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, errors.New("a field without a newline")
		}
		if eq := bytes.IndexByte(b[:nl], '='); eq >= 0 {
			e[string(b[:eq])] = string(b[eq+1 : nl])
			b = b[nl+1:]
			continue
		}
		key := string(b[:nl])
		b = b[nl+1:]
		if len(b) < 8 {
			return nil, errors.New("a binary field without its length")
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if uint64(len(b)) < n+1 || b[n] != '\n' {
			return nil, fmt.Errorf("binary field %s: bad length %d", key, n)
		}
		e[key] = string(b[:n])
		b = b[n+1:]
	}
	return e, nil
}

// entries returns the entries received so far.
func (j *fakeJournal) entries() []map[string]string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.bad) > 0 {
		panic("malformed journal entries: " + strings.Join(j.bad, "; "))
	}
	return append([]map[string]string(nil), j.ents...)
}

// find returns the entries with key set to a value containing s.
func (j *fakeJournal) find(key, s string) []map[string]string {
	var out []map[string]string
	for _, e := range j.entries() {
		if strings.Contains(e[key], s) {
			out = append(out, e)
		}
	}
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(discard{}, nil)) }

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// A job's log is rotated at its cap, one older file kept: never more than
// twice the cap on disk, and the newest records are in the current file.
func TestJobLogRotatesAtTheCap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const max = 1000
	ls := newJobLogs(dir, max, "-", discardLogger())
	jl := ls.acquire("user/0", "test.rot")
	for i := range 500 {
		jl.write(logRecord{at: time.Now(), pid: 7, stream: "out", prio: 6, text: fmt.Sprintf("line %d", i)})
		cur, _ := os.Stat(jl.path)
		old, _ := os.Stat(jl.path + ".1")
		var total int64
		for _, st := range []os.FileInfo{cur, old} {
			if st != nil {
				if st.Size() > max {
					t.Fatalf("after line %d: %s has %d bytes, over the cap", i, st.Name(), st.Size())
				}
				total += st.Size()
			}
		}
		if total > 2*max {
			t.Fatalf("after line %d: %d bytes on disk", i, total)
		}
	}
	jl.release()
	b, err := os.ReadFile(jl.path)
	if err != nil || !strings.HasSuffix(string(b), " 7 out 6 line 499\n") {
		t.Fatalf("current file: %q, %v", b, err)
	}
	if _, err := os.Stat(jl.path + ".1"); err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	if st, _ := os.Stat(jl.path); st.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v", st.Mode())
	}
	if st, _ := os.Stat(filepath.Dir(jl.path)); st.Mode().Perm() != 0o700 {
		t.Errorf("log directory mode %v", st.Mode())
	}
	lines, trunc := jl.lastLines(3)
	if len(lines) != 3 || !strings.HasSuffix(lines[2], "line 499") || trunc {
		t.Errorf("last lines: %q %v", lines, trunc)
	}
}

// log -n and print count records, as journalctl counts entries: a panic
// or a crash record comes whole, never as the tail of its stack, and
// print shows each by its first line.
func TestJobLogTailCountsRecords(t *testing.T) {
	t.Parallel()
	ls := newJobLogs(t.TempDir(), 1<<20, "-", discardLogger())
	jl := ls.acquire("user/0", "test.rec")
	defer jl.release()
	rec := func(stream string, text string) {
		jl.write(logRecord{at: time.Now(), pid: 7, stream: stream, prio: 3, text: text})
	}
	rec("out", "before")
	rec("err", "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/x/main.go:3 +0x1")
	rec("xpcd", "crashed: test.rec (pid 7) exited with status 2; the last lines of its standard error:\n  panic: boom\n  main.main()")
	lines, trunc := jl.lastLines(2)
	if len(lines) != 8 || !strings.HasSuffix(lines[0], " err 3 panic: boom") || !strings.Contains(lines[5], " xpcd 3 crashed: ") || trunc {
		t.Errorf("the last 2 records: %q %v", lines, trunc)
	}
	if lines, _ = jl.lastLines(1); len(lines) != 3 || !strings.Contains(lines[0], "crashed: ") {
		t.Errorf("the last record: %q", lines)
	}
	tail, _ := ls.lastLines("user/0", "test.rec")
	want := []string{" out 3 before", " err 3 panic: boom (+4 lines)", "exited with status 2; the last lines of its standard error: (+2 lines)"}
	if len(tail) != len(want) {
		t.Fatalf("print's tail: %q", tail)
	}
	for i, w := range want {
		if !strings.HasSuffix(tail[i], w) {
			t.Errorf("print's tail %d: %q, want ...%q", i, tail[i], w)
		}
	}
}

// No label or domain names a path outside the logs directory.
func TestJobLogNamesStayInside(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	ls := newJobLogs(logs, 1<<20, "-", discardLogger())
	for _, name := range []string{"../../escape", "a/b", "..", ".", "", "/abs", "x/../../y", ".hidden", "%2F"} {
		ls.record("user/0", name, logRecord{at: time.Now(), stream: "out", prio: 6, text: "hi"})
		ls.record(name, "label", logRecord{at: time.Now(), stream: "out", prio: 6, text: "hi"})
	}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(logs, p); p != dir && strings.HasPrefix(rel, "..") {
			return fmt.Errorf("%s is outside %s", p, logs)
		}
		if info.Mode().IsRegular() && filepath.Dir(filepath.Dir(p)) != logs {
			return fmt.Errorf("%s is not LOGS/DOMAIN/LABEL.log", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if logName("a/b") == logName("a%2Fb") {
		t.Error("two labels share a file")
	}
	// Long labels fit in a file name, and stay apart.
	long := strings.Repeat("a", 300)
	if a, b := logName(long), logName(long+"b"); a == b || len(a) > maxLogName {
		t.Errorf("long labels: %q %q", a, b)
	}
	ls.record("user/0", long, logRecord{at: time.Now(), stream: "out", prio: 6, text: "long"})
	if ls.warned.Load() {
		t.Error("a long label's log could not be written")
	}
	// Reading a log that never was leaves nothing behind.
	n := len(ls.logs)
	if lines, _ := ls.peek("user/0", "test.never").lastLines(5); len(lines) != 0 || len(ls.logs) != n {
		t.Errorf("a log never written: %q, %d logs remembered, was %d", lines, len(ls.logs), n)
	}
}

// Each stream's lines get their priority (stderr error, stdout info, or
// a <N> prefix, taken off), in the file and in the journal, with the
// job's identifier, pid and target; a Go panic is one record.
func TestOutputPrioritiesAndJournal(t *testing.T) {
	t.Parallel()
	fj := newFakeJournal(t)
	dir := t.TempDir()
	ls := newJobLogs(filepath.Join(dir, "logs"), 1<<20, fj.path, discardLogger())
	c := logsComponent{ls: ls}
	c.start(context.Background())
	defer c.close(context.Background())
	writeOutput(t, filepath.Join(dir, "out"), outputSink{log: discardLogger(), logs: ls, dom: "user/0", label: "test.prio"},
		"plain out\n<2>critical out\n<9>not a priority\n",
		"plain err\n<7>debug err\npanic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/x/main.go:3 +0x1\n")
	want := map[string]string{ // MESSAGE -> PRIORITY
		"plain out": "6", "critical out": "2", "<9>not a priority": "6", "plain err": "3", "debug err": "7",
	}
	waitFor(t, "the journal's entries", func() bool { return len(fj.entries()) == len(want)+1 })
	for _, e := range fj.entries() {
		if e["SYSLOG_IDENTIFIER"] != "test.prio" || e["SYSLOG_PID"] != "4242" || e["OBJECT_PID"] != "4242" || e["XPC_JOB"] != "user/0/test.prio" {
			t.Errorf("entry %q", e)
		}
		msg := e["MESSAGE"]
		if strings.HasPrefix(msg, "panic: boom") {
			if !strings.Contains(msg, "\ngoroutine 1 [running]:\nmain.main()\n\t/x/main.go:3 +0x1") || e["PRIORITY"] != "3" {
				t.Errorf("the panic's entry: %q", e)
			}
			continue
		}
		if p, ok := want[msg]; !ok || p != e["PRIORITY"] {
			t.Errorf("entry %q: want priority %q", e, p)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "logs", "user%2F0", "test.prio.log"))
	for _, s := range []string{" 4242 out 2 critical out\n", " 4242 err 7 debug err\n", " 4242 err 3 panic: boom\n\t\n\tgoroutine 1 [running]:\n\tmain.main()\n"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("the log file lacks %q:\n%s", s, b)
		}
	}
}

// A panic longer than maxPanicBytes is cut, and says so.
func TestPanicBlockIsBounded(t *testing.T) {
	t.Parallel()
	var p panicBlock
	if p.add("not a panic") {
		t.Fatal("an ordinary line started a panic")
	}
	p.add("fatal error: out of memory")
	for range 10000 {
		p.add(strings.Repeat("x", 99))
	}
	r := p.record(1)
	if len(r.text) > maxPanicBytes+100 || !strings.Contains(r.text, "more bytes of the panic left out") || !strings.HasPrefix(r.text, "fatal error:") {
		t.Errorf("record of %d bytes, ending %q", len(r.text), r.text[len(r.text)-60:])
	}
}

// The system domain's logs are root's; a user's domain's, the user's.
func TestMayReadLog(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		uid   uint32
		dom   string
		owner uint32
		want  bool
	}{{0, DomainSystem, 0, true}, {501, DomainSystem, 0, false}, {501, "user/501", 501, true}, {502, "user/501", 501, false}, {0, "user/501", 501, true}} {
		if got := mayReadLog(c.uid, c.dom, c.owner); got != c.want {
			t.Errorf("mayReadLog(%d, %s) = %v", c.uid, c.dom, got)
		}
	}
}

// shJob is a job running script with /bin/sh.
func shJob(label, script string) testJob {
	return testJob{label: label, runAtLoad: true, extra: map[string]any{"ProgramArguments": []any{"/bin/sh", "-c", script}}}
}

// jobLogText reads the job's log file in the harness's state directory.
func (h *harness) jobLogText(label string) string {
	b, _ := os.ReadFile(filepath.Join(h.paths.StateDir, "logs", logName(UserDomain(uint32(os.Geteuid()))), logName(label)+".log"))
	return string(b)
}

// A crash (a status other than 0, or a signal xpcd did not send) is
// logged at error level with the last lines of stderr, in xpcd's log, the
// job's log and the journal; a clean exit is not.
func TestCrashRecord(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(shJob("test.crash", `echo starting; i=1; while [ $i -le 30 ]; do echo "err line $i" >&2; i=$((i+1)); done; exit 3`))
	h.writePlist(shJob("test.segv", `echo '<4>dying' >&2; kill -SEGV $$`))
	h.writePlist(shJob("test.clean", `echo bye >&2; exit 0`))
	h.start()
	waitFor(t, "the crash records", func() bool {
		return strings.Contains(h.jobLogText("test.crash"), "crashed:") && strings.Contains(h.jobLogText("test.segv"), "crashed:")
	})
	text := h.jobLogText("test.crash")
	if !strings.Contains(text, "exited with status 3; the last lines of its standard error:\n\t  err line 11\n") ||
		!strings.Contains(text, "\t  err line 30\n") || strings.Contains(text, "\t  err line 10\n") {
		t.Errorf("crash record:\n%s", text)
	}
	if text := h.jobLogText("test.segv"); !strings.Contains(text, "xpcd 3 crashed: test.segv") || !strings.Contains(text, "SIGSEGV") || !strings.Contains(text, "\t  dying") || strings.Contains(text, "<4>") {
		t.Errorf("crash record of a signal:\n%s", text)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "level=ERROR msg=crashed component=supervisor target="+h.target("test.crash")) {
		t.Errorf("xpcd's log has no crash record")
	}
	h.waitState("test.clean", "waiting")
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(h.jobLogText("test.clean"), "crashed") || !strings.Contains(h.jobLogText("test.clean"), "bye") {
		t.Errorf("a clean exit's log:\n%s", h.jobLogText("test.clean"))
	}
}

// A crash record reaches the journal, at error, as one entry. (Few
// lines: a test's socket queues only net.unix.max_dgram_qlen datagrams,
// and sends that find it full are dropped.)
func TestCrashRecordInJournal(t *testing.T) {
	t.Parallel()
	fj := newFakeJournal(t)
	h := newHarness(t)
	h.cfg.JournalSocket = fj.path
	h.writePlist(shJob("test.jcrash", `echo dying >&2; exit 4`))
	h.start()
	waitFor(t, "the crash in the journal", func() bool { return len(fj.find("MESSAGE", "crashed:")) == 1 })
	e := fj.find("MESSAGE", "crashed:")[0]
	if e["PRIORITY"] != "3" || e["XPC_STREAM"] != "xpcd" || e["SYSLOG_IDENTIFIER"] != "test.jcrash" ||
		!strings.Contains(e["MESSAGE"], "exited with status 4; the last lines of its standard error:\n  dying") {
		t.Errorf("journal entry %q", e)
	}
}

// TestLogHelperProcess is not a test: it is a service that panics, for
// TestGoPanicIsOneRecord.
func TestLogHelperProcess(t *testing.T) {
	if os.Getenv("XPCD_TEST_LOGPANIC") != "1" {
		t.Skip("not a test: a service the other tests launch")
	}
	fmt.Println("about to panic")
	panic("boom")
}

// A Go panic reaches the journal as one entry and the log as one block,
// before the crash record.
func TestGoPanicIsOneRecord(t *testing.T) {
	t.Parallel()
	fj := newFakeJournal(t)
	h := newHarness(t)
	h.cfg.JournalSocket = fj.path
	h.writePlist(testJob{label: "test.panic", runAtLoad: true, env: map[string]string{"XPCD_TEST_LOGPANIC": "1"},
		extra: map[string]any{"ProgramArguments": []any{h.exe, "-test.run=^TestLogHelperProcess$"}}})
	h.start()
	waitFor(t, "the crash record", func() bool { return len(fj.find("MESSAGE", "crashed:")) == 1 })
	ps := fj.find("MESSAGE", "panic: boom")
	if len(ps) != 2 { // the panic, and the crash record's last lines
		t.Fatalf("entries with the panic: %q", ps)
	}
	p := ps[0]
	if !strings.HasPrefix(p["MESSAGE"], "panic: boom") || !strings.Contains(p["MESSAGE"], "\ngoroutine ") || p["SYSLOG_IDENTIFIER"] != "test.panic" {
		t.Errorf("the panic's entry: %q", p)
	}
	for _, e := range fj.entries() {
		if strings.HasPrefix(e["MESSAGE"], "goroutine ") {
			t.Errorf("a line of the panic has an entry of its own: %q", e)
		}
	}
	text := h.jobLogText("test.panic")
	if !strings.Contains(text, " err 3 panic: boom") || strings.Index(text, "panic: boom") > strings.Index(text, "crashed:") {
		t.Errorf("log:\n%s", text)
	}
}

// A service that writes across an xpcd restart loses no line: the next
// xpcd reopens the FIFOs and goes on writing the same log.
func TestLogAcrossRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.StopServicesOnClose = false
	const n = 250
	h.writePlist(shJob("test.steady", fmt.Sprintf(`i=1; while [ $i -le %d ]; do echo "line $i"; echo "eline $i" >&2; i=$((i+1)); sleep 0.01; done; sleep 0.2`, n)))
	d := h.start()
	// Twice: the second restart finds the FIFOs the first one reopened.
	for i, at := range []int{20, 80} {
		waitFor(t, "some lines", func() bool { return strings.Contains(h.jobLogText("test.steady"), fmt.Sprintf(" eline %d\n", at)) })
		h.close(d)
		time.Sleep(300 * time.Millisecond)
		h.cfg.StopServicesOnClose = i == 1 // the last one stops it
		d = h.start()
	}
	waitFor(t, "the last line", func() bool {
		text := h.jobLogText("test.steady")
		return strings.Contains(text, fmt.Sprintf(" line %d\n", n)) && strings.Contains(text, fmt.Sprintf(" eline %d\n", n))
	})
	text := h.jobLogText("test.steady")
	for i := 1; i <= n; i++ {
		for _, f := range []string{" out 6 line %d\n", " err 3 eline %d\n"} {
			if c := strings.Count(text, fmt.Sprintf(f, i)); c != 1 {
				t.Fatalf("%q is in the log %d times:\n%s", fmt.Sprintf(f, i), c, text)
			}
		}
	}
}

// OpLog answers the last lines, follows, is bounded per user, and refuses
// another user's log naming the rule.
func TestOpLog(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(shJob("test.oplog", `i=1; while [ $i -le 30 ]; do echo "line $i"; i=$((i+1)); done; exec sleep 60`))
	h.start()
	waitFor(t, "the lines", func() bool { return strings.Contains(h.jobLogText("test.oplog"), " line 30\n") })
	tgt := h.target("test.oplog")
	r := h.mustAdmin(bootstrap.OpLog, bootstrap.KeyTarget, tgt, bootstrap.KeyLogLines, int64(3))
	lines, _ := r.Array(bootstrap.KeyLogLines)
	if len(lines) != 3 || !strings.HasSuffix(string(lines[2].(xpc.String)), "out 6 line 30") || !strings.HasSuffix(string(lines[0].(xpc.String)), "line 28") {
		t.Fatalf("log -n 3: %s", xpc.Format(r))
	}
	r = h.mustAdmin(bootstrap.OpLog, bootstrap.KeyTarget, tgt)
	if lines, _ := r.Array(bootstrap.KeyLogLines); len(lines) != bootstrap.LogLinesDefault {
		t.Errorf("default lines: %s", xpc.Format(r))
	}
	if ls, _ := h.print("test.oplog").Array(bootstrap.KeyLog); len(ls) != logTailLines || !strings.HasSuffix(string(ls[4].(xpc.String)), "line 30") {
		t.Errorf("print's last lines: %v", ls)
	}

	// Follow: the last lines, then each new one.
	got := make(chan string, 16)
	fc := h.dial(xpc.HandlerFunc(func(_ context.Context, m *xpc.Message) {
		ls, _ := m.Body.Array(bootstrap.KeyLogLines)
		for _, l := range ls {
			got <- string(l.(xpc.String))
		}
	}))
	r, err := fc.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpLog, bootstrap.KeyTarget, tgt, bootstrap.KeyLogLines, int64(1), bootstrap.KeyFollow, true))
	if lines, _ := r.Array(bootstrap.KeyLogLines); err != nil || len(lines) != 1 {
		t.Fatalf("follow: %v %v", r, err)
	}
	h.d.sup.logs.record(UserDomain(uint32(os.Geteuid())), "test.oplog", logRecord{at: time.Now(), stream: "xpcd", prio: 5, text: "a new record"})
	select {
	case l := <-got:
		if !strings.HasSuffix(l, "xpcd 5 a new record") {
			t.Errorf("followed line %q", l)
		}
	case <-time.After(testTimeout):
		t.Fatal("the follower got nothing")
	}
	fc.Cancel()
	waitFor(t, "the follower to go", func() bool {
		h.d.sup.logs.mu.Lock()
		defer h.d.sup.logs.mu.Unlock()
		return len(h.d.sup.logs.follows) == 0
	})
}

// A user is refused another user's log and the system domain's, with the
// rule named; and may follow only so many logs at once.
func TestLogAccessAndFollowLimit(t *testing.T) {
	t.Parallel()
	h := newSystemHarness(t)
	h.writePlist(shJob("test.sys", `echo secret; exec sleep 60`), h.paths.Daemons)
	h.start()
	waitFor(t, "the system job's line", func() bool {
		r, err := h.admin(bootstrap.OpLog, bootstrap.KeyTarget, "system/test.sys")
		ls, _ := r.Array(bootstrap.KeyLogLines)
		return err == nil && len(ls) == 1
	})
	const user = 4321
	ask := func(c *xpc.Connection, kv ...any) error {
		_, err := c.SendWithReply(testCtx(t), xpc.Dict(append([]any{bootstrap.KeyOp, bootstrap.OpLog}, kv...)...))
		return err
	}
	c := dialAs(t, h, user)
	if err := ask(c, bootstrap.KeyTarget, "system/test.sys"); reasonOf(err) != bootstrap.ReasonDenied || ruleOf(err) != bootstrap.RuleLogAccess {
		t.Errorf("a user reading a system job's log: %v", err)
	}
	if err := ask(c, bootstrap.KeyTarget, "user/0/test.x"); reasonOf(err) != bootstrap.ReasonDenied || ruleOf(err) != bootstrap.RuleDomainAccess {
		t.Errorf("a user reading another user's log: %v", err)
	}
	for i := range maxLogFollowersPerUser + 1 {
		err := ask(dialAs(t, h, user), bootstrap.KeyTarget, UserDomain(user)+"/test.none", bootstrap.KeyFollow, true)
		if i < maxLogFollowersPerUser && err != nil {
			t.Fatalf("follower %d: %v", i, err)
		}
		if i == maxLogFollowersPerUser && (reasonOf(err) != bootstrap.ReasonDenied || ruleOf(err) != bootstrap.RuleLogFollowLimit) {
			t.Fatalf("one follower too many: %v", err)
		}
	}
}

// With a state directory that cannot be written, the lines still reach
// xpcd's log, and the failure is said once.
func TestJobLogReadOnlyWarnsOnce(t *testing.T) {
	t.Parallel()
	var buf logBuffer
	dir := t.TempDir()
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o600)
	ls := newJobLogs(filepath.Join(f, "logs"), 1<<20, "-", slog.New(slog.NewTextHandler(&buf, nil)))
	for i := range 20 {
		ls.record("user/0", fmt.Sprintf("test.ro%d", i%3), logRecord{at: time.Now(), stream: "out", prio: 6, text: "x"})
	}
	if n := strings.Count(buf.String(), "job logs are not written"); n != 1 {
		t.Errorf("%d warnings:\n%s", n, buf.String())
	}
	if ls, _ := ls.lastLines("user/0", "test.ro1"); len(ls) != 5 {
		t.Errorf("last lines kept in memory: %q", ls)
	}
}

// ruleOf returns the rule an error reply names.
func ruleOf(err error) string {
	var re *xpc.RemoteError
	if errors.As(err, &re) {
		s, _ := re.Object.String(bootstrap.KeyRule)
		return s
	}
	return ""
}

// xpcd's own log has each line at its priority's level, so that
// --log-level warn still shows standard error and drops debug lines.
func TestOutputLevels(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	writeOutput(t, filepath.Join(t.TempDir(), "out"), outputSink{log: log, dom: "user/0", label: "test.levels"},
		"plain out\n<4>warned out\n<7>debug out\n", "plain err\n")
	for _, s := range []string{`level=INFO msg=output pid=4242 line="plain out"`, `level=WARN msg=output pid=4242 line="warned out"`,
		`level=DEBUG msg=output pid=4242 line="debug out"`, `level=ERROR msg=output pid=4242 line="plain err"`} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("xpcd's log lacks %q:\n%s", s, buf.String())
		}
	}
}

// When the current file alone fills a log reply, its first line is whole
// and is kept; the rotated file's lines are left out, and it says so.
func TestJobLogTailCurrentFileFillsReply(t *testing.T) {
	t.Parallel()
	ls := newJobLogs(t.TempDir(), 1<<20, "-", discardLogger())
	jl := ls.acquire("user/0", "test.full")
	defer jl.release()
	var b strings.Builder
	for i := 0; b.Len() < bootstrap.LogReplyMax; i++ {
		fmt.Fprintf(&b, "%-63s\n", fmt.Sprintf("line %d", i))
	}
	if b.Len() != bootstrap.LogReplyMax {
		t.Fatalf("%d bytes, not %d", b.Len(), bootstrap.LogReplyMax)
	}
	if err := os.MkdirAll(filepath.Dir(jl.path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jl.path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jl.path+".1", []byte("older\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	jl.mu.Lock()
	lines, trunc := jl.readTail(bootstrap.LogLinesMax)
	jl.mu.Unlock()
	if len(lines) != bootstrap.LogReplyMax/64 || strings.TrimSpace(lines[0]) != "line 0" || !trunc {
		t.Errorf("%d lines, the first %q, truncated %v", len(lines), lines[0], trunc)
	}
}

// writeOutput writes stdout and stderr, as pid 4242, into a new output in
// dir with sink, and waits until its readers have read them all.
func writeOutput(t *testing.T, dir string, sink outputSink, stdout, stderr string) {
	t.Helper()
	o, w, err := newOutput(dir, sink, [2]bool{true, true})
	if err != nil {
		t.Fatal(err)
	}
	o.start(4242)
	w[0].WriteString(stdout)
	w[1].WriteString(stderr)
	w[0].Close()
	w[1].Close()
	select {
	case <-o.done:
	case <-time.After(testTimeout):
		t.Fatal("the readers did not end")
	}
}
