package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"golang.org/x/sys/unix"
)

// adminSpec describes one of xpcd's administration commands: its
// positional arguments, and how they become a request.
type adminSpec struct {
	op      string
	args    string
	summary string
	help    string
	minArgs int
	maxArgs int
	kick    bool // kickstart's -k
	wait    bool // bootout's --wait
	build   func(pos []string, flags adminFlags) (*xpc.Dictionary, error)
	render  func(w io.Writer, reply *xpc.Dictionary)
	// fetch sends the request and returns the whole answer; nil is
	// adminRequest (one request, one reply).
	fetch func(ctx context.Context, req *xpc.Dictionary) (*xpc.Dictionary, error)
}

type adminFlags struct {
	kill bool
	wait bool
}

func targetReq(op string) func([]string, adminFlags) (*xpc.Dictionary, error) {
	return func(pos []string, _ adminFlags) (*xpc.Dictionary, error) {
		return xpc.Dict(bootstrap.KeyOp, op, bootstrap.KeyTarget, pos[0]), nil
	}
}

// targetProblem says, of a TARGET that is a label alone (as systemctl
// takes a unit), that it names no domain and which targets it may mean;
// "" for any other, which xpcd judges.
func targetProblem(t string) string {
	if t == "" || t == "system" || strings.Contains(t, "/") {
		return ""
	}
	return fmt.Sprintf("TARGET %q names no domain: want DOMAIN/LABEL, as user/%d/%s or system/%s", t, os.Geteuid(), t, t)
}

func domainReq(op string) func([]string, adminFlags) (*xpc.Dictionary, error) {
	return func(pos []string, _ adminFlags) (*xpc.Dictionary, error) {
		d := xpc.Dict(bootstrap.KeyOp, op)
		if len(pos) > 0 {
			d.Set(bootstrap.KeyDomain, xpc.String(pos[0]))
		}
		return d, nil
	}
}

var adminSpecs = []adminSpec{
	{op: bootstrap.OpList, args: "[DOMAIN]", summary: "list the jobs xpcd has loaded",
		help:    "Lists every job of DOMAIN (system, user/UID), or of every domain you may read: pid, state, runs, last exit (\"launch failed\" when the last launch failed), label.",
		maxArgs: 1, build: domainReq(bootstrap.OpList), render: renderList},
	{op: bootstrap.OpPrint, args: "TARGET", summary: "print a job's (DOMAIN/LABEL) or a domain's state",
		help:    "Prints everything xpcd knows of a job, as systemctl status does: state and uptime, pid and why it was launched, program, arguments, user, directory, standard files, memory and CPU time of the running process, how the last instance ended and why the last launch failed, environment; then runs, connections (open now, and the running total), transactions, plist path, throttle and the rest. --json gives the reply as it is.",
		minArgs: 1, maxArgs: 1, build: targetReq(bootstrap.OpPrint), render: renderPrint},
	{op: bootstrap.OpPrintDisabled, args: "DOMAIN", summary: "list a domain's enable/disable overrides",
		minArgs: 1, maxArgs: 1, build: domainReq(bootstrap.OpPrintDisabled), render: renderDict},
	{op: bootstrap.OpEnable, args: "DOMAIN/LABEL", summary: "enable a job (persisted)",
		minArgs: 1, maxArgs: 1, build: targetReq(bootstrap.OpEnable), render: renderStatus},
	{op: bootstrap.OpDisable, args: "DOMAIN/LABEL", summary: "disable a job (persisted): it will not be launched",
		minArgs: 1, maxArgs: 1, build: targetReq(bootstrap.OpDisable), render: renderStatus},
	{op: bootstrap.OpKickstart, args: "[-k] DOMAIN/LABEL", summary: "start a job now (-k: restart it if it runs)",
		minArgs: 1, maxArgs: 1, kick: true, render: renderStatus,
		build: func(pos []string, f adminFlags) (*xpc.Dictionary, error) {
			return xpc.Dict(bootstrap.KeyOp, bootstrap.OpKickstart, bootstrap.KeyTarget, pos[0], bootstrap.KeyKill, f.kill), nil
		}},
	{op: bootstrap.OpKill, args: "SIGNAL DOMAIN/LABEL", summary: "send a signal to a running job",
		help:    "SIGNAL is a name (TERM, SIGKILL) or a number. The signal goes through the job's pidfd, never a bare pid.",
		minArgs: 2, maxArgs: 2, render: renderStatus,
		build: func(pos []string, _ adminFlags) (*xpc.Dictionary, error) {
			sig, err := parseSignal(pos[0])
			if err != nil {
				return nil, err
			}
			return xpc.Dict(bootstrap.KeyOp, bootstrap.OpKill, bootstrap.KeyTarget, pos[1], bootstrap.KeySignal, int64(sig)), nil
		}},
	{op: bootstrap.OpBootstrap, args: "DOMAIN PATH", summary: "load a job plist into a domain",
		help:    "Idempotent: the same plist again is \"already loaded\"; a changed plist upgrades the job. A bad plist is refused with its file, key and reason.",
		minArgs: 2, maxArgs: 2, render: renderStatus,
		build: func(pos []string, _ adminFlags) (*xpc.Dictionary, error) {
			path, err := filepath.Abs(pos[1])
			if err != nil {
				return nil, err
			}
			return xpc.Dict(bootstrap.KeyOp, bootstrap.OpBootstrap, bootstrap.KeyDomain, pos[0], bootstrap.KeyPath, path), nil
		}},
	{op: bootstrap.OpBootout, args: "[--wait] DOMAIN/LABEL", summary: "unload a job, stopping it if it runs",
		help:    "Idempotent: a job that is not loaded is \"not loaded\". --wait returns once the job has exited.",
		minArgs: 1, maxArgs: 1, wait: true, render: renderStatus,
		build: func(pos []string, f adminFlags) (*xpc.Dictionary, error) {
			return xpc.Dict(bootstrap.KeyOp, bootstrap.OpBootout, bootstrap.KeyTarget, pos[0], bootstrap.KeyWait, f.wait), nil
		}},
	{op: bootstrap.OpBlame, args: "DOMAIN/LABEL", summary: "say why a job runs, or why it does not",
		minArgs: 1, maxArgs: 1, build: targetReq(bootstrap.OpBlame), render: renderBlame},
	{op: bootstrap.OpProcinfo, args: "PID", summary: "say which job a process xpcd launched belongs to, and why it runs",
		minArgs: 1, maxArgs: 1, render: renderDict,
		build: func(pos []string, _ adminFlags) (*xpc.Dictionary, error) {
			pid, err := strconv.ParseInt(pos[0], 10, 32)
			if err != nil || pid <= 0 {
				return nil, fmt.Errorf("PID %q is not a process id", pos[0])
			}
			return xpc.Dict(bootstrap.KeyOp, bootstrap.OpProcinfo, bootstrap.KeyPID, pid), nil
		}},
	{op: bootstrap.OpRemoveDisabled, args: "DOMAIN", summary: "remove disabled entries whose plist is gone",
		minArgs: 1, maxArgs: 1, build: domainReq(bootstrap.OpRemoveDisabled), render: renderDict},
}

func adminCommands() []*command {
	cmds := make([]*command, 0, len(adminSpecs)+1)
	for i := range adminSpecs {
		spec := &adminSpecs[i]
		help := spec.help
		if help == "" {
			help = strings.ToUpper(spec.summary[:1]) + spec.summary[1:] + "."
		}
		cmds = append(cmds, &command{
			name: spec.op, args: "[--json] " + spec.args, summary: spec.summary,
			help: help + "\n\nTalks to the xpcd that XPCD_ROOT selects, or else the user's and then the system's.",
			run: func(ctx context.Context, s stdio, c *command, args []string) int {
				return runAdmin(ctx, s, c, spec, args)
			},
		})
	}
	cmds = append(cmds, watchCommand)
	return cmds
}

func runAdmin(ctx context.Context, s stdio, c *command, spec *adminSpec, args []string) int {
	fs := c.flagSet(s)
	asJSON := fs.Bool("json", false, "print the reply as JSON")
	var f adminFlags
	if spec.kick {
		fs.BoolVar(&f.kill, "k", false, "if the job runs, stop it first and start it again")
	}
	if spec.wait {
		fs.BoolVar(&f.wait, "wait", false, "return once the job has exited")
	}
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	pos, code, ok := c.parse(s, fs, args)
	if !ok {
		return code
	}
	if len(pos) < spec.minArgs || len(pos) > max(spec.maxArgs, spec.minArgs) {
		return c.usageError(s, "wrong number of arguments")
	}
	req, err := spec.build(pos, f)
	if err != nil {
		return c.usageError(s, err.Error())
	}
	if t, _ := req.String(bootstrap.KeyTarget); targetProblem(t) != "" {
		return c.usageError(s, targetProblem(t))
	}
	if spec.op == bootstrap.OpBootstrap {
		// xpcd reads the plist through this descriptor, opened with our
		// rights, as launchd reads the one launchctl hands it.
		plist, err := openPlist(req)
		if err != nil {
			return c.fail(s, "%v", err)
		}
		defer plist.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	fetch := spec.fetch
	if fetch == nil {
		fetch = adminRequest
	}
	reply, err := fetch(ctx, req)
	if err != nil {
		return c.fail(s, "%s", adminError(err))
	}
	if *asJSON {
		return printJSON(s, c, reply)
	}
	spec.render(terminal{s.out}, reply)
	return exitOK
}

// openPlist opens the plist a bootstrap request names and attaches it to
// the request; the caller closes the file.
func openPlist(req *xpc.Dictionary) (*os.File, error) {
	path, _ := req.String(bootstrap.KeyPath)
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	req.Set(bootstrap.KeyPlist, xpc.NewFD(f))
	return f, nil
}

// dialXPCD connects to the first bootstrap socket that answers.
func dialXPCD(ctx context.Context, h xpc.Handler) (*xpc.Connection, error) {
	var errs []error
	paths := bootstrap.ClientSockets()
	for _, path := range paths {
		c, err := xpc.DialUnix(ctx, path)
		if err == nil {
			if h != nil {
				c.SetHandler(h)
			}
			c.Activate()
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, noXPCD(paths, errs)
}

// noXPCD is the error of a dial no bootstrap socket of paths answered,
// errs saying why for each: xpc.ErrNoBootstrap, on one line with how to
// start xpcd, when nothing listens on any, as the library says it.
func noXPCD(paths []string, errs []error) error {
	cause := errors.Join(errs...)
	for _, err := range errs {
		if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("no xpcd answers: %w", cause)
		}
	}
	return fmt.Errorf("%w: nothing listens on %s; %s", xpc.ErrNoBootstrap, strings.Join(paths, " or "), bootstrap.StartHint(paths))
}

func adminRequest(ctx context.Context, req *xpc.Dictionary) (*xpc.Dictionary, error) {
	c, err := dialXPCD(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer c.Cancel()
	return c.SendWithReply(ctx, req)
}

// adminError renders an error reply as refusalText does, with the plist
// errors of a refused bootstrap on the same line.
func adminError(err error) string {
	var re *xpc.RemoteError
	if !errors.As(err, &re) {
		return trimPrefix(err)
	}
	desc := re.Object.Description()
	var b strings.Builder
	b.WriteString(objectText(re.Object))
	if errs, err := re.Object.Array(bootstrap.KeyErrors); err == nil {
		for _, e := range errs {
			if d, ok := e.(*xpc.Dictionary); ok {
				if s, err := d.String(bootstrap.KeyError); err == nil && !strings.Contains(desc, s) {
					b.WriteString("; " + s)
				}
			}
		}
	}
	return b.String()
}

// objectText renders an error object (an error reply, a refusal) as
// refusalText does, from its kind, reason, description, rule, domain and
// peer keys.
func objectText(eo *xpc.ErrorObject) string {
	str := func(k string) string { s, _ := eo.String(k); return s }
	return refusalText(str(bootstrap.KeyKind), str(bootstrap.KeyReason), eo.Description(),
		str(bootstrap.KeyRule), str(bootstrap.KeyDomain), str(bootstrap.KeyPeer))
}

// refusalText is how every command shows why something was refused or
// failed: "KIND: REASON: DESCRIPTION", then the rule (or the requirement
// clause), the domain and the peer the refusal names, where the
// description does not say them already:
//
//	invalid: requirement-failed: org.x.helper may be looked up only by a process that meets "uid 0": ... fails "uid 0"
//	invalid: wrong-domain: org.x.helper is a system daemon, not in user/1000; connect with WithDomain(system)
func refusalText(kind, reason, desc, rule, domain, peer string) string {
	var b strings.Builder
	for _, s := range []string{kind, reason} {
		if s != "" {
			b.WriteString(s + ": ")
		}
	}
	b.WriteString(desc)
	var more []string
	for _, kv := range [...][2]string{{"rule", rule}, {"domain", domain}, {"peer", peer}} {
		if kv[1] != "" && !strings.Contains(desc, kv[1]) {
			more = append(more, kv[0]+" "+kv[1])
		}
	}
	if len(more) > 0 {
		b.WriteString(" (" + strings.Join(more, ", ") + ")")
	}
	return b.String()
}

func printJSON(s stdio, c *command, reply *xpc.Dictionary) int {
	out, err := xpc.ToPlainJSON(reply)
	if err == nil {
		out, err = indentJSON(out)
	}
	if err != nil {
		return c.fail(s, "reply: %v", err)
	}
	if len(out) == 0 || out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	s.out.Write(out)
	return exitOK
}

func renderList(w io.Writer, reply *xpc.Dictionary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tSTATE\tRUNS\tLAST EXIT\tLABEL")
	jobs, _ := reply.Array(bootstrap.KeyJobs)
	for _, o := range jobs {
		j, ok := o.(*xpc.Dictionary)
		if !ok {
			continue
		}
		pid := "-"
		if p, err := j.Int64(bootstrap.KeyPID); err == nil {
			pid = strconv.FormatInt(p, 10)
		}
		state, _ := j.String(bootstrap.KeyState)
		runs, _ := j.Int64(bootstrap.KeyRuns)
		last, err := j.String(bootstrap.KeyLastExit)
		if _, failed := j.String("error"); failed == nil {
			// Its last launch failed: newer than any exit, and what
			// one scans a list for (print and blame say why).
			last = "launch failed"
		} else if err != nil {
			last = "-"
		}
		label, _ := j.String(bootstrap.KeyLabel)
		dom, _ := j.String(bootstrap.KeyDomain)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s/%s\n", pid, state, runs, last, dom, label)
	}
	tw.Flush()
	// Plists that did not load are part of the answer too.
	errs, _ := reply.Array(bootstrap.KeyErrors)
	for _, o := range errs {
		if e, ok := o.(*xpc.Dictionary); ok {
			if text, err := e.String(bootstrap.KeyError); err == nil {
				fmt.Fprintf(w, "not loaded: %s\n", text)
			}
		}
	}
}

func renderStatus(w io.Writer, reply *xpc.Dictionary) {
	status, err := reply.String(bootstrap.KeyStatus)
	if err != nil {
		renderDict(w, reply)
		return
	}
	if pid, err := reply.Int64(bootstrap.KeyPID); err == nil {
		fmt.Fprintf(w, "%s (pid %d)\n", status, pid)
	} else {
		fmt.Fprintln(w, status)
	}
	// Keys that have no effect: a misspelled key may leave the job other
	// than meant (an unrestricted name, say).
	if ws, ok := reply.Get(bootstrap.KeyWarnings).(xpc.Array); ok {
		for _, x := range ws {
			if s, ok := x.(xpc.String); ok {
				fmt.Fprintf(w, "warning: %s\n", s)
			}
		}
	}
}

func renderBlame(w io.Writer, reply *xpc.Dictionary) {
	why, err := reply.String(bootstrap.KeyWhy)
	if err != nil {
		renderDict(w, reply)
		return
	}
	fmt.Fprintln(w, why)
}

// renderDict prints a reply as "key = value" lines, nested dictionaries
// and arrays indented, in the manner of launchctl print.
func renderDict(w io.Writer, d *xpc.Dictionary) {
	if d.Len() == 0 {
		fmt.Fprintln(w, "(nothing)")
		return
	}
	renderEntries(w, d, 0)
}

func renderEntries(w io.Writer, d *xpc.Dictionary, depth int) {
	keys := d.Keys()
	if depth > 0 {
		sort.Strings(keys)
	}
	for _, k := range keys {
		renderValue(w, k, d.Get(k), depth)
	}
}

func renderValue(w io.Writer, key string, v xpc.Object, depth int) {
	pad := strings.Repeat("\t", depth)
	switch v := v.(type) {
	case *xpc.Dictionary:
		fmt.Fprintf(w, "%s%s = {\n", pad, key)
		renderEntries(w, v, depth+1)
		fmt.Fprintf(w, "%s}\n", pad)
	case xpc.Array:
		fmt.Fprintf(w, "%s%s = [\n", pad, key)
		for i, e := range v {
			renderValue(w, strconv.Itoa(i), e, depth+1)
		}
		fmt.Fprintf(w, "%s]\n", pad)
	case xpc.String:
		fmt.Fprintf(w, "%s%s = %s\n", pad, key, string(v))
	case xpc.Int64:
		fmt.Fprintf(w, "%s%s = %d\n", pad, key, int64(v))
	case xpc.Uint64:
		fmt.Fprintf(w, "%s%s = %d\n", pad, key, uint64(v))
	case xpc.Bool:
		fmt.Fprintf(w, "%s%s = %t\n", pad, key, bool(v))
	case xpc.Date:
		fmt.Fprintf(w, "%s%s = %s\n", pad, key, v.Time().Local().Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "%s%s = %s\n", pad, key, xpc.Format(v))
	}
}

// parseSignal reads a signal as a number, or a name with or without "SIG".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("signal %d out of range", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

var watchCommand = &command{
	name:    "watch",
	args:    "[--json] [TARGET]",
	summary: "stream job state changes as they happen",
	help: `Prints one line per change of state of the jobs of TARGET (a domain, or
DOMAIN/LABEL), or of every job you may read, until interrupted. The first
lines give the current state of each job. With --json, each line is one job
as a JSON object.`,
	run: runWatch,
}

func runWatch(ctx context.Context, s stdio, c *command, args []string) int {
	fs := c.flagSet(s)
	asJSON := fs.Bool("json", false, "print each change as one JSON object per line")
	pos, code, ok := c.parse(s, fs, args)
	if !ok {
		return code
	}
	if len(pos) > 1 {
		return c.usageError(s, "too many arguments")
	}
	events := make(chan *xpc.Dictionary, 64)
	h := watchHandler{events: events}
	conn, err := dialXPCD(ctx, h)
	if err != nil {
		return c.fail(s, "%v", err)
	}
	defer conn.Cancel()
	req := xpc.Dict(bootstrap.KeyOp, bootstrap.OpWatch)
	if len(pos) == 1 {
		req.Set(bootstrap.KeyTarget, xpc.String(pos[0]))
	}
	if _, err := conn.SendWithReply(ctx, req); err != nil {
		return c.fail(s, "%s", adminError(err))
	}
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
			if *asJSON {
				out, err := xpc.ToPlainJSON(ev)
				if err != nil {
					return c.fail(s, "event: %v", err)
				}
				fmt.Fprintf(s.out, "%s\n", out)
				continue
			}
			fmt.Fprintln(s.out, watchLine(ev))
		}
	}
}

func watchLine(j *xpc.Dictionary) string {
	dom, _ := j.String(bootstrap.KeyDomain)
	label, _ := j.String(bootstrap.KeyLabel)
	state, _ := j.String(bootstrap.KeyState)
	line := fmt.Sprintf("%s %s/%s %s", time.Now().Format("15:04:05.000"), dom, label, state)
	if pid, err := j.Int64(bootstrap.KeyPID); err == nil {
		line += fmt.Sprintf(" pid=%d", pid)
	}
	if r, err := j.String(bootstrap.KeyLaunchReason); err == nil {
		line += " reason=" + r
	}
	if e, err := j.String(bootstrap.KeyLastExit); err == nil {
		line += " last_exit=" + strconv.Quote(e)
	}
	return line
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
