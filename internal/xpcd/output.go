package xpcd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A job without StandardOutPath or StandardErrorPath writes to a FIFO in
// RunDir/output, whose lines xpcd logs, tagged with the job's label and
// pid. A FIFO rather than a pipe, so that a service outlives xpcd: the
// child holds its end open read-write, so its writes never fail with
// EPIPE (which would kill most programs) while no xpcd reads; they wait
// when the FIFO is full, and the next xpcd reopens the FIFO by name
// (recorded with the process) and goes on reading. The FIFO is removed
// when the last writer is gone.

// maxLogLine bounds one logged line; longer lines are split.
const maxLogLine = 16 << 10

// stop drains before it lets go: it reads on until the FIFO has been
// empty for drainIdle, or has no writer left, for at most drainMax, so
// that the lines a service wrote before it stopped are logged.
const (
	drainIdle = 100 * time.Millisecond
	drainMax  = time.Second
)

var outputSeq atomic.Uint64

// output reads one FIFO and logs its lines.
type output struct {
	path string
	f    *os.File
	log  *slog.Logger
	done chan struct{}
	// started: run was started (done will close).
	started bool
	drainBy atomic.Int64 // set by stop: drain until then (UnixNano)
}

// newOutput makes a FIFO in dir and returns its reader and a writer for
// the child (opened read-write; the caller gives it to the child and
// closes its own copy).
func newOutput(dir string, log *slog.Logger) (*output, *os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("output directory: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%d-%d.fifo", time.Now().UnixNano(), outputSeq.Add(1)))
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return nil, nil, fmt.Errorf("output FIFO: %w", err)
	}
	o, err := reopenOutput(path, log)
	if err != nil {
		os.Remove(path)
		return nil, nil, err
	}
	w, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		o.stop(true)
		return nil, nil, fmt.Errorf("output FIFO: %w", err)
	}
	return o, w, nil
}

// reopenOutput opens an existing output FIFO for reading.
func reopenOutput(path string, log *slog.Logger) (*output, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("output FIFO: %w", err)
	}
	return &output{path: path, f: os.NewFile(uintptr(fd), path), log: log, done: make(chan struct{})}, nil
}

// start logs the FIFO's lines until every writer is gone or stop is
// called.
func (o *output) start(pid int) {
	o.started = true
	go o.run(o.log.With("pid", pid))
}

func (o *output) run(log *slog.Logger) {
	defer close(o.done)
	r := bufio.NewReaderSize(o.f, maxLogLine)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			log.Info("output", "line", string(line))
		}
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			if by := o.drainBy.Load(); by != 0 {
				o.f.SetReadDeadline(time.Unix(0, min(time.Now().Add(drainIdle).UnixNano(), by)))
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			// Every writer has gone: the process and its children.
			o.f.Close()
			os.Remove(o.path)
		}
		return
	}
}

// finished reports whether the reader has stopped.
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

// stop stops reading, once it has drained what is in the FIFO. With unlink, the FIFO is removed too; without, it
// stays for the next xpcd to reopen.
func (o *output) stop(unlink bool) {
	if o.started {
		o.drainBy.Store(time.Now().Add(drainMax).UnixNano())
		o.f.SetReadDeadline(time.Now().Add(drainIdle))
		<-o.done
	}
	o.f.Close()
	if unlink {
		os.Remove(o.path)
	}
}
