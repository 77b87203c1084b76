package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/goxpc/xpc"
	"github.com/spf13/pflag"
)

// notify post, notify get, notify watch: named notifications through
// xpcd (docs/XPCD.md, "Notifications"), with the library's Notifier.

const notifyTalksTo = "\n\n" + instanceHelp

func notifyCommands() []*command {
	return []*command{
		{
			name: "notify post", args: "[--state N] [--timeout D] NAME",
			summary: "post a notification",
			help: `Posts the notification NAME: every registration of it is told. With
--state, sets its 64-bit state first. Names "user.uid.UID.…" are user UID's;
posting another name (the system's) takes root or a grant in a system job's
plist (Notifications → NAME → PostRequirement).` + notifyTalksTo,
			setup: setupNotifyPost,
		},
		{
			name: "notify get", args: "[--json] [--timeout D] NAME",
			summary: "print a notification's state",
			help:    `Prints the 64-bit state of the notification NAME (0 if no post set one).` + notifyTalksTo,
			setup:   setupNotifyGet,
		},
		{
			name: "notify watch", args: "[--json] NAME...",
			summary: "print each post of notifications as it comes",
			help: `Registers for each NAME and prints one line per post, "TIME NAME STATE",
until interrupted. Posts that come faster than they are printed are told
once, with the latest state. With --json, each line is
{"name": ..., "state": ...}. When xpcd restarts, watch reconnects by itself
and says so on stderr; each NAME is then printed once with its state in the
restarted xpcd, since a post made meanwhile cannot be known.` + notifyTalksTo,
			setup: setupNotifyWatch,
		},
	}
}

// withNotifier checks pos (one NAME, or with many at least one), connects
// to xpcd and calls fn with the names. A timeout of 0 means none.
func (c *command) withNotifier(ctx context.Context, s stdio, pos []string, many bool, timeout time.Duration,
	fn func(ctx context.Context, nt *xpc.Notifier, names []string) int) int {
	switch {
	case len(pos) == 0 && many:
		return c.usageError(s, "want at least one NAME")
	case len(pos) != 1 && !many:
		return c.usageError(s, "want one NAME")
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	nt, err := xpc.NewNotifier(ctx, s.xpcd.options()...)
	if err != nil {
		return c.failed(s, lastArg(pos), err)
	}
	defer nt.Close()
	return fn(ctx, nt, pos)
}

func setupNotifyPost(fs *pflag.FlagSet) runFunc {
	state := fs.String("state", "", "set the notification's state to this unsigned 64-bit `N` first")
	timeout := timeoutFlag(fs, time.Minute)
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		return c.withNotifier(ctx, s, pos, false, *timeout, func(ctx context.Context, nt *xpc.Notifier, names []string) int {
			var err error
			if *state == "" {
				err = nt.Post(ctx, names[0])
			} else if n, perr := strconv.ParseUint(*state, 0, 64); perr != nil {
				return c.usageError(s, fmt.Sprintf("--state %q: not an unsigned 64-bit number", *state))
			} else {
				err = nt.PostState(ctx, names[0], n)
			}
			if err != nil {
				return c.failed(s, names[0], err)
			}
			return exitOK
		})
	}
}

func setupNotifyGet(fs *pflag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "print {\"name\": NAME, \"state\": STATE}")
	timeout := timeoutFlag(fs, time.Minute)
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		return c.withNotifier(ctx, s, pos, false, *timeout, func(ctx context.Context, nt *xpc.Notifier, names []string) int {
			st, err := nt.State(ctx, names[0])
			if err != nil {
				return c.failed(s, names[0], err)
			}
			if *asJSON {
				fmt.Fprintln(s.out, notifyJSON(names[0], st))
			} else {
				fmt.Fprintln(s.out, st)
			}
			return exitOK
		})
	}
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

func setupNotifyWatch(fs *pflag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "print each post as one JSON object per line")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		return c.withNotifier(ctx, s, pos, true, 0, func(ctx context.Context, nt *xpc.Notifier, names []string) int {
			return c.watchNotifications(ctx, s, nt, names, *asJSON)
		})
	}
}

// watchNotifications registers for names and prints each post until ctx
// ends. When xpcd restarts, the Notifier reconnects by itself; watch says
// so on stderr, and names the registrations the restarted xpcd refused.
func (c *command) watchNotifications(ctx context.Context, s stdio, nt *xpc.Notifier, names []string, asJSON bool) int {
	// Each registration's handler runs one call at a time and coalesces
	// what comes meanwhile, so that a slow terminal holds up nothing.
	posts := make(chan notifyPost)
	reconnected := make(chan []*xpc.NotifyRegistration)
	nt.SetReconnectHandler(func(refused []*xpc.NotifyRegistration) {
		select {
		case reconnected <- refused:
		case <-ctx.Done():
		}
	})
	for _, name := range names {
		_, err := nt.Register(ctx, name, func(name string, state uint64) {
			select {
			case posts <- notifyPost{name, state}:
			case <-ctx.Done():
			}
		})
		if err != nil {
			return c.failed(s, name, err)
		}
	}
	fmt.Fprintf(s.err, "watching %d notification(s); interrupt to stop\n", len(names))
	live := len(names)
	for {
		select {
		case <-ctx.Done():
			return exitOK
		case refused := <-reconnected:
			for _, r := range refused {
				fmt.Fprintf(s.err, "%s: no longer watched: %s\n", r.Name(), errorText(r.Err()))
			}
			if live -= len(refused); live == 0 {
				return c.fail(s, "xpcd restarted and refused every notification")
			}
			fmt.Fprintf(s.err, "xpcd restarted: reconnected, watching %d notification(s)\n", live)
		case p := <-posts:
			if asJSON {
				fmt.Fprintln(s.out, notifyJSON(p.name, p.state))
				continue
			}
			fmt.Fprintf(s.out, "%s %s %d\n", time.Now().Format("15:04:05.000"), p.name, p.state)
		}
	}
}
