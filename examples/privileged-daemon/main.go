// Command privileged-daemon is a system daemon for the name
// org.goxpc.example.privileged: it runs as root, started on demand by the
// system xpcd (see org.goxpc.example.privileged.plist beside it, for
// /etc/xpc/LaunchDaemons), and any user may call it.
//
// It is the shape of a privileged helper: it acts for unprivileged callers
// and must know who is asking. It never believes what a request says about
// its sender; it asks the kernel. Each client's connection carries the
// identity the kernel recorded when the client made its socket (SO_PEERCRED,
// and a pidfd that cannot be confused with a later process of the same pid),
// and inside a method typed.PeerFromContext returns it.
//
// Its contract is the Go interface api.Privileged (package api beside it):
//
//	WhoAmI    the caller (uid, gid, pid, exe) as the kernel attests it, and
//	          the daemon's euid and pid
//	Shutdown  the daemon replies and exits, if the caller is root;
//	          otherwise an *api.DeniedError (domain api.Domain, code
//	          api.CodeDenied), which the client restores with errors.As
//
// The server that dispatches requests to the methods, and the client the
// program in client/ calls them through, are generated from the interface by
// xpcgen (api/privileged_xpc.go; docs/TYPED.md). A request for a method the
// daemon does not have gets typed.ErrUnimplemented.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/examples/privileged-daemon/api"
	"github.com/goxpc/xpc/typed"
)

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
	l, err := svc.Listen(ctx, api.Name)
	if err != nil {
		return err
	}
	d := &daemon{log: log, shutdown: make(chan struct{})}
	h := stopAfterReply{Server: api.NewPrivilegedServer(d), d: d}
	l.SetHandler(func(peer *xpc.Connection) {
		who := peer.Peer()
		if who == nil {
			// Every client of a named service has a kernel identity;
			// without one, refuse to serve.
			peer.Cancel()
			return
		}
		log.Info("client connected", "peer", who.String())
		peer.SetHandler(h)
		peer.Activate()
	})
	l.Activate()
	log.Info("privileged-daemon ready", "pid", os.Getpid(), "euid", os.Geteuid(), "name", api.Name)
	select {
	case <-ctx.Done():
	case <-svc.Terminating():
		log.Info("xpcd asked us to exit")
	case <-d.shutdown:
		log.Info("shutting down at root's request")
	}
	return nil
}

// errNoPeer is returned to a call that arrived without a kernel identity,
// which the listener's handler never lets happen.
var errNoPeer = errors.New("privileged-daemon: the caller has no kernel identity")

// daemon implements api.Privileged.
type daemon struct {
	log *slog.Logger
	// stopping is set by a Shutdown that succeeded; stopAfterReply then
	// closes shutdown once the reply is sent.
	stopping atomic.Bool
	once     sync.Once
	shutdown chan struct{}
}

var _ api.Privileged = (*daemon)(nil)

// WhoAmI returns the caller's identity as the kernel gave it.
func (d *daemon) WhoAmI(ctx context.Context) (api.Identity, error) {
	who := typed.PeerFromContext(ctx)
	if who == nil {
		return api.Identity{}, errNoPeer
	}
	return api.Identity{
		UID: int64(who.UID), GID: int64(who.GID), PID: int64(who.PID), Exe: who.Exe,
		DaemonEUID: int64(os.Geteuid()), DaemonPID: int64(os.Getpid()),
	}, nil
}

// Shutdown lets root stop the daemon.
func (d *daemon) Shutdown(ctx context.Context) (api.Status, error) {
	who := typed.PeerFromContext(ctx)
	if who == nil {
		return api.Status{}, errNoPeer
	}
	if who.UID != 0 {
		d.log.Warn("shutdown refused", "peer", who.String())
		return api.Status{}, &api.DeniedError{Op: "shutdown", UID: int64(who.UID)}
	}
	d.stopping.Store(true)
	return api.Status{Status: "shutting down"}, nil
}

// stopAfterReply serves the generated server and, once a successful
// Shutdown's reply has been sent, tells run to return.
type stopAfterReply struct {
	*typed.Server[api.Privileged]
	d *daemon
}

// HandleMessage dispatches m, then stops the daemon if m was root's
// Shutdown.
func (h stopAfterReply) HandleMessage(ctx context.Context, m *xpc.Message) {
	h.Server.HandleMessage(ctx, m)
	if h.d.stopping.Load() {
		h.d.once.Do(func() { close(h.d.shutdown) })
	}
}
