// Command echo-agent is a per-user agent for the name org.goxpc.example.echo,
// started by xpcd on demand (see org.goxpc.example.echo.plist beside it).
//
// It answers every message with the message's own entries plus "pid" (its
// process id) and "count" (messages handled since it started). A message
// holding "sleep_ms": N keeps its transaction open N ms before the reply; one
// holding "crash": true makes the agent exit with status 3 without replying.
// Its plist sets an idle-exit timeout of 5 s.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
)

// Name is the service name the agent listens for.
const Name = "org.goxpc.example.echo"

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("echo-agent", "err", err)
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
	var count atomic.Int64
	l.SetHandler(func(peer *xpc.Connection) {
		log.Info("client connected", "peer", peer.Peer().String())
		peer.SetHandler(xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
			handle(ctx, m, count.Add(1))
		}))
		peer.Activate()
	})
	l.Activate()
	log.Info("echo-agent ready", "pid", os.Getpid(), "name", Name)
	select {
	case <-ctx.Done():
	case <-svc.Terminating():
		log.Info("xpcd asked us to exit")
	}
	return nil
}

func handle(ctx context.Context, m *xpc.Message, n int64) {
	if crash, _ := m.Body.Bool("crash"); crash {
		os.Exit(3)
	}
	reply := xpc.NewDictionary(m.Body.Len() + 2)
	for k, v := range m.Body.All() {
		reply.Set(k, v)
	}
	reply.Set("pid", xpc.Int64(os.Getpid()))
	reply.Set("count", xpc.Int64(n))
	if ms, err := m.Body.Int64("sleep_ms"); err == nil && ms > 0 && m.WantsReply() {
		// Reply later: the transaction stays open meanwhile, so xpcd
		// will not stop the agent for idleness.
		m.Defer()
		go func() {
			time.Sleep(time.Duration(ms) * time.Millisecond)
			m.Reply(context.Background(), reply)
		}()
		return
	}
	if m.WantsReply() {
		m.Reply(ctx, reply)
	}
}
