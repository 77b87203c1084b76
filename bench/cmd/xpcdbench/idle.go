package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// The idle measurement: how often an xpcd with nothing to do wakes up.
// An xpcd is started on a fresh root with three jobs (one with a
// StartCalendarInterval days away, one running service started at load,
// one on demand that does not run); once the service runs, it is left to
// settle, and then the context switches of all xpcd's threads are
// counted over the idle window. The same is done, at the same time, with
// an xpcd built from another revision (-base, main by default): the
// build before the change being measured.

// idleResult is one xpcd's count over the window.
type idleResult struct {
	label    string
	wakeups  int64 // voluntary + nonvoluntary context switches, all threads
	vol, inv int64
	threads  int // at the end
}

// writeIdleJobs writes the idle measurement's three jobs into root.
func (l *lab) writeIdleJobs(root string, now time.Time) error {
	wd := (int(now.Weekday()) + 3) % 7 // three days from today, at noon
	jobs := []struct{ label, extra string }{
		{"bench.idle.calendar", fmt.Sprintf("\t<key>StartCalendarInterval</key>\n\t<dict>\n"+
			"\t\t<key>Weekday</key>\n\t\t<integer>%d</integer>\n\t\t<key>Hour</key>\n\t\t<integer>12</integer>\n"+
			"\t\t<key>Minute</key>\n\t\t<integer>0</integer>\n\t</dict>\n", wd)},
		{"bench.idle.running", "\t<key>RunAtLoad</key>\n\t<true/>\n"},
		{"bench.idle.demand", ""},
	}
	for _, j := range jobs {
		if err := l.writeJobExtra(root, j.label, j.label, j.extra); err != nil {
			return err
		}
	}
	return nil
}

// measureIdle starts one xpcd per binary (label -> path) with the idle
// jobs, waits until each has its service running and has settled, and
// counts each one's wake-ups over the same window of idle.
func measureIdle(ctx context.Context, l *lab, bins []struct{ label, bin string }, settle, idle time.Duration) ([]idleResult, error) {
	type started struct {
		label string
		in    *instance
	}
	var ins []started
	defer func() {
		for _, s := range ins {
			l.stop(s.in)
		}
	}()
	for _, b := range bins {
		root, err := l.newRoot("idle-" + b.label)
		if err != nil {
			return nil, err
		}
		if err := l.writeIdleJobs(root, time.Now()); err != nil {
			return nil, err
		}
		in, _, err := l.startBin(ctx, b.bin, root)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.label, err)
		}
		ins = append(ins, started{b.label, in})
		target := l.target("bench.idle.running")
		if err := in.waitState(ctx, target, "running"); err != nil {
			return nil, fmt.Errorf("%s: %w", b.label, err)
		}
		if _, pid, err := in.state(ctx, target); err == nil {
			l.sawService(pid)
		}
		if st, _, err := in.state(ctx, l.target("bench.idle.calendar")); err != nil || st != "waiting" {
			return nil, fmt.Errorf("%s: the calendar job is %q (%v), want waiting", b.label, st, err)
		}
		// Nothing more is asked of it: the admin connection stays open
		// and quiet until the end.
	}
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	before := make([][2]int64, len(ins))
	for i, s := range ins {
		v, n, _ := ctxSwitches(s.in.cmd.Process.Pid)
		before[i] = [2]int64{v, n}
	}
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var out []idleResult
	for i, s := range ins {
		v, n, threads := ctxSwitches(s.in.cmd.Process.Pid)
		r := idleResult{label: s.label, vol: v - before[i][0], inv: n - before[i][1], threads: threads}
		r.wakeups = r.vol + r.inv
		out = append(out, r)
	}
	return out, nil
}

// runIdle builds the base xpcd (unless base is ""), measures both and
// returns the rows: idle_wakeups_per_min for this build and for the base.
func runIdle(ctx context.Context, l *lab, root, base string, settle, idle time.Duration) ([]Row, error) {
	bins := []struct{ label, bin string }{{"this", l.xpcdBin}}
	if base != "" {
		fmt.Fprintf(os.Stderr, "xpcdbench: building xpcd at %s for the idle baseline\n", base)
		bin, err := l.buildBase(ctx, root, base)
		if err != nil {
			return nil, err
		}
		bins = append(bins, struct{ label, bin string }{"base", bin})
	}
	fmt.Fprintf(os.Stderr, "xpcdbench: idle, %v after %v settling, %d xpcd at once\n", idle, settle, len(bins))
	res, err := measureIdle(ctx, l, bins, settle, idle)
	if err != nil {
		return nil, err
	}
	perMin := func(n int64) float64 { return float64(n) * float64(time.Minute) / float64(idle) }
	var rows []Row
	for _, r := range res {
		name, what := "idle_wakeups_per_min", "this build"
		if r.label == "base" {
			name, what = "base_idle_wakeups_per_min", "the build at "+base
		}
		rows = append(rows,
			Row{name, perMin(r.wakeups), "/min", "", nil, fmt.Sprintf("%s, idle with a calendar job days away, a running service and an on-demand job: "+
				"context switches of all xpcd's threads (voluntary+nonvoluntary), per minute, over %v", what, idle)},
			Row{strings.TrimSuffix(name, "_wakeups_per_min") + "_voluntary", float64(r.vol), "", "", nil, fmt.Sprintf("the same: voluntary switches over the %v", idle)},
			Row{strings.TrimSuffix(name, "_wakeups_per_min") + "_threads", float64(r.threads), "", "", nil, "xpcd's threads at the end"})
	}
	return rows, nil
}
