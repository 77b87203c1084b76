// Command app is the main executable of the example application bundle
// org.goxpc.example.app (see build.sh beside it). It looks up the XPC
// service its bundle carries, org.goxpc.example.app.helper, sends it one
// request and prints the reply.
//
// Usage:
//
//	app [WORDS...]
//
// The service answers with the words upper-cased and its process id. Only
// a process started from the bundle sees the service by name: xpcd's pid
// domain gives each bundled application its own services; any other
// process is refused. Exit status 2 means the service could not be reached.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/goxpc/xpc"
)

// helper is the service's name: its CFBundleIdentifier.
const helper = "org.goxpc.example.app.helper"

func main() {
	text := strings.Join(os.Args[1:], " ")
	if text == "" {
		text = "hello from the app"
	}
	os.Exit(run(text))
}

func run(text string) int {
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
	fmt.Printf("%s (from %s, pid %d)\n", upper, helper, pid)
	return 0
}
