package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/goxpc/xpc"
)

// notify post, notify get, notify watch: named notifications through
// xpcd (docs/XPCD.md, "Notifications"), with the library's Notifier.

const notifyTalksTo = "\n\nTalks to the xpcd that XPCD_ROOT selects, or else the user's and then the system's."

func notifyCommands() []*command {
	return []*command{
		{
			name: "notify post", args: "[--state N] NAME",
			summary: "post a notification",
			help: `Posts the notification NAME: every registration of it is told. With
--state, sets its 64-bit state first. Names "user.uid.UID.…" are user UID's;
posting another name (the system's) takes root or a grant in a system job's
plist (Notifications → NAME → PostRequirement).` + notifyTalksTo,
			run: runNotifyPost,
		},
		{
			name: "notify get", args: "[--json] NAME",
			summary: "print a notification's state",
			help:    `Prints the 64-bit state of the notification NAME (0 if no post set one).` + notifyTalksTo,
			run:     runNotifyGet,
		},
		{
			name: "notify watch", args: "[--json] NAME...",
			summary: "print each post of notifications as it comes",
			help: `Registers for each NAME and prints one line per post, "TIME NAME STATE",
until interrupted. Posts that come faster than they are printed are told
once, with the latest state. With --json, each line is {"name": ..., "state": ...}.` + notifyTalksTo,
			run: runNotifyWatch,
		},
	}
}

func runNotifyPost(ctx context.Context, s stdio, c *command, args []string) int {
	fs := c.flagSet(s)
	state := fs.String("state", "", "set the notification's state to this unsigned 64-bit number first")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	pos, code, ok := c.parse(s, fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError(s, "want one NAME")
	}
	var n uint64
	if *state != "" {
		var err error
		if n, err = strconv.ParseUint(*state, 0, 64); err != nil {
			return c.usageError(s, fmt.Sprintf("--state %q: not an unsigned 64-bit number", *state))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	nt, err := xpc.NewNotifier(ctx)
	if err != nil {
		return c.fail(s, "%s", trimPrefix(err))
	}
	defer nt.Close()
	if *state != "" {
		err = nt.PostState(ctx, pos[0], n)
	} else {
		err = nt.Post(ctx, pos[0])
	}
	if err != nil {
		return c.fail(s, "%s", trimPrefix(err))
	}
	return exitOK
}

func runNotifyGet(ctx context.Context, s stdio, c *command, args []string) int {
	fs := c.flagSet(s)
	asJSON := fs.Bool("json", false, "print {\"name\": NAME, \"state\": STATE}")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	pos, code, ok := c.parse(s, fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError(s, "want one NAME")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	nt, err := xpc.NewNotifier(ctx)
	if err != nil {
		return c.fail(s, "%s", trimPrefix(err))
	}
	defer nt.Close()
	st, err := nt.State(ctx, pos[0])
	if err != nil {
		return c.fail(s, "%s", trimPrefix(err))
	}
	if *asJSON {
		fmt.Fprintln(s.out, notifyJSON(pos[0], st))
		return exitOK
	}
	fmt.Fprintln(s.out, st)
	return exitOK
}

// notifyJSON is one post as a line of JSON.
func notifyJSON(name string, state uint64) string {
	b, _ := json.Marshal(struct {
		Name  string `json:"name"`
		State uint64 `json:"state"`
	}{name, state})
	return string(b)
}

// notifyPost is one post watch prints.
type notifyPost struct {
	name  string
	state uint64
}

func runNotifyWatch(ctx context.Context, s stdio, c *command, args []string) int {
	fs := c.flagSet(s)
	asJSON := fs.Bool("json", false, "print each post as one JSON object per line")
	pos, code, ok := c.parse(s, fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return c.usageError(s, "want at least one NAME")
	}
	nt, err := xpc.NewNotifier(ctx)
	if err != nil {
		return c.fail(s, "%s", trimPrefix(err))
	}
	defer nt.Close()
	// Each registration's handler runs one call at a time and coalesces
	// what comes meanwhile, so that a slow terminal holds up nothing.
	posts := make(chan notifyPost)
	for _, name := range pos {
		_, err := nt.Register(ctx, name, func(name string, state uint64) {
			select {
			case posts <- notifyPost{name, state}:
			case <-ctx.Done():
			}
		})
		if err != nil {
			return c.fail(s, "%s", trimPrefix(err))
		}
	}
	fmt.Fprintf(s.err, "watching %d notification(s); interrupt to stop\n", len(pos))
	for {
		select {
		case <-ctx.Done():
			return exitOK
		case <-nt.Done():
			return c.fail(s, "xpcd closed the connection")
		case p := <-posts:
			if *asJSON {
				fmt.Fprintln(s.out, notifyJSON(p.name, p.state))
				continue
			}
			fmt.Fprintf(s.out, "%s %s %d\n", time.Now().Format("15:04:05.000"), p.name, p.state)
		}
	}
}
