// Command helper is the XPC service org.goxpc.example.app.helper of the
// example application bundle (see build.sh beside it): xpcd starts it on
// demand when the bundle's application looks the name up, and stops it
// when it has been idle for its IdleExitTimeout.
//
// It answers a request {"text": S} with {"text": upper-case S, "pid": its
// process id}.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/goxpc/xpc"
)

// Name is the service's name: its CFBundleIdentifier.
const Name = "org.goxpc.example.app.helper"

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		log.Error("helper", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		return err
	}
	defer svc.Close()
	l, err := svc.Listen(ctx, Name)
	if err != nil {
		return err
	}
	l.SetHandler(func(peer *xpc.Connection) {
		peer.SetHandler(xpc.HandlerFunc(handle))
		peer.Activate()
	})
	l.Activate()
	select {
	case <-ctx.Done():
	case <-svc.Terminating():
	}
	return nil
}

func handle(ctx context.Context, m *xpc.Message) {
	if !m.WantsReply() {
		return
	}
	text, _ := m.Body.String("text")
	m.Reply(ctx, xpc.Dict("text", strings.ToUpper(text), "pid", int64(os.Getpid())))
}
