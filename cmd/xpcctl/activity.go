package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// The activity commands: list, print (with why it has not run yet) and
// run, on the activities xpcd schedules (docs/XPCD.md, "Activities").

var activitySpecs = []adminSpec{
	{op: bootstrap.OpActivityList, args: "[DOMAIN]", summary: "list the activities xpcd schedules",
		help:    "Lists every activity of DOMAIN (system, user/UID), or of every domain you may read: state, last run, when it is next eligible, DOMAIN/LABEL/ID.",
		maxArgs: 1, build: domainReq(bootstrap.OpActivityList), render: renderActivities, fetch: activityPages},
	{op: bootstrap.OpActivityPrint, args: "[DOMAIN/]LABEL/ID", summary: "print an activity: criteria, state, last run, and why it has not run yet",
		help: "Prints an activity's criteria, state, last run and next eligible time and, while it waits, each criterion not met now " +
			"and why (unmet). Without DOMAIN, your own user domain.",
		minArgs: 1, maxArgs: 1, build: activityReq(bootstrap.OpActivityPrint), render: renderDict},
	{op: bootstrap.OpActivityRun, args: "[DOMAIN/]LABEL/ID", summary: "run an activity now, whatever its schedule and criteria",
		help:    "For testing: runs the activity now, launching its job if it does not run. Needs the rights kickstart needs.",
		minArgs: 1, maxArgs: 1, build: activityReq(bootstrap.OpActivityRun), render: renderStatus},
}

// activityCommands are the commands "activity list", "activity print" and
// "activity run".
func activityCommands() []*command {
	cmds := make([]*command, 0, len(activitySpecs))
	for i := range activitySpecs {
		spec := &activitySpecs[i]
		cmds = append(cmds, spec.command("activity "+strings.TrimPrefix(spec.op, "activity-"), spec.help))
	}
	return cmds
}

// activityReq builds a request naming [DOMAIN/]LABEL/ID: "target"
// DOMAIN/LABEL, or "label" alone for the caller's own domain, and
// "activity" ID.
func activityReq(op string) func([]string, adminFlags) (*xpc.Dictionary, error) {
	return func(pos []string, _ adminFlags) (*xpc.Dictionary, error) {
		dom, label, id, err := parseActivityTarget(pos[0])
		if err != nil {
			return nil, err
		}
		req := xpc.Dict(bootstrap.KeyOp, op, bootstrap.KeyActivityID, id)
		if dom != "" {
			req.Set(bootstrap.KeyTarget, xpc.String(dom+"/"+label))
		} else {
			req.Set(bootstrap.KeyLabel, xpc.String(label))
		}
		return req, nil
	}
}

// activityPages asks for an activity list page by page (bootstrap.KeyMore,
// KeySkip) and returns it whole.
func activityPages(ctx context.Context, inst instance, req *xpc.Dictionary) (*xpc.Dictionary, error) {
	var all xpc.Array
	for {
		reply, err := adminRequest(ctx, inst, req)
		if err != nil {
			return nil, err
		}
		acts, _ := reply.Array(bootstrap.KeyActivities)
		all = append(all, acts...)
		if more, _ := reply.Bool(bootstrap.KeyMore); !more || len(acts) == 0 {
			return xpc.Dict(bootstrap.KeyActivities, all), nil
		}
		req.Set(bootstrap.KeySkip, xpc.Int64(len(all)))
	}
}

// parseActivityTarget splits [DOMAIN/]LABEL/ID; DOMAIN is system,
// user/UID or gui/UID (the same domain, as everywhere else), and ID is
// everything after the label.
func parseActivityTarget(s string) (dom, label, id string, err error) {
	rest := s
	switch {
	case strings.HasPrefix(rest, "system/"):
		dom, rest = "system", strings.TrimPrefix(rest, "system/")
	case strings.HasPrefix(rest, "user/"), strings.HasPrefix(rest, "gui/"):
		kind, after, _ := strings.Cut(rest, "/")
		uid, tail, ok := strings.Cut(after, "/")
		if !ok {
			return "", "", "", fmt.Errorf("%q: want [DOMAIN/]LABEL/ID", s)
		}
		dom, rest = kind+"/"+uid, tail
	}
	label, id, ok := strings.Cut(rest, "/")
	if !ok || label == "" || id == "" {
		return "", "", "", fmt.Errorf("%q: want [DOMAIN/]LABEL/ID", s)
	}
	return dom, label, id, nil
}

func renderActivities(w io.Writer, reply *xpc.Dictionary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tLAST RUN\tNEXT ELIGIBLE\tACTIVITY")
	acts, _ := reply.Array(bootstrap.KeyActivities)
	date := func(d *xpc.Dictionary, key string) string {
		t, err := d.Date(key)
		if err != nil {
			return "-"
		}
		return t.Local().Format(time.DateTime)
	}
	for _, o := range acts {
		a, ok := o.(*xpc.Dictionary)
		if !ok {
			continue
		}
		str := func(k string) string { s, _ := a.String(k); return s }
		state := str(bootstrap.KeyActivityState)
		switch w := str("waiting_for"); w {
		case "":
		case "due": // waiting for its due time
			state += " (not due)"
		default:
			state += " (" + w + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s/%s/%s\n", state, date(a, "last_run"), date(a, "next_eligible"),
			str(bootstrap.KeyDomain), str(bootstrap.KeyLabel), str(bootstrap.KeyActivityID))
	}
	tw.Flush()
}
