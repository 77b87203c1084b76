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
	"github.com/spf13/pflag"
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
	kick    bool // kickstart's -k/--kill
	wait    bool // bootout's --wait
	build   func(pos []string, flags adminFlags) (*xpc.Dictionary, error)
	render  func(w io.Writer, reply *xpc.Dictionary)
	// fetch sends the request and returns the whole answer; nil is
	// adminRequest (one request, one reply).
	fetch func(ctx context.Context, inst instance, req *xpc.Dictionary) (*xpc.Dictionary, error)
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
		help: `Lists every job of DOMAIN (system, user/UID), or of every domain you may
read, one a line: pid, state, runs, last exit ("launch failed" when the
last launch failed), DOMAIN/LABEL, and the service names it serves
(SERVICES; past the column's width, +N counts the rest, which print
names); then "not loaded: " and why, for each plist that did not load.`,
		maxArgs: 1, build: domainReq(bootstrap.OpList), render: renderList},
	{op: bootstrap.OpPrint, args: "TARGET", summary: "print a job's (DOMAIN/LABEL) or a domain's state",
		help: `Prints everything xpcd knows of a job, as systemctl status does: state
and uptime, pid and why it was launched, program, arguments, user,
directory, standard files, memory and CPU time of the running process,
how the last instance ended and why the last launch failed, environment;
then runs, connections (open now, and the running total), transactions,
plist path, throttle and the rest. Of a domain (system, user/UID), its
jobs. Of a process's pid domain (pid/PID), the application bundle it was
started from (root, identifier, identity from its signature), the
bundle's XPC services with their type and domain (and joins_session for
those given the application's session), and the instances
running for it; empty for a process not started from a bundle. --json
gives the reply as it is.`,
		minArgs: 1, maxArgs: 1, build: targetReq(bootstrap.OpPrint), render: renderPrint},
	{op: bootstrap.OpPrintDisabled, args: "DOMAIN", summary: "list a domain's enable/disable overrides",
		minArgs: 1, maxArgs: 1, build: domainReq(bootstrap.OpPrintDisabled), render: renderDict},
	{op: bootstrap.OpEnable, args: "DOMAIN/LABEL", summary: "enable a job (persisted)",
		minArgs: 1, maxArgs: 1, build: targetReq(bootstrap.OpEnable), render: renderStatus},
	{op: bootstrap.OpDisable, args: "DOMAIN/LABEL", summary: "disable a job (persisted): it will not be launched",
		minArgs: 1, maxArgs: 1, build: targetReq(bootstrap.OpDisable), render: renderStatus},
	{op: bootstrap.OpKickstart, args: "[-k|--kill] DOMAIN/LABEL", summary: "start a job now (-k|--kill: restart it if it runs)",
		minArgs: 1, maxArgs: 1, kick: true, render: renderStatus,
		build: func(pos []string, f adminFlags) (*xpc.Dictionary, error) {
			return xpc.Dict(bootstrap.KeyOp, bootstrap.OpKickstart, bootstrap.KeyTarget, pos[0], bootstrap.KeyKill, f.kill), nil
		}},
	{op: bootstrap.OpKill, args: "SIGNAL DOMAIN/LABEL", summary: "send a signal to a running job",
		help: `Sends SIGNAL to the running instance of the job DOMAIN/LABEL. SIGNAL is
a name (TERM, SIGKILL) or a number. The signal goes through the job's
pidfd, never a bare pid. A bundle's XPC service instance is named
pid/PID/LABEL, apps/UID/LABEL or apps/system/LABEL (see print).`,
		minArgs: 2, maxArgs: 2, render: renderStatus,
		build: func(pos []string, _ adminFlags) (*xpc.Dictionary, error) {
			sig, err := parseSignal(pos[0])
			if err != nil {
				return nil, err
			}
			return xpc.Dict(bootstrap.KeyOp, bootstrap.OpKill, bootstrap.KeyTarget, pos[1], bootstrap.KeySignal, int64(sig)), nil
		}},
	{op: bootstrap.OpBootstrap, args: "DOMAIN PATH", summary: "load a job plist into a domain",
		help: `Loads the job plist PATH into DOMAIN (system, user/UID), as launchctl
bootstrap does; xpcd reads the file through a descriptor opened with your
rights. Idempotent: the same plist again is "already loaded"; a changed
plist upgrades the job. A bad plist is refused with its file, key and
reason ('xpcctl plist lint' checks one offline).`,
		minArgs: 2, maxArgs: 2, render: renderStatus,
		build: func(pos []string, _ adminFlags) (*xpc.Dictionary, error) {
			path, err := filepath.Abs(pos[1])
			if err != nil {
				return nil, err
			}
			return xpc.Dict(bootstrap.KeyOp, bootstrap.OpBootstrap, bootstrap.KeyDomain, pos[0], bootstrap.KeyPath, path), nil
		}},
	{op: bootstrap.OpBootout, args: "[--wait] DOMAIN/LABEL", summary: "unload a job, stopping it if it runs",
		help: `Unloads the job DOMAIN/LABEL, stopping it if it runs, as launchctl
bootout does. Idempotent: a job that is not loaded is "not loaded".
--wait returns once the job has exited.`,
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
		cmds = append(cmds, spec.command(spec.op, help))
	}
	cmds = append(cmds, watchCommand)
	return cmds
}

// command is the command that runs spec, named name.
func (spec *adminSpec) command(name, help string) *command {
	return &command{
		name: name, args: "[--json] [--timeout D] " + spec.args, summary: spec.summary,
		help:  help + "\n\n" + instanceHelp,
		setup: spec.setup,
	}
}

// setup declares an admin command's flags: --json and --timeout, and
// kickstart's -k/--kill and bootout's --wait.
func (spec *adminSpec) setup(fs *pflag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "print the reply as JSON")
	var f adminFlags
	if spec.kick {
		fs.BoolVarP(&f.kill, "kill", "k", false, "if the job runs, stop it first and start it again")
	}
	if spec.wait {
		fs.BoolVar(&f.wait, "wait", false, "return once the job has exited")
	}
	timeout := timeoutFlag(fs, time.Minute)
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		if len(pos) < spec.minArgs || len(pos) > max(spec.maxArgs, spec.minArgs) {
			return c.usageError(s, "wrong number of arguments")
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return runAdmin(ctx, s, c, spec, pos, f, *asJSON)
	}
}

// timeoutFlag declares --timeout with the default def.
func timeoutFlag(fs *pflag.FlagSet, def time.Duration) *time.Duration {
	return fs.Duration("timeout", def, "give up after `D`, a duration (30s, 2m)")
}

func runAdmin(ctx context.Context, s stdio, c *command, spec *adminSpec, pos []string, f adminFlags, asJSON bool) int {
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
	fetch := spec.fetch
	if fetch == nil {
		fetch = adminRequest
	}
	reply, err := fetch(ctx, s.xpcd, req)
	if err != nil {
		return c.failed(s, lastArg(pos), err)
	}
	if asJSON {
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

// dialXPCD connects to the first bootstrap socket of inst that answers.
func dialXPCD(ctx context.Context, inst instance, h xpc.Handler) (*xpc.Connection, error) {
	var errs []error
	paths := inst.sockets()
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

func adminRequest(ctx context.Context, inst instance, req *xpc.Dictionary) (*xpc.Dictionary, error) {
	c, err := dialXPCD(ctx, inst.forRequest(req), nil)
	if err != nil {
		return nil, err
	}
	defer c.Cancel()
	return c.SendWithReply(ctx, req)
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
	fmt.Fprintln(tw, "PID\tSTATE\tRUNS\tLAST EXIT\tLABEL\tSERVICES")
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
		if gone, _ := j.Bool(bootstrap.KeyPlistDeleted); gone {
			// Unloaded once it exits (print and blame say more).
			state += " (plist deleted)"
		}
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
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s/%s\t%s\n", pid, state, runs, last, dom, label, servicesColumn(j))
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

// maxServicesColumn bounds list's SERVICES column, in bytes: names past it
// are counted ("+N"), not shown (print shows them all).
const maxServicesColumn = 60

// servicesColumn is the service names a job of list serves, comma
// separated, "-" for none. The first name is always shown whole (a name is
// at most 127 bytes); the others while the column, with room for "+N"
// naming how many are left out, stays within maxServicesColumn.
func servicesColumn(j *xpc.Dictionary) string {
	names, _ := j.Array(bootstrap.KeyMachServices)
	var b strings.Builder
	for i, o := range names {
		s, _ := o.(xpc.String)
		room := maxServicesColumn
		if left := len(names) - i - 1; left > 0 {
			room -= len(",+") + len(strconv.Itoa(left))
		}
		if i > 0 && b.Len()+1+len(s) > room {
			fmt.Fprintf(&b, ",+%d", len(names)-i)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(s))
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
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
