package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/xpcd"
)

// shutdownTimeout bounds a graceful shutdown.
const shutdownTimeout = 30 * time.Second

// serve runs the instance the flags name until SIGTERM or SIGINT.
func (o *options) serve(log *slog.Logger) int {
	paths := bootstrap.FromEnv(o.user)
	if o.root != "" {
		paths = bootstrap.ForRoot(o.root, o.user)
	}
	if o.system && paths.Root == "" && os.Geteuid() != 0 {
		log.Error("the system instance (--system) needs root; use --user, or --root DIR for a private one")
		return exitFail
	}
	if err := closeInheritedOnExec(); err != nil {
		log.Error("descriptors xpcd inherited", "err", err)
		return exitFail
	}
	passed, err := passedSocket()
	if err != nil {
		log.Error("socket activation", "err", err)
		return exitFail
	}
	if passed != nil {
		// xpcd serves a duplicate.
		defer passed.Close()
	}
	cfg := xpcd.Config{Paths: paths, User: o.user, Logger: log, MaxConnectionsPerUser: o.maxConns,
		JournalSocket: o.journal, JobLogMaxBytes: o.jobLogMax, Listener: passed,
		AdminGroups: o.adminGroups, AppServiceUser: o.appUser}
	if o.user && paths.Root == "" {
		// Lookups the user's domain cannot answer go on to system.
		cfg.SystemSocket = bootstrap.System().Socket
	}
	cfg.PolkitBus = busFor(o.polkitBus, o.system && paths.Root == "")
	cfg.LoginBus = busFor(o.loginBus, o.system && paths.Root == "")
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
	if errors.Is(err, syscall.EADDRINUSE) {
		// A live socket at the path: the instance is already served.
		log.Error("cannot start: another xpcd serves "+paths.Socket+"; stop it first", "err", err)
		return exitFail
	}
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	notify(log, "READY=1\nSTATUS=serving "+paths.Socket)
	stopWatchdog := startWatchdog(d, log)

	sig := <-sigs
	log.Info("shutting down; services keep running", "signal", sig.String())
	stopWatchdog()
	notify(log, "STOPPING=1")
	ctx, cancel = context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		log.Error("shutdown", "err", err)
		return exitFail
	}
	return exitOK
}

// passedSocket returns the bootstrap socket systemd's socket activation
// passed (LISTEN_FDS, LISTEN_PID), or nil when it passed none. More than
// one is an error: xpcd has one socket. The variables are removed from
// xpcd's environment either way. xpcd checks the socket itself
// (xpcd.Config.Listener).
func passedSocket() (*os.File, error) {
	if n, ok := listenFDs(); ok && n > 1 {
		// activation.Files would make n files first (and panic on a
		// count too large to allocate).
		for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
			os.Unsetenv(k)
		}
		return nil, fmt.Errorf("%d sockets passed (LISTEN_FDS), want one: the bootstrap socket", n)
	}
	files := activation.Files(true)
	switch len(files) {
	case 0:
		return nil, nil
	case 1:
		return files[0], nil
	}
	for _, f := range files {
		f.Close()
	}
	return nil, fmt.Errorf("%d sockets passed (LISTEN_FDS), want one: the bootstrap socket", len(files))
}

// listenFDs returns LISTEN_FDS when LISTEN_PID names this process and
// LISTEN_FDS is a number.
func listenFDs() (int, bool) {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return 0, false
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	return n, err == nil
}

// closeInheritedOnExec marks every descriptor above standard error that
// xpcd inherited close-on-exec, so that none reaches a job: the jobs of a
// root xpcd run as other users, and whatever started xpcd (a root shell,
// a wrapper, a socket activation meant for another process) may have left
// descriptors open that are no user's business. xpcd's own descriptors
// are close-on-exec already; a job gets only its standard files and its
// check-in socket.
func closeInheritedOnExec() error {
	err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil || (err != unix.ENOSYS && err != unix.EINVAL) {
		return err
	}
	// Before Linux 5.11: one by one.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// notifyTimeout bounds one notification: a notification socket whose
// reader does not read (its queue full) must not hold xpcd, neither its
// start, nor its shutdown, which waits for the watchdog's goroutine.
const notifyTimeout = time.Second

// notify tells systemd state, when NOTIFY_SOCKET asks for it.
func notify(log *slog.Logger, state string) {
	if err := sdNotify(state); err != nil {
		log.Warn("sd_notify", "err", err)
	}
}

// sdNotify sends state as daemon.SdNotify does, within notifyTimeout.
func sdNotify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(notifyTimeout)); err != nil {
		return err
	}
	_, err = conn.Write([]byte(state))
	return err
}

// startWatchdog pings systemd's watchdog (WATCHDOG=1) at half the interval
// WATCHDOG_USEC asks for, each time after the supervisor loop has answered
// a probe (xpcd.Daemon.Alive) within that half: a stuck loop sends no ping,
// and systemd restarts xpcd. The function it returns stops the pings and
// waits for their goroutine to end. Without a watchdog it does nothing.
func startWatchdog(d *xpcd.Daemon, log *slog.Logger) (stop func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("watchdog", "err", err)
	}
	if err != nil || interval <= 0 {
		return func() {}
	}
	period := pingPeriod(interval)
	if period > interval/2 {
		log.Warn("watchdog: interval too short to keep, pinging as often as xpcd can", "interval", interval, "every", period)
	} else {
		log.Info("watchdog", "interval", interval)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { watchdog(ctx, d.Alive, period, log) })
	return func() {
		cancel()
		wg.Wait()
	}
}

// minPing is the shortest time between watchdog pings: a WATCHDOG_USEC of
// a few microseconds would otherwise turn the pings into a busy loop.
const minPing = 10 * time.Millisecond

// pingPeriod is how often to ping a watchdog of the given interval: half
// of it, and never more often than every minPing.
func pingPeriod(interval time.Duration) time.Duration {
	return max(interval/2, minPing)
}

// watchdog pings every period while alive (the supervisor loop's probe,
// xpcd.Daemon.Alive) answers within the period, until ctx ends.
func watchdog(ctx context.Context, alive func(context.Context) error, period time.Duration, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		probe, cancel := context.WithTimeout(ctx, period)
		err := alive(probe)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Error("watchdog: no ping", "err", err)
		} else {
			notify(log, "WATCHDOG=1")
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}
