// Command service is the small xpcd service that xpcdbench launches. It is
// built by xpcdbench itself (go build ./cmd/xpcdbench/service) and is not
// meant to be run by hand.
//
// Usage (in a job's ProgramArguments):
//
//	service NAME
//
// It checks in with xpcd, listens for NAME and answers every message with
// the message's own entries plus "pid", "main_ns" (the wall-clock time
// main started, in Unix nanoseconds) and "ready_ns" (when its listener was
// checked in and active). A message holding "exit": true makes it exit
// with status 0 at once, without replying.
//
// With XPCDBENCH_START_ONLY set in its environment it does nothing but
// print the time main started (Unix nanoseconds) and exit: xpcdbench times
// that to learn what starting this binary costs on its own.
//
// It asks the kernel to kill it when its parent (xpcd) dies, so that a
// benchmark that goes wrong leaves nothing behind.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
)

// startOnlyEnv makes the binary exit as soon as main starts.
const startOnlyEnv = "XPCDBENCH_START_ONLY"

func main() {
	mainNS := time.Now().UnixNano()
	if os.Getenv(startOnlyEnv) != "" {
		fmt.Println(mainNS)
		os.Exit(0)
	}
	// Die with xpcd. If it is already gone we were reparented: leave.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		fmt.Fprintln(os.Stderr, "service: prctl(PR_SET_PDEATHSIG):", errno)
	}
	if os.Getppid() == 1 {
		os.Exit(1)
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: service NAME")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1], mainNS); err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, name string, mainNS int64) error {
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		return err
	}
	defer svc.Close()
	l, err := svc.Listen(ctx, name)
	if err != nil {
		return err
	}
	pid := int64(os.Getpid())
	var readyNS int64
	l.SetHandler(func(peer *xpc.Connection) {
		peer.SetHandler(xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
			if exit, _ := m.Body.Bool("exit"); exit {
				os.Exit(0)
			}
			if !m.WantsReply() {
				return
			}
			reply := xpc.NewDictionary(m.Body.Len() + 3)
			for k, v := range m.Body.All() {
				reply.Set(k, v)
			}
			reply.Set("pid", xpc.Int64(pid))
			reply.Set("main_ns", xpc.Int64(mainNS))
			reply.Set("ready_ns", xpc.Int64(readyNS))
			m.Reply(ctx, reply)
		}))
		peer.Activate()
	})
	// Set before Activate: no handler runs before it, and none writes it.
	readyNS = time.Now().UnixNano()
	l.Activate()
	select {
	case <-ctx.Done():
	case <-svc.Terminating():
	}
	return nil
}
