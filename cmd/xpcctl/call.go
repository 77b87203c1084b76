package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/goxpc/xpc"
)

var callCommand = &command{
	name:    "call",
	args:    "[--tagged] [--timeout D] [--domain DOMAIN] NAME [JSON]",
	summary: "send a message to a named service and print the reply",
	help: `Looks NAME up through xpcd (starting the service if it is not running),
sends a dictionary and prints the reply as JSON. The message is a plain JSON
object (integers become int64, other numbers double), or with --tagged the
tagged JSON form; without JSON the message is an empty dictionary. The reply
is printed as plain JSON, or tagged JSON with --tagged. --domain looks the
name up in that domain only (system, user/UID), as xpc.WithDomain does.

Errors exit with status 1 and one line naming the kind, the reason and why,
with the rule or requirement clause, the domain and the peer the refusal
names, as the other commands show them: "invalid: not-found: no service
named org.example.missing in user/1000 or system", "invalid:
requirement-failed: org.example.helper may be looked up only by a process
that meets "uid 0": pid 4242 uid 1000 ... fails "uid 0"". A service xpcd
cannot start fails at once, not at the timeout, with why: "interrupted:
launch-failed: service org.example.svc: job user/1000/org.example: launch
failed: spawn /opt/x: no such file or directory", "interrupted: exited: ...
exited with status 3, before checking in org.example.svc", "interrupted:
throttled: ...". With no xpcd running: "no xpcd is running: nothing listens
on PATH; start xpcd --user, or systemctl --user start xpcd". An error the
service itself replies is shown the same way, after "the service replied:".`,
	run: runCall,
}

func runCall(ctx context.Context, s stdio, c *command, args []string) int {
	fs := c.flagSet(s)
	tagged := fs.Bool("tagged", false, "read the message and print the reply as tagged JSON")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	domain := fs.String("domain", "", "look the name up in this domain only (system, user/UID)")
	pos, code, ok := c.parse(s, fs, args)
	if !ok {
		return code
	}
	if len(pos) < 1 || len(pos) > 2 {
		return c.usageError(s, "want NAME and at most one JSON argument")
	}
	name := pos[0]
	msg := xpc.NewDictionary(0)
	if len(pos) == 2 {
		obj, err := parseMessageJSON([]byte(pos[1]), *tagged)
		if err != nil {
			return c.fail(s, "message: %v", err)
		}
		d, isDict := obj.(*xpc.Dictionary)
		if !isDict {
			return c.fail(s, "message: a message must be a JSON object (a dictionary), not %v", obj.Type())
		}
		msg = d
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var opts []xpc.Option
	if *domain != "" {
		opts = append(opts, xpc.WithDomain(*domain))
	}
	conn, err := xpc.NewServiceConnection(name, opts...)
	if err != nil {
		return c.fail(s, "%v", trimPrefix(err))
	}
	conn.Activate()
	defer conn.Cancel()
	reply, err := conn.SendWithReply(ctx, msg)
	if err != nil {
		return c.fail(s, "%s", callError(err))
	}
	defer xpc.CloseAttachments(reply)
	var out []byte
	if *tagged {
		out, err = xpc.MarshalTaggedJSONIndent(reply, "", "  ")
	} else {
		out, err = xpc.ToPlainJSON(reply)
		if err == nil {
			out, err = indentJSON(out)
		}
	}
	if err != nil {
		return c.fail(s, "reply: %v", err)
	}
	if len(out) == 0 || out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	if _, err := s.out.Write(out); err != nil {
		return c.fail(s, "write: %v", err)
	}
	return exitOK
}

func parseMessageJSON(data []byte, tagged bool) (xpc.Object, error) {
	if tagged {
		return xpc.UnmarshalTaggedJSON(data)
	}
	return xpc.FromPlainJSON(data)
}

// callError renders the error of a call: a connection's failure with its
// reason, as refusalText shows every refusal, or the error the service
// replied.
func callError(err error) string {
	var ce *xpc.ConnError
	var re *xpc.RemoteError
	switch {
	case errors.As(err, &ce) && ce.Reason != nil:
		r := ce.Reason
		s := refusalText(ce.Kind.Error(), r.Code, r.Description, r.Rule, r.Domain, r.Peer)
		if ce.Err != nil {
			s += ": " + trimPrefix(ce.Err)
		}
		return s
	case errors.As(err, &re) && !errors.Is(err, xpc.ErrReplyFailed):
		return "the service replied: " + objectText(re.Object)
	}
	return trimPrefix(err)
}

// trimPrefix drops the library's "xpc: " prefix: xpcctl prints its own.
func trimPrefix(err error) string {
	var ce *xpc.ConnError
	if errors.As(err, &ce) {
		return strings.TrimPrefix(ce.Error(), "xpc: ")
	}
	return strings.TrimPrefix(err.Error(), "xpc: ")
}
