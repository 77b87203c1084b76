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
	args:    "[--tagged] [--timeout D] NAME [JSON]",
	summary: "send a message to a named service and print the reply",
	help: `Looks NAME up through xpcd (starting the service if it is not running),
sends a dictionary and prints the reply as JSON. The message is a plain JSON
object (integers become int64, other numbers double), or with --tagged the
tagged JSON form; without JSON the message is an empty dictionary. The reply
is printed as plain JSON, or tagged JSON with --tagged.

Errors exit with status 1 and one line naming the kind and reason, such as
"invalid: not found: org.example.missing".`,
	run: runCall,
}

func runCall(ctx context.Context, s stdio, c *command, args []string) int {
	fs := c.flagSet(s)
	tagged := fs.Bool("tagged", false, "read the message and print the reply as tagged JSON")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
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
	conn, err := xpc.NewServiceConnection(name)
	if err != nil {
		return c.fail(s, "%v", trimPrefix(err))
	}
	conn.Activate()
	defer conn.Cancel()
	reply, err := conn.SendWithReply(ctx, msg)
	if err != nil {
		return c.fail(s, "%v", trimPrefix(err))
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

// trimPrefix drops the library's "xpc: " prefix: xpcctl prints its own.
func trimPrefix(err error) string {
	var ce *xpc.ConnError
	if errors.As(err, &ce) {
		return strings.TrimPrefix(ce.Error(), "xpc: ")
	}
	return strings.TrimPrefix(err.Error(), "xpc: ")
}
