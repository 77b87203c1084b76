package main

import (
	"context"
	"errors"
	"time"

	"github.com/goxpc/xpc"
	"github.com/spf13/pflag"
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

Errors exit with status 1 and one line, as every command shows them:
"xpcctl call: NAME: REASON: DESCRIPTION", with the rule or requirement
clause, the domain and the peer the refusal names: "xpcctl call:
org.example.missing: not-found: no service named org.example.missing in
user/1000 or system", "xpcctl call: org.example.helper: requirement-failed:
org.example.helper may be looked up only by a process that meets "uid 0":
pid 4242 uid 1000 ... fails "uid 0"". A service xpcd cannot start fails at
once, not at the timeout, with why: "launch-failed: service org.example.svc:
job user/1000/org.example: launch failed: spawn /opt/x: no such file or
directory", "exited: ... exited with status 3, before checking in
org.example.svc", "throttled: ...". With no xpcd running: "no xpcd is
running: nothing listens on PATH; start xpcd --user, or systemctl --user
start xpcd". An error the service itself replies is shown the same way,
after "the service replied:".

` + instanceHelp,
	setup: setupCall,
}

func setupCall(fs *pflag.FlagSet) runFunc {
	tagged := fs.Bool("tagged", false, "read the message and print the reply as tagged JSON")
	timeout := timeoutFlag(fs, 30*time.Second)
	domain := fs.String("domain", "", "look the name up in this `DOMAIN` only (system, user/UID)")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		if len(pos) < 1 || len(pos) > 2 {
			return c.usageError(s, "want NAME and at most one JSON argument")
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return runCall(ctx, s, c, pos, *tagged, *domain)
	}
}

func runCall(ctx context.Context, s stdio, c *command, pos []string, tagged bool, domain string) int {
	name := pos[0]
	msg := xpc.NewDictionary(0)
	if len(pos) == 2 {
		obj, err := parseMessageJSON([]byte(pos[1]), tagged)
		if err != nil {
			return c.fail(s, "message: %v", err)
		}
		d, isDict := obj.(*xpc.Dictionary)
		if !isDict {
			return c.fail(s, "message: a message must be a JSON object (a dictionary), not %v", obj.Type())
		}
		msg = d
	}
	opts := s.xpcd.options()
	if domain != "" {
		opts = append(opts, xpc.WithDomain(domain))
	}
	conn, err := xpc.NewServiceConnection(name, opts...)
	if err != nil {
		return c.failed(s, name, err)
	}
	conn.Activate()
	defer conn.Cancel()
	reply, err := conn.SendWithReply(ctx, msg)
	if err != nil {
		var re *xpc.RemoteError
		if errors.As(err, &re) && !errors.Is(err, xpc.ErrReplyFailed) {
			return c.fail(s, "%s: the service replied: %s", name, objectText(re.Object))
		}
		return c.failed(s, name, err)
	}
	defer xpc.CloseAttachments(reply)
	var out []byte
	if tagged {
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
