// Command xpcd is goxpc's bootstrap server and service manager, launchd's
// job for XPC on Linux: it owns service names, launches services when a
// client looks one up, hands each client's connection to its service and
// supervises the service (docs/XPCD.md).
//
// Usage:
//
//	xpcd --system | --user [--root DIR] [--polkit-bus BUS] [--login-bus BUS]
//	     [--max-connections-per-user N]
//	     [--journal-socket SOCKET] [--job-log-max-bytes N]
//	     [--log-level LEVEL] [--log-format text|json]
//	xpcd --version
//
// xpcd with no flags prints its usage and exits 2: the instance is named
// with exactly one of --system and --user. --system, as root, serves the
// system domain (jobs in /etc/xpc/LaunchDaemons, socket
// /run/xpc/bootstrap.sock); --user, one user's domain (jobs in
// $XDG_CONFIG_HOME/xpc/LaunchAgents, socket $XDG_RUNTIME_DIR/xpc/
// bootstrap.sock). --root DIR (or XPCD_ROOT=DIR) puts a whole private
// instance under DIR, with either.
//
// --max-connections-per-user N (default 256) caps the connections to the
// bootstrap socket one user may have open at once; root has no cap. The
// next is turned away with reason too-many-connections (the client's
// error matches xpc.ErrDenied) until one of that user's closes. N must be
// at least 1.
//
// --polkit-bus BUS is where polkit's authority is asked to approve the
// daemons users register from application bundles (an authorization
// dialog on a desktop): system (the system bus; the default for the
// system instance, --system without --root), none (the default otherwise)
// or a unix: bus address. Where no authority answers, xpcd says so once
// and approval waits for an administrator (xpcctl approval approve).
//
// --login-bus BUS is where systemd-logind is followed, so that a user's
// domain is made when they log in (their agents with RunAtLoad and the
// applications they registered start then): system (the default for the
// system instance, --system without --root), none (the default otherwise)
// or a unix: bus address. Without logind, a user's domain is made when
// first used. A --user instance ignores it.
//
// --job-log-max-bytes N (default 1 MiB) caps each job's log in the state
// directory, which is rotated once; --journal-socket SOCKET (default
// /run/systemd/journal/socket, used if it exists; "-" for none) is where
// each line of a service's output is also sent (docs/XPCD.md, "Service
// logs").
//
// Under systemd (serve.go), xpcd serves the bootstrap socket systemd passes
// (LISTEN_FDS) instead of making one, says when it is ready and stopping
// (NOTIFY_SOCKET), and pings the watchdog (WATCHDOG_USEC) while its
// supervisor loop answers. The hidden --gen-man DIR writes the manual page
// xpcd.8 into DIR (man.go).
//
// xpcd logs to standard error, services' output included. On SIGTERM or
// SIGINT it shuts itself down and leaves the services running; the next
// xpcd adopts them.
//
// Exit status: 0 after a clean shutdown, 1 if xpcd could not start or did
// not shut down cleanly, 2 for a usage error.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/goxpc/xpc/internal/buildinfo"
	"github.com/goxpc/xpc/internal/xpcd"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	if n := procs(os.Getenv); n > 0 {
		runtime.GOMAXPROCS(n)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// procs is the GOMAXPROCS xpcd sets for itself: 1, unless the GOMAXPROCS
// environment variable is set (0: leave it). xpcd's state lives in one
// supervisor loop and its sessions only read a request and hand it over,
// so a second processor buys no throughput; it only makes the Go scheduler
// wake idle threads for every goroutine readied. On one processor a lookup
// costs xpcd about a third less CPU and half the thread switches
// (docs/design/lookup-connect.md). The services xpcd starts do not inherit it.
func procs(getenv func(string) string) int {
	if getenv("GOMAXPROCS") != "" {
		return 0
	}
	return 1
}

// options are xpcd's flags.
type options struct {
	system, user bool
	root         string
	polkitBus    string
	loginBus     string
	level        string
	format       string
	maxConns     int
	journal      string
	appUser      string
	jobLogMax    int64
	adminGroups  []string
	version      bool
	genMan       string
}

// newCommand returns xpcd's command; running it sets code, the exit
// status.
func newCommand(o *options, stdout, stderr io.Writer, code *int) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "xpcd --system | --user [flags]",
		Short: "goxpc's bootstrap server and service manager",
		Long:  longHelp,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected argument %q", args[0])
			}
			return nil
		},
		SilenceErrors:         true,
		SilenceUsage:          true,
		DisableFlagsInUseLine: true,
		CompletionOptions:     cobra.CompletionOptions{DisableDefaultCmd: true},
		RunE: func(cmd *cobra.Command, _ []string) error {
			*code = o.run(cmd, stdout, stderr)
			return nil
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(oneDash)
	f := cmd.Flags()
	f.SortFlags = false
	f.BoolVar(&o.system, "system", false, "serve the system instance (as root): the system domain and every user's")
	f.BoolVar(&o.user, "user", false, "serve the current user's domain only")
	f.StringVar(&o.root, "root", "", "put the whole instance under `DIR` (as XPCD_ROOT does)")
	f.StringVar(&o.polkitBus, "polkit-bus", "", "ask polkit on `BUS` to approve the daemons users register: system, none, or a unix: address (default system for --system, none for --user and under --root or XPCD_ROOT)")
	f.StringVar(&o.loginBus, "login-bus", "", "follow systemd-logind on `BUS` to make a user's domain when they log in: system, none, or a unix: address (default system for --system, none for --user and under --root or XPCD_ROOT)")
	f.IntVar(&o.maxConns, "max-connections-per-user", xpcd.DefaultMaxConnectionsPerUser,
		"at most `N` (at least 1) bootstrap connections open at once per user; root has no cap")
	f.StringVar(&o.journal, "journal-socket", xpcd.DefaultJournalSocket, "send services' lines to the journal's native `SOCKET`, if it exists; - for none")
	f.Int64Var(&o.jobLogMax, "job-log-max-bytes", xpcd.DefaultJobLogMaxBytes, "rotate each job's log at `N` bytes (at least 4096)")
	f.StringSliceVar(&o.adminGroups, "admin-groups", xpcd.DefaultAdminGroups(),
		"`GROUPS` (comma-separated) whose members may approve the daemons users register; root always may")
	f.StringVar(&o.appUser, "app-service-user", xpcd.DefaultAppServiceUser, "run application bundles' System XPC services as `USER` (not root)")
	f.StringVar(&o.level, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	f.StringVar(&o.format, "log-format", "text", "log `FORMAT`: text or json")
	f.BoolVar(&o.version, "version", false, "print the version and exit")
	f.StringVar(&o.genMan, "gen-man", "", "write the manual page xpcd.8 into `DIR` and exit")
	_ = f.MarkHidden("gen-man")
	return cmd
}

// oneDash says, of a long flag written with one dash (as xpcd took them
// before its flags had one spelling), how to write it: pflag reads -user
// as the shorthands u, s, e and r ("unknown shorthand flag: 'u' in -user").
func oneDash(cmd *cobra.Command, err error) error {
	_, word, ok := strings.Cut(err.Error(), " in -")
	word, _, _ = strings.Cut(word, "=")
	if ok && cmd.Flags().Lookup(word) != nil {
		return fmt.Errorf("%w; long flags take two dashes: --%s", err, word)
	}
	return err
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	code := exitOK
	cmd := newCommand(&o, stdout, stderr, &code)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		// Every error of Execute is one of the command line's.
		fmt.Fprintf(stderr, "xpcd: %v\n", err)
		fmt.Fprintln(stderr, "Run 'xpcd --help' for usage.")
		return exitUsage
	}
	return code
}

// run runs xpcd as the flags say and returns its exit status.
func (o *options) run(cmd *cobra.Command, stdout, stderr io.Writer) int {
	switch {
	case o.version:
		fmt.Fprintln(stdout, buildinfo.Line("xpcd"))
		return exitOK
	case o.genMan != "":
		if err := genMan(cmd, o.genMan); err != nil {
			fmt.Fprintf(stderr, "xpcd: --gen-man: %v\n", err)
			return exitFail
		}
		return exitOK
	case cmd.Flags().NFlag() == 0:
		cmd.SetOut(stderr)
		_ = cmd.Usage()
		return exitUsage
	}
	log, err := o.check(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "xpcd: %v\n", err)
		fmt.Fprintln(stderr, "Run 'xpcd --help' for usage.")
		return exitUsage
	}
	return o.serve(log)
}

// check validates the flags and returns the logger they ask for.
func (o *options) check(stderr io.Writer) (*slog.Logger, error) {
	switch {
	case o.system && o.user:
		return nil, errors.New("--system and --user: give one of them, not both")
	case !o.system && !o.user:
		return nil, errors.New("give --system (the system instance, as root) or --user (yours)")
	case o.maxConns < 1:
		return nil, fmt.Errorf("--max-connections-per-user %d: want at least 1", o.maxConns)
	case o.jobLogMax < 4096:
		return nil, fmt.Errorf("--job-log-max-bytes %d: want at least 4096", o.jobLogMax)
	}
	if err := checkBus("polkit-bus", o.polkitBus); err != nil {
		return nil, err
	}
	if err := checkBus("login-bus", o.loginBus); err != nil {
		return nil, err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(o.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch o.format {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", o.format)
}
