package xpctest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// Services' output. A service xpcd launches without StandardOutPath or
// StandardErrorPath writes to xpcd, which logs each line it reads (the
// record "output", with the job's label and the line). The server's
// logger keeps those lines, by label, besides sending them on to the
// test's log (or WithLogger's logger): Output and WaitOutput give them to
// the test. xpcd drains what a service wrote before it stopped before it
// closes, so after Close every such line is there.

// maxOutputBytes bounds the lines a server keeps for Output, all jobs
// together; later lines still reach the log, not Output.
const maxOutputBytes = 16 << 20

// outputLog holds the lines services wrote, by label.
type outputLog struct {
	mu      sync.Mutex
	lines   map[string][]string
	size    int
	dropped map[string]int
	changed chan struct{} // closed and replaced at each new line
}

func newOutputLog() *outputLog {
	return &outputLog{lines: map[string][]string{}, dropped: map[string]int{}, changed: make(chan struct{})}
}

func (o *outputLog) add(label, line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.size+len(line) > maxOutputBytes {
		o.dropped[label]++
		return
	}
	o.size += len(line)
	o.lines[label] = append(o.lines[label], line)
	close(o.changed)
	o.changed = make(chan struct{})
}

// get returns label's lines and a channel closed at the next new line.
func (o *outputLog) get(label string) ([]string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.lines[label]...), o.changed
}

// Output returns the lines the services of the job label wrote to their
// standard output and standard error (when the job's plist names no
// StandardOutPath or StandardErrorPath), in the order xpcd read them: in
// order for each stream, and each line written whole (at most 4096 bytes,
// PIPE_BUF) stays whole. The lines of a service that has exited, or was
// killed, are all there once xpcd has read them (WaitOutput waits for
// them); after Close, every line written before the services stopped is.
// The server keeps the first 16 MiB of lines, all jobs together; the log
// gets them all.
func (s *Server) Output(label string) []string {
	lines, _ := s.output.get(label)
	return lines
}

// WaitOutput waits until the job label's services have written at least n
// lines (see Output), and returns them; it fails the test if they have
// not within 30 seconds, or t's deadline if sooner.
func (s *Server) WaitOutput(t testing.TB, label string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		lines, changed := s.output.get(label)
		if len(lines) >= n {
			return lines
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("xpctest: %s wrote %d lines, want %d: %q", label, len(lines), n, lines)
			return lines
		}
	}
}

// outputHandler passes records on to next and keeps the lines of
// "output" records in log, under the label the logger was given.
type outputHandler struct {
	next  slog.Handler
	label string
	log   *outputLog
}

// Enabled is true at every level: a service's line is logged at its
// priority's level, debug included, and the test gets every line whatever
// its logger shows (Handle asks next for the others).
func (h outputHandler) Enabled(context.Context, slog.Level) bool {
	return true
}

func (h outputHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "output" {
		label, line, ok := h.label, "", false
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "label":
				label = a.Value.String()
			case "line":
				line, ok = a.Value.String(), true
			}
			return true
		})
		if ok {
			h.log.add(label, line)
		}
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h outputHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	for _, a := range attrs {
		if a.Key == "label" {
			h.label = a.Value.String()
		}
	}
	h.next = h.next.WithAttrs(attrs)
	return h
}

func (h outputHandler) WithGroup(name string) slog.Handler {
	h.next = h.next.WithGroup(name)
	return h
}
