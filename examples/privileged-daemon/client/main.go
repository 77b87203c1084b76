// Command client calls the privileged daemon (org.goxpc.example.privileged)
// through xpcd and prints its reply as JSON on standard output.
//
// Usage:
//
//	client [-op whoami|shutdown]
//
// Run it as any user: whoami reports the caller's uid, gid and pid as the
// kernel attested them to the daemon, and the daemon's own euid. shutdown
// works only for root. A refusal is printed as {"error": ..., "reason": ...}
// and the exit status is 1; status 2 means the daemon could not be reached.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/goxpc/xpc"
)

// Name is the daemon's service name.
const Name = "org.goxpc.example.privileged"

func main() {
	op := flag.String("op", "whoami", "the request: whoami or shutdown")
	flag.Parse()
	os.Exit(run(*op))
}

func run(op string) int {
	c, err := xpc.NewServiceConnection(Name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := c.SendWithReply(ctx, xpc.Dict("op", op))
	var re *xpc.RemoteError
	if errors.As(err, &re) {
		reason, _ := re.Object.String("reason")
		out, _ := xpc.ToPlainJSON(xpc.Dict("error", re.Object.Description(), "reason", reason))
		fmt.Printf("%s\n", out)
		return 1
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	out, err := xpc.ToPlainJSON(reply)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	fmt.Printf("%s\n", out)
	return 0
}
