// Command client calls the privileged daemon (org.goxpc.example.privileged)
// through xpcd, with the client generated from its interface (package api),
// and prints the result as JSON on standard output.
//
// Usage:
//
//	client [-op whoami|shutdown]
//
// Run it as any user: whoami reports the caller's uid, gid, pid and exe as
// the kernel attested them to the daemon, and the daemon's own euid and pid
// ({"uid", "gid", "pid", "exe", "daemon_euid", "daemon_pid"}). shutdown
// works only for root ({"status": "shutting down"}). A refusal is printed as
// {"error": ..., "reason": ...} and the exit status is 1: the reason is
// "denied" for the daemon's *api.DeniedError (restored by errors.As), and
// "bad-request" for an op the client or the daemon does not know. Status 2
// means the daemon could not be reached.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/examples/privileged-daemon/api"
	"github.com/goxpc/xpc/typed"
)

func main() {
	op := flag.String("op", "whoami", "the request: whoami or shutdown")
	flag.Parse()
	os.Exit(run(*op))
}

func run(op string) int {
	c, err := xpc.NewServiceConnection(api.Name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := api.NewPrivilegedClient(c)
	var result any
	switch op {
	case "whoami":
		result, err = p.WhoAmI(ctx)
	case "shutdown":
		result, err = p.Shutdown(ctx)
	default:
		return refused(fmt.Sprintf("unknown op %q: want whoami or shutdown", op), "bad-request")
	}
	var denied *api.DeniedError
	switch {
	case errors.As(err, &denied):
		return refused(denied.Error(), "denied")
	case errors.Is(err, typed.ErrUnimplemented):
		return refused(err.Error(), "bad-request")
	case err != nil:
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	return emit(result, 0)
}

// refused prints a refusal and returns exit status 1.
func refused(msg, reason string) int {
	return emit(map[string]string{"error": msg, "reason": reason}, 1)
}

// emit writes v as one line of JSON, its keys those of its xpc tags, and
// returns code; or 2 if v does not encode.
func emit(v any, code int) int {
	obj, err := xpc.ValueOf(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	out, err := xpc.ToPlainJSON(obj)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	fmt.Printf("%s\n", out)
	return code
}
