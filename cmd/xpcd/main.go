// Command xpcd is goxpc's bootstrap server and service manager, launchd's
// job for XPC on Linux: it owns service names, launches services when a
// client looks one up, hands each client's connection to its service and
// supervises the service (docs/XPCD.md).
//
// Usage:
//
//	xpcd [--user] [--root DIR] [--max-connections-per-user N]
//	     [--journal-socket SOCKET] [--job-log-max-bytes N]
//	     [--log-level LEVEL] [--log-format text|json]
//	xpcd --version
//
// As root, xpcd serves the system domain (jobs in /etc/xpc/LaunchDaemons,
// socket /run/xpc/bootstrap.sock); with --user, one user's domain (jobs in
// $XDG_CONFIG_HOME/xpc/LaunchAgents, socket $XDG_RUNTIME_DIR/xpc/
// bootstrap.sock). --root DIR (or XPCD_ROOT=DIR) puts a whole private
// instance under DIR.
//
// --max-connections-per-user N (default 256) caps the connections to the
// bootstrap socket one user may have open at once; root has no cap. The
// next is turned away with reason too-many-connections (the client's
// error matches xpc.ErrDenied) until one of that user's closes. N must be
// at least 1.
//
// --job-log-max-bytes N (default 1 MiB) caps each job's log in the state
// directory, which is rotated once; --journal-socket SOCKET (default
// /run/systemd/journal/socket, used if it exists; "-" for none) is where
// each line of a service's output is also sent (docs/XPCD.md, "Service
// logs").
//
// xpcd logs to standard error, services' output included, and tells
// systemd it is ready (sd_notify READY=1) when NOTIFY_SOCKET is set. On
// SIGTERM or SIGINT it shuts itself down and leaves the services running;
// the next xpcd adopts them.
//
// Exit status: 0 after a clean shutdown, 1 if xpcd could not start or did
// not shut down cleanly, 2 for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/buildinfo"
	"github.com/goxpc/xpc/internal/xpcd"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// shutdownTimeout bounds a graceful shutdown.
const shutdownTimeout = 30 * time.Second

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

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xpcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.Bool("user", false, "serve the current user's domain only")
	root := fs.String("root", "", "put the whole instance under `DIR` (as XPCD_ROOT does)")
	level := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	format := fs.String("log-format", "text", "log format: text or json")
	maxConns := fs.Int("max-connections-per-user", xpcd.DefaultMaxConnectionsPerUser,
		"at most `N` (at least 1) bootstrap connections open at once per user; root has no cap")
	journal := fs.String("journal-socket", xpcd.DefaultJournalSocket, "send services' lines to the journal's native `SOCKET`, if it exists; - for none")
	jobLogMax := fs.Int64("job-log-max-bytes", xpcd.DefaultJobLogMaxBytes, "rotate each job's log at `N` bytes (at least 4096)")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: xpcd [--user] [--root DIR] [--max-connections-per-user N] [--journal-socket SOCKET] [--job-log-max-bytes N] [--log-level LEVEL] [--log-format text|json] [--version]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *version {
		fmt.Fprintln(stdout, buildinfo.Line("xpcd"))
		return exitOK
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "xpcd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if *maxConns < 1 {
		fmt.Fprintf(stderr, "xpcd: --max-connections-per-user %d: want at least 1\n", *maxConns)
		return exitUsage
	}
	if *jobLogMax < 4096 {
		fmt.Fprintf(stderr, "xpcd: --job-log-max-bytes %d: want at least 4096\n", *jobLogMax)
		return exitUsage
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "xpcd: --log-level %q: want debug, info, warn or error\n", *level)
		return exitUsage
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch *format {
	case "text":
		h = slog.NewTextHandler(stderr, opts)
	case "json":
		h = slog.NewJSONHandler(stderr, opts)
	default:
		fmt.Fprintf(stderr, "xpcd: --log-format %q: want text or json\n", *format)
		return exitUsage
	}
	log := slog.New(h)

	paths := bootstrap.FromEnv(*user)
	if *root != "" {
		paths = bootstrap.ForRoot(*root, *user)
	}
	if !*user && paths.Root == "" && os.Geteuid() != 0 {
		log.Error("the system instance needs root; use --user (or --root DIR) for a private one")
		return exitFail
	}
	cfg := xpcd.Config{Paths: paths, User: *user, Logger: log, MaxConnectionsPerUser: *maxConns,
		JournalSocket: *journal, JobLogMaxBytes: *jobLogMax}
	if *user && paths.Root == "" {
		// Lookups the user's domain cannot answer go on to system.
		cfg.SystemSocket = bootstrap.System().Socket
	}
	d, err := xpcd.New(cfg)
	if err != nil {
		log.Error("bad configuration", "err", err)
		return exitFail
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	err = d.Start(ctx)
	cancel()
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	if err := sdNotify("READY=1\nSTATUS=serving " + paths.Socket); err != nil {
		log.Warn("sd_notify", "err", err)
	}

	sig := <-sigs
	log.Info("shutting down; services keep running", "signal", sig.String())
	sdNotify("STOPPING=1")
	ctx, cancel = context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		log.Error("shutdown", "err", err)
		return exitFail
	}
	return exitOK
}

// sdNotify sends state to systemd's notification socket, if NOTIFY_SOCKET
// names one: a single datagram to that path, or to the abstract socket
// named after the '@' (Go's net package maps a leading '@' to the
// abstract namespace's NUL).
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
		return fmt.Errorf("NOTIFY_SOCKET %q: not a path or abstract socket", path)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
