package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/spf13/pflag"
)

var logCommand = &command{
	name:    "log",
	args:    "[-f|--follow] [-n|--lines N] TARGET",
	summary: "show a job's log: its output and crash records",
	help: `Prints the last lines of the log xpcd keeps of the job TARGET (DOMAIN/LABEL,
as user/UID/LABEL or system/LABEL): what it wrote to standard output and
error when it names no file for them, and its crash records. Each line is
"TIME PID STREAM PRIORITY TEXT"; the further lines of a panic or a crash
record start with a tab. -n|--lines N prints the last N records (default
10, as journalctl -n counts entries; 0 none): a panic or a crash record
comes with all its lines; a log with no records says so on standard error.
-f|--follow then goes on printing records as they are written, until
interrupted. Only root and the domain's user may read a job's log.

A bundle's XPC service's log is one for all of a user's applications:
pid/PID/LABEL names it while that application runs, apps/UID/LABEL at
any time (a System service's: apps/system/LABEL, root only).

` + instanceHelp,
	setup: setupLog,
}

func setupLog(fs *pflag.FlagSet) runFunc {
	follow := fs.BoolP("follow", "f", false, "go on printing records as they are written")
	n := fs.IntP("lines", "n", bootstrap.LogLinesDefault, "print the last `N` records")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		return runLog(ctx, s, c, pos, *follow, *n)
	}
}

func runLog(ctx context.Context, s stdio, c *command, pos []string, follow bool, n int) int {
	if len(pos) != 1 {
		return c.usageError(s, "want one TARGET (DOMAIN/LABEL)")
	}
	if p := targetProblem(pos[0]); p != "" {
		return c.usageError(s, p)
	}
	if n < 0 {
		return c.usageError(s, "--lines: want 0 or more records")
	}
	req := xpc.Dict(bootstrap.KeyOp, bootstrap.OpLog, bootstrap.KeyTarget, pos[0],
		bootstrap.KeyLogLines, int64(min(n, bootstrap.LogLinesMax)), bootstrap.KeyFollow, follow)
	lh := &logHandler{s: s, ready: make(chan struct{}), overflow: make(chan struct{})}
	var h xpc.Handler
	if follow {
		h = lh
	}
	conn, err := dialXPCD(ctx, s.xpcd.forTarget(pos[0]), h)
	if err != nil {
		return c.failed(s, pos[0], err)
	}
	defer conn.Cancel()
	reply, err := conn.SendWithReply(ctx, req)
	if err != nil {
		return c.failed(s, pos[0], err)
	}
	if trunc, _ := reply.Bool(bootstrap.KeyLogTruncated); trunc {
		fmt.Fprintf(s.err, "xpcctl: log: older lines left out (a reply holds at most %d KiB)\n", bootstrap.LogReplyMax>>10)
	}
	printLogLines(s, reply)
	if lines, _ := reply.Array(bootstrap.KeyLogLines); len(lines) == 0 && n > 0 && !follow {
		// Said, as journalctl says "-- No entries --", not left blank.
		fmt.Fprintf(s.err, "xpcctl log: %s has no records (a job's output goes to its StandardOutPath and StandardErrorPath when it names them)\n", pos[0])
	}
	if !follow {
		return exitOK
	}
	// The lines written since come to the handler, which prints them
	// once the reply's are out.
	close(lh.ready)
	select {
	case <-ctx.Done():
		return exitOK
	case <-lh.overflow:
		return c.fail(s, "fell too far behind; xpcd stopped sending")
	case <-conn.Done():
		return c.fail(s, "xpcd closed the connection (it stopped or restarted): run xpcctl log --follow again once it is back")
	}
}

func printLogLines(s stdio, d *xpc.Dictionary) {
	lines, _ := d.Array(bootstrap.KeyLogLines)
	for _, l := range lines {
		if str, ok := l.(xpc.String); ok {
			fmt.Fprintln(s.out, shown(string(str)))
		}
	}
}

// shown is a line a service wrote, as it may be written to a terminal:
// each control character but a tab (an escape sequence would move the
// cursor, retitle or talk to the terminal of whoever reads the log, root
// included; a carriage return would hide what came before it on the
// line) is written as Go writes it in a string ("\x1b", "\r").
func shown(s string) string { return escapeControls(s, false) }

// escapeControls writes each control character of s but a tab, and with
// keepNewlines a newline, as Go writes it in a string; so too each other
// character Go would not print bare in a string (strconv.IsPrint), as
// plist print does: the bidirectional overrides and isolates (U+202E,
// U+2066: they make a line read in another order than it runs), zero
// widths, the line and paragraph separators, other spaces than ' '.
func escapeControls(s string, keepNewlines bool) string {
	isControl := func(r rune) bool {
		return r != '\t' && (r != '\n' || !keepNewlines) && (unicode.IsControl(r) || !strconv.IsPrint(r))
	}
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// terminal is a writer for what xpcctl renders of xpcd's replies: the
// strings in them (labels, program paths, arguments, descriptions) are a
// user's, and reach the terminal of whoever reads them, root included,
// with their control characters escaped (escapeControls), lines kept.
type terminal struct{ w io.Writer }

func (t terminal) Write(p []byte) (int, error) {
	if _, err := io.WriteString(t.w, escapeControls(string(p), true)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// logHandler prints the lines of a followed log once ready is closed, and
// closes overflow when xpcd says this client fell behind.
type logHandler struct {
	s        stdio
	ready    chan struct{}
	overflow chan struct{}
	over     bool
}

func (h *logHandler) HandleMessage(ctx context.Context, m *xpc.Message) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return
	}
	if over, _ := m.Body.Bool(bootstrap.KeyOverflow); over && !h.over {
		h.over = true
		close(h.overflow)
		return
	}
	printLogLines(h.s, m.Body)
}

func (h *logHandler) HandleEvent(error) {}
