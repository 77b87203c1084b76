package xpcd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A job without StandardOutPath or StandardErrorPath writes to FIFOs in
// RunDir/output, one for each stream it does not name (BASE.fifo for
// standard output, BASE.err.fifo for standard error), whose lines xpcd
// logs, tagged with the job's label and pid, and writes to the job's log
// (joblog.go). FIFOs rather than pipes, so that a service outlives xpcd:
// the child holds its ends open read-write, so its writes never fail with
// EPIPE (which would kill most programs) while no xpcd reads; they wait
// when a FIFO is full, and the next xpcd reopens the FIFOs by name (the
// one recorded with the process, and its sibling) and goes on reading. A
// FIFO is removed when the last writer is gone.
//
// A line's priority is the stream's (standard error: 3, error; standard
// output: 6, info) unless it starts with "<N>", N from 0 to 7, as
// sd-daemon's prefixes do, which sets it and is taken off. On standard
// error, a line starting "panic:" or "fatal error:" starts a Go panic,
// which is kept to the end of the output (at most maxPanicBytes, and
// panicWindow) and written as one record. The last lines of standard error are kept for a
// crash record (crash.go).

const (
	// maxLogLine bounds one logged line; longer lines are split.
	maxLogLine = 16 << 10
	// maxPanicBytes bounds a panic's record; the rest is left out, and
	// the record says so.
	maxPanicBytes = 64 << 10
	// errTailLines and errTailBytes bound the last lines of standard
	// error kept for a crash record.
	errTailLines = 20
	errTailBytes = 4 << 10
	// panicWindow bounds how long after its first line a panic takes
	// the lines of standard error: a Go program writes its panic at
	// once, and dies. A line later than that ends the record and is
	// logged as any line, so that a service that writes "panic:" and
	// lives on (a daemon echoing what a client sent) does not have
	// every later line of its standard error held back, and past
	// maxPanicBytes left out, until it exits.
	panicWindow = time.Second
	// Priorities of lines without a prefix.
	prioErr  = 3
	prioInfo = 6
)

// stop drains before it lets go: it reads on until the FIFO has been
// empty for drainIdle, or has no writer left, for at most drainMax, so
// that the lines a service wrote before it stopped are logged.
const (
	drainIdle = 100 * time.Millisecond
	drainMax  = time.Second
)

var outputSeq atomic.Uint64

// outputSink is where an output's lines go: xpcd's log, and the job's
// log if logs is set.
type outputSink struct {
	log        *slog.Logger
	logs       *jobLogs
	dom, label string
}

// output reads a job's output FIFOs and logs their lines.
type output struct {
	path    string       // the FIFO recorded with the process (the first)
	streams []*outStream // standard output first
	sink    outputSink
	done    chan struct{}
	running atomic.Int32 // stream readers not finished
	jl      *jobLog      // while started
	// started: run was started (done will close).
	started bool
	drainBy atomic.Int64 // set by stop: drain until then (UnixNano)

	mu      sync.Mutex
	errTail []string // the last lines of standard error
}

// outStream is one FIFO.
type outStream struct {
	path string
	f    *os.File
	err  bool // standard error
}

// errFIFO is the path of the standard error FIFO beside path (which may
// be either).
func errFIFO(path string) string {
	return strings.TrimSuffix(strings.TrimSuffix(path, ".err.fifo"), ".fifo") + ".err.fifo"
}

// outFIFO is the path of the standard output FIFO beside path.
func outFIFO(path string) string {
	return strings.TrimSuffix(strings.TrimSuffix(path, ".err.fifo"), ".fifo") + ".fifo"
}

// newOutput makes a FIFO in dir for each stream wanted ([0] standard
// output, [1] standard error) and returns their reader and the writers for
// the child (opened read-write; nil for a stream not wanted; the caller
// gives them to the child and closes its own copies).
func newOutput(dir string, sink outputSink, want [2]bool) (*output, [2]*os.File, error) {
	var w [2]*os.File
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, w, fmt.Errorf("output directory: %w", err)
	}
	base := filepath.Join(dir, fmt.Sprintf("%d-%d", time.Now().UnixNano(), outputSeq.Add(1)))
	o := &output{sink: sink, done: make(chan struct{})}
	for i, path := range [2]string{base + ".fifo", base + ".err.fifo"} {
		if !want[i] {
			continue
		}
		if err := unix.Mkfifo(path, 0o600); err != nil {
			o.stop(true)
			closeFiles(w[:])
			return nil, [2]*os.File{}, fmt.Errorf("output FIFO: %w", err)
		}
		st, err := openStream(path, i == 1)
		if err == nil {
			w[i], err = os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				st.f.Close()
			}
		}
		if err != nil {
			os.Remove(path)
			o.stop(true)
			closeFiles(w[:])
			return nil, [2]*os.File{}, fmt.Errorf("output FIFO: %w", err)
		}
		o.streams = append(o.streams, st)
	}
	if len(o.streams) > 0 {
		o.path = o.streams[0].path
	}
	return o, w, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

func openStream(path string, isErr bool) (*outStream, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &outStream{path: path, f: os.NewFile(uintptr(fd), path), err: isErr}, nil
}

// reopenOutput opens the existing output FIFOs of path (the one recorded,
// and its sibling if it is there) for reading.
func reopenOutput(path string, sink outputSink) (*output, error) {
	o := &output{path: path, sink: sink, done: make(chan struct{})}
	for i, p := range [2]string{outFIFO(path), errFIFO(path)} {
		st, err := openStream(p, i == 1)
		if err != nil {
			if p != path && errors.Is(err, os.ErrNotExist) {
				continue
			}
			o.stop(false)
			return nil, fmt.Errorf("output FIFO: %w", err)
		}
		o.streams = append(o.streams, st)
	}
	return o, nil
}

// paths are the FIFOs read.
func (o *output) paths() []string {
	ps := make([]string, len(o.streams))
	for i, s := range o.streams {
		ps[i] = s.path
	}
	return ps
}

// start logs the FIFOs' lines until every writer is gone or stop is
// called.
func (o *output) start(pid int) {
	o.started = true
	if o.sink.logs != nil {
		o.jl = o.sink.logs.acquire(o.sink.dom, o.sink.label)
	}
	o.running.Store(int32(len(o.streams)))
	if len(o.streams) == 0 {
		o.finish()
		return
	}
	log := o.sink.log.With("pid", pid)
	for _, s := range o.streams {
		go o.run(s, pid, log)
	}
}

// finish: every stream's reader is done.
func (o *output) finish() {
	if o.jl != nil {
		o.jl.release()
	}
	close(o.done)
}

func (o *output) run(s *outStream, pid int, log *slog.Logger) {
	defer func() {
		if o.running.Add(-1) == 0 {
			o.finish()
		}
	}()
	var p panicBlock
	defer func() {
		if p.active {
			o.emit(log, p.record(pid))
		}
	}()
	r := bufio.NewReaderSize(s.f, maxLogLine)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			o.line(s, pid, string(line), &p, log)
		}
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			if by := o.drainBy.Load(); by != 0 {
				s.f.SetReadDeadline(time.Unix(0, min(time.Now().Add(drainIdle).UnixNano(), by)))
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			// Every writer has gone: the process and its children.
			s.f.Close()
			os.Remove(s.path)
		}
		return
	}
}

// line handles one line of stream s.
func (o *output) line(s *outStream, pid int, text string, p *panicBlock, log *slog.Logger) {
	prio, stream := prioInfo, "out"
	prefixed := len(text) >= 3 && text[0] == '<' && text[1] >= '0' && text[1] <= '7' && text[2] == '>'
	if s.err {
		prio, stream = prioErr, "err"
		if prefixed {
			o.keepErr(text[3:]) // a crash record shows the line as the log does
		} else {
			o.keepErr(text)
		}
		if p.active && time.Since(p.at) > panicWindow {
			o.emit(log, p.record(pid))
			*p = panicBlock{}
		}
		if p.add(text) {
			return
		}
	}
	if prefixed {
		prio, text = int(text[1]-'0'), text[3:]
	}
	o.emit(log, logRecord{at: time.Now(), pid: pid, stream: stream, prio: prio, text: text})
}

// emit writes r to xpcd's log and the job's.
func (o *output) emit(log *slog.Logger, r logRecord) {
	log.Log(context.Background(), prioLevel(r.prio), "output", "line", r.text, "stream", r.stream, "priority", r.prio)
	if o.jl != nil {
		o.jl.write(r)
	}
}

// prioLevel is the level of xpcd's log for a line of syslog priority p:
// emergency to error (0-3) at error, warning (4) at warning, notice and
// info (5, 6) at info, debug (7) at debug. So xpcd --log-level warn still
// shows what services write to standard error.
func prioLevel(p int) slog.Level {
	switch {
	case p <= 3:
		return slog.LevelError
	case p == 4:
		return slog.LevelWarn
	case p <= 6:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// keepErr keeps line among the last lines of standard error.
func (o *output) keepErr(line string) {
	if len(line) > errTailBytes {
		line = line[:errTailBytes]
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.errTail = append(o.errTail, line)
	n := 0
	for _, l := range o.errTail {
		n += len(l) + 1
	}
	drop := 0
	for len(o.errTail)-drop > errTailLines || n > errTailBytes {
		n -= len(o.errTail[drop]) + 1
		drop++
	}
	if drop > 0 {
		o.errTail = append(o.errTail[:0], o.errTail[drop:]...)
	}
}

// lastErr waits, at most d, for the readers to reach the end of the
// output (so that the process's last words are read), and returns the
// last lines of standard error.
func (o *output) lastErr(d time.Duration) []string {
	if o.started {
		t := time.NewTimer(d)
		select {
		case <-o.done:
		case <-t.C:
		}
		t.Stop()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.errTail...)
}

// panicBlock gathers a Go panic's lines.
type panicBlock struct {
	active  bool
	at      time.Time
	b       strings.Builder
	dropped int // bytes left out past maxPanicBytes
}

// add takes line if a panic has started or starts with it.
func (p *panicBlock) add(line string) bool {
	if !p.active {
		if !strings.HasPrefix(line, "panic:") && !strings.HasPrefix(line, "fatal error:") {
			return false
		}
		p.active, p.at = true, time.Now()
	} else if p.dropped == 0 {
		p.b.WriteByte('\n')
	}
	if p.dropped > 0 || p.b.Len()+len(line) > maxPanicBytes {
		p.dropped += len(line) + 1
		return true
	}
	p.b.WriteString(line)
	return true
}

func (p *panicBlock) record(pid int) logRecord {
	text := strings.TrimRight(p.b.String(), "\n")
	if p.dropped > 0 {
		text += fmt.Sprintf("\n[%d more bytes of the panic left out]", p.dropped)
	}
	return logRecord{at: p.at, pid: pid, stream: "err", prio: prioErr, text: text}
}

// finished reports whether the readers have stopped.
func (o *output) finished() bool {
	if !o.started {
		return true
	}
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// stop stops reading, once it has drained what is in the FIFOs. With
// unlink, the FIFOs are removed too; without, they stay for the next xpcd
// to reopen.
func (o *output) stop(unlink bool) {
	if o.started {
		o.drainBy.Store(time.Now().Add(drainMax).UnixNano())
		for _, s := range o.streams {
			s.f.SetReadDeadline(time.Now().Add(drainIdle))
		}
		<-o.done
	}
	for _, s := range o.streams {
		s.f.Close()
	}
	if unlink {
		for _, s := range o.streams {
			os.Remove(s.path)
		}
	}
}

// sinkFor is where the output of the job label of domain dom goes.
func (l *execLauncher) sinkFor(dom, label string) outputSink {
	return outputSink{log: l.log.With("label", label, "domain", dom), logs: l.logs, dom: dom, label: label}
}
