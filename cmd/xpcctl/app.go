package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/spf13/pflag"
)

// The app and approval commands: registration of an application bundle's
// main app, agents and daemons, and administrators' approval of daemons
// (docs/APPS.md).

const appServiceHelp = `BUNDLE is the application bundle's directory; without --agent or --daemon
the command is about the main app (the application itself, started at
your login as an agent of your domain). --agent NAME is the bundle's
Library/LaunchAgents/NAME (into your user domain), --daemon NAME its
Library/LaunchDaemons/NAME (into the system domain; a daemon you register
waits for an administrator's approval unless you are root). NAME is the
plist's file name, with .plist; in the Contents layout the directories are
under Contents/. xpcd reads the bundle with your rights.`

// appVerbs are the commands that name one service of a bundle.
var appVerbs = []struct {
	verb, op, summary, help string
}{
	{"register", bootstrap.OpAppRegister, "register a bundle's main app, agent or daemon",
		"Registers the service: its job is loaded now and whenever xpcd starts. Registering the same bundle again, from the same path or a new one (moved or updated), updates its one registration. Prints the status: enabled, or requires-approval (with the approval id an administrator gives to 'xpcctl approval approve')."},
	{"unregister", bootstrap.OpAppUnregister, "unregister a bundle's main app, agent or daemon",
		"Unregisters the service and returns once its job has stopped and is unloaded, so that register right after succeeds. Fails with not-registered if it is not registered."},
	{"status", bootstrap.OpAppStatus, "print a service's registration status",
		"Prints one of: not-registered (the bundle is there, the service is not registered), enabled, requires-approval (a daemon waiting for an administrator), not-found (the bundle, or the plist named in it, does not exist; a registration whose bundle was deleted is not-found too)."},
	{"watch", bootstrap.OpAppWatch, "print a service's status now and at every change",
		"Prints the status now, then a line each time it changes, as xpcd pushes it, until interrupted: TIME STATUS."},
}

// appCommands are "app register|unregister|status|watch|list|repair" and
// "approval list|approve|deny".
func appCommands() []*command {
	var cmds []*command
	for _, v := range appVerbs {
		cmds = append(cmds, &command{
			name: "app " + v.verb, args: "[--json] [--timeout D] [--agent NAME | --daemon NAME] BUNDLE", summary: v.summary,
			help:  v.help + "\n\n" + appServiceHelp + "\n\n" + instanceHelp,
			setup: appServiceSetup(v.op),
		})
	}
	cmds = append(cmds,
		&command{name: "app list", args: "[--json] [--timeout D] [--stale]", summary: "list the registered app services",
			help:  "Lists your registrations (root: everyone's): STATUS (not-found for a stale one, whose bundle is gone), KIND, JOB (DOMAIN/LABEL), IDENTITY, BUNDLE. --stale lists the stale ones only.\n\n" + instanceHelp,
			setup: appListSetup},
		&command{name: "app repair", args: "[--json] [--timeout D]", summary: "remove the registrations whose bundle is gone",
			help:  "Removes your stale registrations (root: everyone's), those whose bundle no longer exists, and unloads their jobs; prints each one removed.\n\n" + instanceHelp,
			setup: appSimpleSetup(bootstrap.OpAppRepair, bootstrap.KeyRemoved)},
		&command{name: "approval list", args: "[--json] [--timeout D]", summary: "list the daemons users registered, and their approval",
			help:  "Lists the daemons users other than root registered: ID, APPROVED, UID, JOB (DOMAIN/LABEL), IDENTITY, USER (whom it runs as: root unless its plist names UserName); then, for each, what it would run: 'ID command:' its program and arguments and 'ID environment:' its EnvironmentVariables, quoted as a shell reads them. 'xpcctl print DOMAIN/LABEL' shows the rest of its job. An administrator sees every user's; others their own.\n\n" + approvalHelp,
			setup: appSimpleSetup(bootstrap.OpApprovalList, bootstrap.KeyApprovals)},
		&command{name: "approval approve", args: "[--json] [--timeout D] ID", summary: "approve a daemon a user registered: it starts",
			help:  "Approves the daemon ID (from 'xpcctl approval list'): it is started as loading would start it, now and at every start of xpcd. An approval holds for the bundle's team when it is signed, for the program's digest when it is not (a changed program needs approval again).\n\n" + approvalHelp,
			setup: approvalSetup(bootstrap.OpApprove)},
		&command{name: "approval deny", args: "[--json] [--timeout D] ID", summary: "deny a daemon a user registered: its registration goes",
			help:  "Denies the daemon ID: its registration is removed and its job unloaded.\n\n" + approvalHelp,
			setup: approvalSetup(bootstrap.OpDeny)},
	)
	return cmds
}

const approvalHelp = `Approve and deny are for administrators: root, or a member of one of
xpcd's administrator groups (xpcd --admin-groups; by default sudo, wheel
and admin). Talks to the system instance of xpcd (XPCD_ROOT's if set).`

// appServiceSetup declares --agent, --daemon, --json, --timeout.
func appServiceSetup(op string) func(fs *pflag.FlagSet) runFunc {
	return func(fs *pflag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print the reply as JSON (watch: one object per line)")
		agent := fs.String("agent", "", "the agent Library/LaunchAgents/`NAME` of the bundle")
		daemon := fs.String("daemon", "", "the daemon Library/LaunchDaemons/`NAME` of the bundle")
		timeout := timeoutFlag(fs, time.Minute)
		return func(ctx context.Context, s stdio, c *command, pos []string) int {
			if len(pos) != 1 {
				return c.usageError(s, "want one BUNDLE")
			}
			if *agent != "" && *daemon != "" {
				return c.usageError(s, "--agent and --daemon: give one or the other")
			}
			root, err := filepath.Abs(pos[0])
			if err != nil {
				return c.fail(s, "%s: %v", pos[0], err)
			}
			req := xpc.Dict(bootstrap.KeyOp, op, bootstrap.KeyPath, root, bootstrap.KeyAppKind, bootstrap.AppKindMain)
			inst := s.xpcd
			switch {
			case *agent != "":
				req.Set(bootstrap.KeyAppKind, xpc.String(bootstrap.AppKindAgent))
				req.Set(bootstrap.KeyAppPlist, xpc.String(*agent))
			case *daemon != "":
				req.Set(bootstrap.KeyAppKind, xpc.String(bootstrap.AppKindDaemon))
				req.Set(bootstrap.KeyAppPlist, xpc.String(*daemon))
				inst = inst.forTarget(systemDomainName)
			}
			if op == bootstrap.OpAppWatch {
				return runAppWatch(ctx, s, c, inst, req, pos[0], *asJSON)
			}
			ctx, cancel := context.WithTimeout(ctx, *timeout)
			defer cancel()
			reply, err := requestOn(ctx, inst, req)
			if err != nil {
				return c.failed(s, pos[0], err)
			}
			if *asJSON {
				return printJSON(s, c, reply)
			}
			renderAppStatus(terminal{s.out}, reply)
			return exitOK
		}
	}
}

// systemDomainName is the system domain's name, as xpcctl's targets have it.
const systemDomainName = "system"

// requestOn sends req to inst, as adminRequest does, without choosing
// the instance from the request.
func requestOn(ctx context.Context, inst instance, req *xpc.Dictionary) (*xpc.Dictionary, error) {
	c, err := dialXPCD(ctx, inst, nil)
	if err != nil {
		return nil, err
	}
	defer c.Cancel()
	return c.SendWithReply(ctx, req)
}

func renderAppStatus(w io.Writer, reply *xpc.Dictionary) {
	st, _ := reply.String(bootstrap.KeyStatus)
	line := st
	if dom, err := reply.String(bootstrap.KeyDomain); err == nil {
		label, _ := reply.String(bootstrap.KeyLabel)
		line += " " + dom + "/" + label
	}
	if id, err := reply.String(bootstrap.KeyApprovalID); err == nil && st == bootstrap.AppStatusRequiresApproval {
		line += fmt.Sprintf(" (approval id %s: an administrator runs 'xpcctl approval approve %s')", id, id)
	}
	fmt.Fprintln(w, line)
}

func runAppWatch(ctx context.Context, s stdio, c *command, inst instance, req *xpc.Dictionary, subject string, asJSON bool) int {
	events := make(chan *xpc.Dictionary, 64)
	conn, err := dialXPCD(ctx, inst, appWatchHandler{events: events})
	if err != nil {
		return c.failed(s, subject, err)
	}
	defer conn.Cancel()
	if _, err := conn.SendWithReply(ctx, req); err != nil {
		return c.failed(s, subject, err)
	}
	return c.streamEvents(ctx, s, conn, events, asJSON, func(ev *xpc.Dictionary) {
		st, _ := ev.String(bootstrap.KeyStatus)
		fmt.Fprintln(terminal{s.out}, time.Now().Format("15:04:05.000")+" "+st)
	})
}

type appWatchHandler struct{ events chan *xpc.Dictionary }

func (h appWatchHandler) HandleMessage(ctx context.Context, m *xpc.Message) {
	var ev *xpc.Dictionary
	if over, _ := m.Body.Bool(bootstrap.KeyOverflow); !over {
		ev = m.Body
	}
	select {
	case h.events <- ev:
	case <-ctx.Done():
	}
}

func (h appWatchHandler) HandleEvent(error) {}

func appListSetup(fs *pflag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "print the reply as JSON")
	stale := fs.Bool("stale", false, "only the registrations whose bundle is gone")
	timeout := timeoutFlag(fs, time.Minute)
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		if len(pos) != 0 {
			return c.usageError(s, "no arguments wanted")
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		reply, err := requestOn(ctx, s.xpcd, xpc.Dict(bootstrap.KeyOp, bootstrap.OpAppList, bootstrap.KeyStale, *stale))
		if err != nil {
			return c.failed(s, "", err)
		}
		if *asJSON {
			return printJSON(s, c, reply)
		}
		renderRegs(terminal{s.out}, reply, bootstrap.KeyRegistrations, false)
		return exitOK
	}
}

// appSimpleSetup: a request with no argument whose reply lists
// registrations under key.
func appSimpleSetup(op, key string) func(fs *pflag.FlagSet) runFunc {
	return func(fs *pflag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print the reply as JSON")
		timeout := timeoutFlag(fs, time.Minute)
		return func(ctx context.Context, s stdio, c *command, pos []string) int {
			if len(pos) != 0 {
				return c.usageError(s, "no arguments wanted")
			}
			ctx, cancel := context.WithTimeout(ctx, *timeout)
			defer cancel()
			inst := s.xpcd
			if op == bootstrap.OpApprovalList {
				inst = inst.forTarget(systemDomainName)
			}
			reply, err := requestOn(ctx, inst, xpc.Dict(bootstrap.KeyOp, op))
			if err != nil {
				return c.failed(s, "", err)
			}
			if *asJSON {
				return printJSON(s, c, reply)
			}
			renderRegs(terminal{s.out}, reply, key, op == bootstrap.OpApprovalList)
			return exitOK
		}
	}
}

func approvalSetup(op string) func(fs *pflag.FlagSet) runFunc {
	return func(fs *pflag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print the reply as JSON")
		timeout := timeoutFlag(fs, time.Minute)
		return func(ctx context.Context, s stdio, c *command, pos []string) int {
			if len(pos) != 1 {
				return c.usageError(s, "want one ID (xpcctl approval list)")
			}
			ctx, cancel := context.WithTimeout(ctx, *timeout)
			defer cancel()
			reply, err := requestOn(ctx, s.xpcd.forTarget(systemDomainName), xpc.Dict(bootstrap.KeyOp, op, bootstrap.KeyApprovalID, pos[0]))
			if err != nil {
				return c.failed(s, pos[0], err)
			}
			if *asJSON {
				return printJSON(s, c, reply)
			}
			renderStatus(terminal{s.out}, reply)
			return exitOK
		}
	}
}

// renderRegs prints the registrations in reply[key], one a line. Of
// approvals, what each daemon runs follows the table, two lines each
// ("ID command: ...", "ID environment: ..."), so that a long command line
// cannot widen a column and push another daemon's environment off the
// screen.
func renderRegs(w io.Writer, reply *xpc.Dictionary, key string, approvals bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var details []string
	if approvals {
		fmt.Fprintln(tw, "ID\tAPPROVED\tUID\tJOB\tIDENTITY\tUSER")
	} else {
		fmt.Fprintln(tw, "STATUS\tKIND\tJOB\tIDENTITY\tBUNDLE")
	}
	regs, _ := reply.Array(key)
	for _, o := range regs {
		r, ok := o.(*xpc.Dictionary)
		if !ok {
			continue
		}
		// One cell each: a user's newline or tab must not make a row or
		// a column of its own.
		str := func(k string) string { s, _ := r.String(k); return cell(s) }
		identity := str(bootstrap.KeyAppIdentifier)
		if t := str(bootstrap.KeyAppTeam); t != "" {
			identity += " (team " + t + ")"
		}
		job := str(bootstrap.KeyDomain) + "/" + str(bootstrap.KeyLabel)
		if approvals {
			approved, _ := r.Bool(bootstrap.KeyAppApproved)
			uid, _ := r.Int64(bootstrap.KeyAppUID)
			runAs := str(bootstrap.KeyAppUserName)
			if runAs == "" {
				runAs = "root"
			}
			id := str(bootstrap.KeyApprovalID)
			fmt.Fprintf(tw, "%s\t%t\t%s\t%s\t%s\t%s\n", id, approved, strconv.FormatInt(uid, 10), job, identity, runAs)
			details = append(details, id+" command: "+cell(commandLine(r)), id+" environment: "+cell(environmentLine(r)))
			continue
		}
		kind := str(bootstrap.KeyAppKind)
		if p := str(bootstrap.KeyAppPlist); p != "" {
			kind += " " + p
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", str(bootstrap.KeyStatus), kind, job, identity, str(bootstrap.KeyAppBundle))
	}
	tw.Flush()
	if len(details) > 0 {
		fmt.Fprintln(w)
		for _, l := range details {
			fmt.Fprintln(w, l)
		}
	}
}

// commandLine is what a registered daemon runs: its program, then its
// arguments after argv[0], each quoted as a shell would need; preceded by
// "exec -a ARGV0" when argv[0] is not the program, since a multi-call
// program (busybox) runs what argv[0] names.
func commandLine(r *xpc.Dictionary) string {
	prog, _ := r.String(bootstrap.KeyAppProgram)
	var words []string
	args, _ := r.Array(bootstrap.KeyAppArguments)
	if len(args) > 0 {
		if a0, ok := args[0].(xpc.String); ok && string(a0) != prog {
			words = append(words, "exec", "-a", shellQuote(string(a0)))
		}
	}
	words = append(words, shellQuote(prog))
	for i, a := range args {
		if s, ok := a.(xpc.String); ok && i > 0 {
			words = append(words, shellQuote(string(s)))
		}
	}
	return strings.Join(words, " ")
}

// environmentLine is a registered daemon's EnvironmentVariables, K=V
// each, sorted, "-" if none.
func environmentLine(r *xpc.Dictionary) string {
	env, _ := r.Get(bootstrap.KeyAppEnvironment).(*xpc.Dictionary)
	if env == nil || env.Len() == 0 {
		return "-"
	}
	var kv []string
	for k, v := range env.All() {
		s, _ := v.(xpc.String)
		kv = append(kv, shellQuote(k+"="+string(s)))
	}
	slices.Sort(kv)
	return strings.Join(kv, " ")
}

// shellQuote is s as one word of a shell command line: as it is when it
// holds only characters no shell treats specially, else in single quotes.
// A leading '=' is special to zsh (=cmd is cmd's path there).
func shellQuote(s string) string {
	if s != "" && s[0] != '=' && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=@%+,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cell is s for one cell of a table: its control characters escaped, tabs
// and newlines included.
func cell(s string) string {
	return strings.ReplaceAll(escapeControls(s, false), "\t", `\t`)
}
