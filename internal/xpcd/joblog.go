package xpcd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// Per-job logs. The lines a job writes to the output FIFOs (output.go),
// and its crash records (crash.go), go to a bounded file per job in the
// state directory, STATE/logs/DOMAIN/LABEL.log (both names escaped by
// logName, so that no label names a path outside), 0600 in directories of
// 0700, xpcd's own: users read them only through xpcd (OpLog,
// admin_log.go). A file that would grow past the cap is renamed
// LABEL.log.1 (replacing the last one) and started again, so that a job's
// log never takes more than twice the cap. Each record also goes to the
// journal, if there is one (journal.go), and to the connections following
// the log. Records are written by the output readers' goroutines, never
// on the loop.

// DefaultJobLogMaxBytes is Config.JobLogMaxBytes's default.
const DefaultJobLogMaxBytes = 1 << 20

const (
	// logTailLines is how many of a job's last records print shows,
	// each by its first line.
	logTailLines = 5
	// logTailLineMax bounds each of those lines, in bytes.
	logTailLineMax = 512
	// maxIdleLogs is how many jobs' logs with no output reading and no
	// follower are remembered (their last lines, for print); past it
	// they are forgotten.
	maxIdleLogs = 1024
	// maxLogFollowersPerUser is the most logs a user other than root may
	// follow at once (bootstrap.RuleLogFollowLimit).
	maxLogFollowersPerUser = 8
	// logFollowLimit is how many messages a follower may fall behind
	// before it is told it overflowed and is dropped; logFollowBytes, how
	// many bytes of lines (a message may hold a 16 KiB line, or a 64 KiB
	// panic).
	logFollowLimit = 1024
	logFollowBytes = 1 << 20
	// maxLogName bounds an escaped name, so that LABEL.log.1 fits in a
	// file name (255 bytes).
	maxLogName = 200
	// maxLogFilesPerDomain bounds the files of a domain's directory: a
	// log outlives its job, and labels are the user's to choose, so a
	// user loading job after job would otherwise fill root's disk. Past
	// it, the files least recently written that no job is writing are
	// removed (prune). Enough for every job a user may load, and
	// their rotated files.
	maxLogFilesPerDomain = 2*maxJobsPerUserDomain + 64
	// noFollow: a log file that is a symbolic link is not opened.
	noFollow = unix.O_NOFOLLOW
)

// logRecord is one record of a job's log: a line, a panic or a crash.
type logRecord struct {
	at     time.Time
	pid    int
	stream string // "out", "err", or "xpcd" for xpcd's own records
	prio   int    // syslog priority, 0 (emerg) to 7 (debug)
	text   string // more than one line for a panic or a crash
}

// format is the record as the log file holds it: "TIME PID STREAM PRIO
// TEXT", each further line of the text after a tab.
func (r logRecord) format() string {
	var b strings.Builder
	b.Grow(len(r.text) + 48)
	b.WriteString(r.at.UTC().Format("2006-01-02T15:04:05.000Z"))
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(r.pid))
	b.WriteByte(' ')
	b.WriteString(r.stream)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(r.prio))
	b.WriteByte(' ')
	b.WriteString(strings.ReplaceAll(r.text, "\n", "\n\t"))
	b.WriteByte('\n')
	return b.String()
}

// logName escapes a domain or a label into one path component: letters,
// digits, '-', '_', '@', '+' and '.' (but not first) stay, every other
// byte is %XX. So "." and ".." and anything with a '/' cannot come out.
func logName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '@', c == '+', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			const digits = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(digits[c>>4])
			b.WriteByte(digits[c&15])
		}
	}
	if b.Len() == 0 {
		return "%"
	}
	if b.Len() > maxLogName {
		// Past what a file name may hold: cut, and told apart by a hash
		// of the whole.
		sum := sha256.Sum256([]byte(s))
		return b.String()[:maxLogName-34] + "~" + hex.EncodeToString(sum[:16])
	}
	return b.String()
}

// jobLogs is every job's log.
type jobLogs struct {
	dir         string   // STATE/logs; "" keeps no files
	max         int64    // a file's cap
	journalPath string   // "-": none
	journal     *journal // set at start, if the socket is there
	log         *slog.Logger
	warned      atomic.Bool // the directory could not be written; said once

	mu      sync.Mutex
	logs    map[string]*jobLog        // by logKey
	follows map[*session]*logFollower // OpLog with follow
	nfollow map[uint32]int            // followers by bucket
}

// newJobLogs keeps the logs in dir, each file capped at max bytes; the
// journal socket is opened at start.
func newJobLogs(dir string, max int64, journalSocket string, log *slog.Logger) *jobLogs {
	if max <= 0 {
		max = DefaultJobLogMaxBytes
	}
	if journalSocket == "" {
		journalSocket = DefaultJournalSocket
	}
	return &jobLogs{dir: dir, max: max, journalPath: journalSocket, log: log, logs: map[string]*jobLog{},
		follows: map[*session]*logFollower{}, nfollow: map[uint32]int{}}
}

func logKey(dom, label string) string { return dom + "\x00" + label }

// jobLog is one job's log.
type jobLog struct {
	ls         *jobLogs
	dom, label string
	path       string // "" when there are no files
	refs       int    // output readers writing it; under ls.mu

	mu        sync.Mutex
	f         *os.File
	size      int64
	failed    bool // the file could not be opened: records go elsewhere only
	followers map[*logFollower]struct{}
	// nfollowers is len(followers), read without mu.
	nfollowers atomic.Int32

	// tmu guards tail and drops, which print reads on the loop: never
	// held across I/O.
	tmu   sync.Mutex
	tail  []string // the last records' first lines, for print
	drops uint64   // records the journal did not take
}

// logFollower is a connection following a job's log.
type logFollower struct {
	ch     *channel
	bucket uint32
	jl     *jobLog
	queued atomic.Int64 // bytes of lines queued, not yet sent
}

// send queues lines (n bytes) to f; false if f is too far behind, or
// gone, and is to be dropped.
func (f *logFollower) send(lines xpc.Array, n int64) bool {
	if f.queued.Add(n) > logFollowBytes {
		f.ch.send(outItem{msg: xpc.Dict("overflow", true)})
		return false
	}
	return f.ch.send(outItem{msg: xpc.Dict(bootstrap.KeyLogLines, lines), sent: func() { f.queued.Add(-n) }})
}

// acquire returns the log of dom/label, creating it, for a writer, who
// releases it when done.
func (ls *jobLogs) acquire(dom, label string) *jobLog {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	k := logKey(dom, label)
	jl := ls.logs[k]
	if jl == nil {
		jl = ls.newLog(dom, label)
		ls.logs[k] = jl
	}
	jl.refs++
	return jl
}

func (ls *jobLogs) newLog(dom, label string) *jobLog {
	jl := &jobLog{ls: ls, dom: dom, label: label}
	if ls.dir != "" {
		jl.path = filepath.Join(ls.dir, logName(dom), logName(label)+".log")
	}
	return jl
}

// release: a writer is done with jl. The file of a log nobody
// writes is closed; past maxIdleLogs, idle logs are forgotten.
func (jl *jobLog) release() {
	ls := jl.ls
	ls.mu.Lock()
	jl.refs--
	idle := jl.refs == 0
	if idle {
		ls.evictLocked()
	}
	ls.mu.Unlock()
	if idle {
		jl.mu.Lock()
		if jl.f != nil {
			jl.f.Close()
			jl.f = nil
		}
		jl.mu.Unlock()
	}
}

// evictLocked forgets the logs nobody writes or follows, once there are
// more than maxIdleLogs; ls.mu is held.
func (ls *jobLogs) evictLocked() {
	if len(ls.logs) <= maxIdleLogs {
		return
	}
	for k, o := range ls.logs {
		if o.refs == 0 && o.idle() {
			delete(ls.logs, k)
		}
	}
}

// peek returns the log of dom/label if it is known, else one not
// remembered (for reading its files): a request naming labels that never
// ran leaves nothing behind.
func (ls *jobLogs) peek(dom, label string) *jobLog {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if jl := ls.logs[logKey(dom, label)]; jl != nil {
		return jl
	}
	return ls.newLog(dom, label)
}

// idle reports whether no connection follows the log (without jl.mu,
// which may be held across I/O).
func (jl *jobLog) idle() bool { return jl.nfollowers.Load() == 0 }

// write adds r to the log: the file, the journal, the followers and the
// last lines.
func (jl *jobLog) write(r logRecord) {
	line := r.format()
	if int64(len(line)) > jl.ls.max {
		// (Only with a cap below a panic's bound.)
		line = line[:jl.ls.max-1] + "\n"
	}
	jl.mu.Lock()
	defer jl.mu.Unlock()
	jl.writeFile(line)
	j := jl.ls.journal
	dropped := j != nil && (!j.allow(jl.dom, time.Now()) || !j.send(r, jl.label, jl.dom+"/"+jl.label))
	lines := strings.Split(strings.TrimSuffix(line, "\n"), "\n")
	jl.keepTail(lines, dropped)
	if len(jl.followers) > 0 {
		arr := logArray(lines)
		for f := range jl.followers {
			if !f.send(arr, int64(len(line))) {
				jl.dropFollower(f)
			}
		}
	}
}

// dropFollower removes f; jl.mu is held.
func (jl *jobLog) dropFollower(f *logFollower) {
	if _, ok := jl.followers[f]; ok {
		delete(jl.followers, f)
		jl.nfollowers.Add(-1)
	}
}

// keepTail keeps the last records for print, each by its first line (a
// panic's or a crash record's says how many more lines the log has: the
// tail of a stack alone says nothing), and counts a record the journal
// dropped.
func (jl *jobLog) keepTail(lines []string, dropped bool) {
	jl.tmu.Lock()
	defer jl.tmu.Unlock()
	if dropped {
		jl.drops++
	}
	l := lines[0]
	if len(l) > logTailLineMax {
		l = l[:logTailLineMax]
	}
	if len(lines) > 1 {
		l += " (+" + strconv.Itoa(len(lines)-1) + " lines)"
	}
	jl.tail = append(jl.tail, l)
	if n := len(jl.tail) - logTailLines; n > 0 {
		jl.tail = append(jl.tail[:0], jl.tail[n:]...)
	}
}

// writeFile appends line to the file, rotating it first if it would grow
// past the cap; jl.mu is held.
func (jl *jobLog) writeFile(line string) {
	if jl.path == "" || jl.failed {
		return
	}
	if jl.f == nil && !jl.open(false) {
		return
	}
	if jl.size > 0 && jl.size+int64(len(line)) > jl.ls.max {
		jl.f.Close()
		jl.f = nil
		if err := os.Rename(jl.path, jl.path+".1"); err != nil {
			jl.ls.warn(err)
		}
		if !jl.open(true) {
			return
		}
	}
	n, err := jl.f.WriteString(line)
	jl.size += int64(n)
	if err != nil {
		jl.ls.warn(err)
	}
}

// open opens (with trunc, empties) the file; jl.mu is held. A failure is
// said once for all logs, and the log keeps no file from then on.
func (jl *jobLog) open(trunc bool) bool {
	err := os.MkdirAll(filepath.Dir(jl.path), 0o700)
	if _, serr := os.Lstat(jl.path); err == nil && errors.Is(serr, os.ErrNotExist) {
		jl.ls.prune(filepath.Dir(jl.path), jl.dom)
	}
	if err == nil {
		flag := os.O_WRONLY | os.O_CREATE | os.O_APPEND | noFollow
		if trunc {
			flag |= os.O_TRUNC
		}
		jl.f, err = os.OpenFile(jl.path, flag, 0o600)
	}
	if err == nil {
		var st os.FileInfo
		if st, err = jl.f.Stat(); err == nil {
			jl.size = st.Size()
			return true
		}
		jl.f.Close()
		jl.f = nil
	}
	jl.failed = true
	jl.ls.warn(err)
	return false
}

// prune removes, from dir (dom's), the files least recently written
// until a new one keeps it within maxLogFilesPerDomain, sparing the logs
// that jobs write now. It is called with a log's mu held, before the
// file of a label that has none yet is made.
func (ls *jobLogs) prune(dir, dom string) {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) < maxLogFilesPerDomain {
		return
	}
	open := map[string]bool{}
	ls.mu.Lock()
	for _, o := range ls.logs {
		if o.dom == dom && o.refs > 0 && o.path != "" {
			open[filepath.Base(o.path)] = true
		}
	}
	ls.mu.Unlock()
	type old struct {
		name string
		at   time.Time
	}
	var olds []old
	for _, e := range ents {
		base := strings.TrimSuffix(e.Name(), ".1")
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && !open[base] {
			olds = append(olds, old{e.Name(), info.ModTime()})
		}
	}
	slices.SortFunc(olds, func(a, b old) int { return a.at.Compare(b.at) })
	for _, o := range olds[:min(len(olds), len(ents)-maxLogFilesPerDomain+1)] {
		os.Remove(filepath.Join(dir, o.name))
	}
}

// warn says, once, that job logs cannot be written.
func (ls *jobLogs) warn(err error) {
	if ls.warned.CompareAndSwap(false, true) {
		ls.log.Warn("job logs are not written (the journal and xpcd's log still get the lines)", "dir", ls.dir, "err", err)
	}
}

// lastLines returns the last lines print shows of dom/label, if its log
// is known, and how many records the journal dropped.
func (ls *jobLogs) lastLines(dom, label string) ([]string, uint64) {
	if ls == nil {
		return nil, 0
	}
	ls.mu.Lock()
	jl := ls.logs[logKey(dom, label)]
	ls.mu.Unlock()
	if jl == nil {
		return nil, 0
	}
	jl.tmu.Lock()
	defer jl.tmu.Unlock()
	return append([]string(nil), jl.tail...), jl.drops
}

// record writes r to the log of dom/label.
func (ls *jobLogs) record(dom, label string, r logRecord) {
	if ls == nil {
		return
	}
	jl := ls.acquire(dom, label)
	jl.write(r)
	jl.release()
}

// logsComponent opens the journal's socket at start (before the
// supervisor adopts or starts anything) and closes it at close; records
// written after go only to the files. It starts after the state store,
// and keeps no files when the state is read-only.
type logsComponent struct {
	ls    *jobLogs
	state *stateStore // nil: no state store (tests)
}

func (logsComponent) name() string { return "logs" }

func (c logsComponent) start(context.Context) error {
	if c.state != nil && c.state.readOnly != "" {
		// Nothing is written into a read-only state directory.
		c.ls.dir = ""
		c.ls.log.Warn("job logs are not written: the state is read-only (the journal and xpcd's log still get the lines)", "why", c.state.readOnly)
	}
	if c.ls.journalPath == "-" {
		return nil
	}
	j, err := openJournal(c.ls.journalPath)
	if err != nil {
		// Not fatal: the files and xpcd's log still get every line.
		c.ls.log.Warn("the journal is not written", "socket", c.ls.journalPath, "err", err)
	}
	c.ls.journal = j
	return nil
}

func (c logsComponent) close(context.Context) error {
	if c.ls.journal != nil {
		c.ls.journal.close()
	}
	return nil
}
