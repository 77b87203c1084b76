// Command privileged-daemon is a system daemon for the name
// org.goxpc.example.privileged: it runs as root, started on demand by the
// system xpcd (see org.goxpc.example.privileged.plist beside it, for
// /etc/xpc/LaunchDaemons), and any user may call it.
//
// It is the shape of a privileged helper: it acts for unprivileged callers
// and must know who is asking. It never believes what a request says about
// its sender; it asks the kernel. Each client's connection carries the
// identity the kernel recorded when the client made its socket
// (Connection.Peer: SO_PEERCRED, and a pidfd that cannot be confused with
// a later process of the same pid).
//
// Requests:
//
//	{"op":"whoami"}    -> {"uid","gid","pid","exe"}: the caller, as the kernel
//	                      attests it; {"daemon_euid","daemon_pid"}: the daemon
//	{"op":"shutdown"}  -> {"status":"shutting down"}, and the daemon exits,
//	                      if the caller is root; otherwise an error whose
//	                      "reason" is "denied"
//
// Other requests get an error whose "reason" is "bad-request". The client
// beside it (client/) sends one request and prints the reply.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/goxpc/xpc"
)

// Name is the service name the daemon listens for.
const Name = "org.goxpc.example.privileged"

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("privileged-daemon", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger) error {
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		return err
	}
	defer svc.Close()
	l, err := svc.Listen(ctx, Name)
	if err != nil {
		return err
	}
	shutdown := make(chan struct{})
	var once sync.Once
	l.SetHandler(func(peer *xpc.Connection) {
		who := peer.Peer()
		if who == nil {
			// Every client of a named service has a kernel identity;
			// without one, refuse to serve.
			peer.Cancel()
			return
		}
		log.Info("client connected", "peer", who.String())
		peer.SetHandler(xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
			if handle(ctx, log, who, m) {
				once.Do(func() { close(shutdown) })
			}
		}))
		peer.Activate()
	})
	l.Activate()
	log.Info("privileged-daemon ready", "pid", os.Getpid(), "euid", os.Geteuid(), "name", Name)
	select {
	case <-ctx.Done():
	case <-svc.Terminating():
		log.Info("xpcd asked us to exit")
	case <-shutdown:
		log.Info("shutting down at root's request")
	}
	return nil
}

// handle answers one request from who; it reports whether the daemon
// should shut down.
func handle(ctx context.Context, log *slog.Logger, who *xpc.Peer, m *xpc.Message) (shutdown bool) {
	if !m.WantsReply() {
		return false
	}
	op, _ := m.Body.String("op")
	switch op {
	case "whoami":
		m.Reply(ctx, xpc.Dict(
			"uid", int64(who.UID), "gid", int64(who.GID), "pid", who.PID, "exe", who.Exe,
			"daemon_euid", os.Geteuid(), "daemon_pid", os.Getpid()))
	case "shutdown":
		if who.UID != 0 {
			log.Warn("shutdown refused", "peer", who.String())
			refuse(ctx, m, "denied", "shutdown: only root may stop %s (caller uid %d)", Name, who.UID)
			return false
		}
		m.Reply(ctx, xpc.Dict("status", "shutting down"))
		return true
	default:
		refuse(ctx, m, "bad-request", "unknown op %q: want whoami or shutdown", op)
	}
	return false
}

// refuse answers with an error object: a description and a reason.
func refuse(ctx context.Context, m *xpc.Message, reason, format string, args ...any) {
	e := xpc.NewErrorObject(fmt.Sprintf(format, args...))
	e.Set("reason", xpc.String(reason))
	m.ReplyError(ctx, e)
}
