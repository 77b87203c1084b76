package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/spf13/pflag"
)

var watchCommand = &command{
	name:    "watch",
	args:    "[--json] [TARGET]",
	summary: "stream job state changes as they happen",
	help: `Prints one line per change of the jobs of TARGET (a domain, or
DOMAIN/LABEL), or of every job you may read, until interrupted. The first
line of each job gives its state, pid, why it was launched and how it last
exited; each line after says what changed, as KEY OLD → NEW ("-" for none):

  12:00:01.000 user/1000/org.example.agent waiting pid=- runs=0
  12:00:02.500 user/1000/org.example.agent: state waiting → running, pid - → 4242, runs 0 → 1, launch_reason - → demand

A job booted out gets a last line with state unloaded. With --json, each
line is the whole job record as one JSON object, as xpcd sends it.

` + instanceHelp,
	setup: setupWatch,
}

func setupWatch(fs *pflag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "print each change as the job's whole record, one JSON object per line")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		return runWatch(ctx, s, c, pos, *asJSON)
	}
}

func runWatch(ctx context.Context, s stdio, c *command, pos []string, asJSON bool) int {
	if len(pos) > 1 {
		return c.usageError(s, "too many arguments")
	}
	target := lastArg(pos)
	events := make(chan *xpc.Dictionary, 64)
	h := watchHandler{events: events}
	conn, err := dialXPCD(ctx, s.xpcd.forTarget(target), h)
	if err != nil {
		return c.failed(s, target, err)
	}
	defer conn.Cancel()
	req := xpc.Dict(bootstrap.KeyOp, bootstrap.OpWatch)
	if target != "" {
		req.Set(bootstrap.KeyTarget, xpc.String(target))
	}
	if _, err := conn.SendWithReply(ctx, req); err != nil {
		return c.failed(s, target, err)
	}
	var seen watchState
	return c.streamEvents(ctx, s, conn, events, asJSON, func(ev *xpc.Dictionary) {
		if line := seen.line(ev, time.Now()); line != "" {
			fmt.Fprintln(s.out, escapeControls(line, false))
		}
	})
}

// streamEvents prints what xpcd streams on conn (events; nil when xpcd
// said this client fell behind) until ctx ends or xpcd goes: each as one
// line of plain JSON with asJSON, else as text prints it.
func (c *command) streamEvents(ctx context.Context, s stdio, conn *xpc.Connection, events <-chan *xpc.Dictionary, asJSON bool, text func(*xpc.Dictionary)) int {
	for {
		select {
		case <-ctx.Done():
			return exitOK
		case <-conn.Done():
			return c.fail(s, "xpcd closed the connection")
		case ev := <-events:
			if ev == nil {
				return c.fail(s, "fell too far behind; xpcd stopped sending")
			}
			if !asJSON {
				text(ev)
				continue
			}
			out, err := xpc.ToPlainJSON(ev)
			if err != nil {
				return c.fail(s, "event: %v", err)
			}
			fmt.Fprintf(s.out, "%s\n", out)
		}
	}
}

// watchState holds the last record watch printed of each job, to say what
// changed. It forgets a job once it is unloaded, and everything when it
// holds watchMaxJobs (the next line of each is then a first one again).
type watchState struct {
	last map[string]*xpc.Dictionary
}

const watchMaxJobs = 4096

// stateUnloaded is the state of a job's last record, once booted out.
const stateUnloaded = "unloaded"

// watchQuiet are the keys a change of which goes unsaid: they change with
// another that is said (since with state, last_exit_at with last_exit), or
// name the job.
var watchQuiet = []string{bootstrap.KeyDomain, bootstrap.KeyLabel, "since", "last_exit_at"}

// line is what watch prints of the record j at now: the job's state if it
// is new, else what changed since its last record ("" if nothing said).
func (w *watchState) line(j *xpc.Dictionary, now time.Time) string {
	dom, _ := j.String(bootstrap.KeyDomain)
	label, _ := j.String(bootstrap.KeyLabel)
	state, _ := j.String(bootstrap.KeyState)
	key := dom + "/" + label
	at := now.Format("15:04:05.000")
	prev := w.last[key]
	switch {
	case state == stateUnloaded:
		delete(w.last, key)
	case w.last == nil || len(w.last) >= watchMaxJobs && prev == nil:
		w.last = map[string]*xpc.Dictionary{key: j}
	default:
		w.last[key] = j
	}
	if prev == nil {
		return fmt.Sprintf("%s %s %s pid=%s runs=%s%s", at, key, state, watchValue(j.Get(bootstrap.KeyPID)),
			watchValue(j.Get(bootstrap.KeyRuns)), watchFirstExtras(j))
	}
	changes := watchChanges(prev, j)
	if len(changes) == 0 {
		return ""
	}
	return fmt.Sprintf("%s %s: %s", at, key, strings.Join(changes, ", "))
}

// watchFirstExtras is the launch reason and last exit of a job's first
// line, where it has them.
func watchFirstExtras(j *xpc.Dictionary) string {
	var b strings.Builder
	if r, err := j.String(bootstrap.KeyLaunchReason); err == nil {
		b.WriteString(" reason=" + r)
	}
	if e, err := j.String(bootstrap.KeyLastExit); err == nil {
		b.WriteString(" last_exit=" + strconv.Quote(e))
	}
	return b.String()
}

// watchChanges lists "KEY OLD → NEW" for each key whose value differs
// between the records a and b: state first, then b's keys in order, then
// those only a has.
func watchChanges(a, b *xpc.Dictionary) []string {
	keys := []string{bootstrap.KeyState}
	for _, k := range append(b.Keys(), a.Keys()...) {
		if !slices.Contains(keys, k) && !slices.Contains(watchQuiet, k) {
			keys = append(keys, k)
		}
	}
	var out []string
	for _, k := range keys {
		va, vb := a.Get(k), b.Get(k)
		if va == nil && vb == nil || va != nil && vb != nil && xpc.Equal(va, vb) {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s → %s", k, watchValue(va), watchValue(vb)))
	}
	return out
}

// watchValue is a record's value as a watch line shows it: "-" for none,
// a string quoted if it has spaces, a dictionary by its size, an array as
// watchArray shows it.
func watchValue(v xpc.Object) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case xpc.String:
		if strings.ContainsAny(string(v), " \t\"") || v == "" {
			return strconv.Quote(string(v))
		}
		return string(v)
	case xpc.Int64:
		return strconv.FormatInt(int64(v), 10)
	case xpc.Uint64:
		return strconv.FormatUint(uint64(v), 10)
	case xpc.Bool:
		return strconv.FormatBool(bool(v))
	case xpc.Date:
		return v.Time().Local().Format(time.RFC3339)
	case *xpc.Dictionary:
		return fmt.Sprintf("{%d keys}", v.Len())
	case xpc.Array:
		return watchArray(v)
	}
	return xpc.Format(v)
}

// maxWatchArray bounds the text of an array a watch line shows whole.
const maxWatchArray = 64

// watchArray is an array of a few short strings (the names a job checked
// in) whole, "[a,b]", and any other by its size, "[5 items]".
func watchArray(v xpc.Array) string {
	names := make([]string, 0, len(v))
	n := 0
	for _, o := range v {
		s, ok := o.(xpc.String)
		n += len(s) + 1
		if !ok || n > maxWatchArray || strings.ContainsAny(string(s), ", \t\"[]") {
			return fmt.Sprintf("[%d items]", len(v))
		}
		names = append(names, string(s)) // the line is escaped as printed
	}
	return "[" + strings.Join(names, ",") + "]"
}

type watchHandler struct{ events chan *xpc.Dictionary }

func (h watchHandler) HandleMessage(ctx context.Context, m *xpc.Message) {
	if over, _ := m.Body.Bool(bootstrap.KeyOverflow); over {
		select {
		case h.events <- nil:
		case <-ctx.Done():
		}
		return
	}
	if ev, err := m.Body.Dictionary(bootstrap.KeyEvent); err == nil {
		select {
		case h.events <- ev:
		case <-ctx.Done():
		}
	}
}

func (h watchHandler) HandleEvent(error) {}
