// Command app is the main executable of the example application bundle
// org.goxpc.example.app (see build.sh beside it). It looks up the XPC
// service its bundle carries, org.goxpc.example.app.helper, sends it one
// request and prints the reply.
//
// Usage:
//
//	app [-wait D] [WORDS...]
//
// The service answers with the words upper-cased and its process id. With
// -wait, the app then stays for D (or until SIGTERM or SIGINT) before it
// exits, and its service instance with it: long enough to look at them
// with 'xpcctl print pid/PID' (docs/APPS.md, "Building one"). Only
// a process started from the bundle sees the service by name: xpcd's pid
// domain gives each bundled application its own services; any other
// process is refused. Exit status 2 means the service could not be reached.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
)

// helper is the service's name: its CFBundleIdentifier.
const helper = "org.goxpc.example.app.helper"

func main() {
	wait := flag.Duration("wait", 0, "after the reply, stay for `D` (or until SIGTERM) with the service running")
	flag.Parse()
	text := strings.Join(flag.Args(), " ")
	if text == "" {
		text = "hello from the app"
	}
	os.Exit(run(text, *wait))
}

func run(text string, wait time.Duration) int {
	c, err := xpc.NewServiceConnection(helper)
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		return 2
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := c.SendWithReply(ctx, xpc.Dict("text", text))
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		return 2
	}
	upper, _ := reply.String("text")
	pid, _ := reply.Int64("pid")
	// SIGTERM is caught before the reply is printed: whoever waits for
	// that line may stop the app at once.
	sig, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fmt.Printf("%s (from %s, pid %d)\n", upper, helper, pid)
	if wait > 0 {
		// The connection stays open: xpcd keeps the instance while its
		// application runs and uses it.
		select {
		case <-sig.Done():
		case <-time.After(wait):
		}
	}
	return 0
}
