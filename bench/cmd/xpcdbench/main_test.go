package main

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/goxpc/xpc/launchd"
)

// The job plists xpcdbench writes load as intended, with no ignored keys.
func TestJobPlist(t *testing.T) {
	for _, procs := range []int{0, 1} {
		l := &lab{tmp: t.TempDir(), svcBin: "/opt/bench dir/<service>", procs: procs}
		root, err := l.newRoot("r")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.writeJob(root, "bench.job.0001", "bench.job.0001"); err != nil {
			t.Fatal(err)
		}
		j, err := launchd.Load(filepath.Join(root, "LaunchAgents", "bench.job.0001.plist"))
		if err != nil {
			t.Fatal(err)
		}
		if len(j.Warnings) > 0 {
			t.Errorf("warnings: %v", j.Warnings)
		}
		if j.Label != "bench.job.0001" || !slices.Equal(j.ProgramArguments, []string{l.svcBin, "bench.job.0001"}) {
			t.Errorf("label %q, arguments %q", j.Label, j.ProgramArguments)
		}
		if _, ok := j.MachServices["bench.job.0001"]; !ok || len(j.MachServices) != 1 {
			t.Errorf("MachServices %v", j.MachServices)
		}
		if j.ThrottleInterval != 0 || j.StartsAtLoad() {
			t.Errorf("ThrottleInterval %v, starts at load %v", j.ThrottleInterval, j.StartsAtLoad())
		}
		want := map[string]string(nil)
		if procs > 0 {
			want = map[string]string{"GOMAXPROCS": "1"}
		}
		if len(j.EnvironmentVariables) != len(want) || j.EnvironmentVariables["GOMAXPROCS"] != want["GOMAXPROCS"] {
			t.Errorf("procs %d: EnvironmentVariables %v", procs, j.EnvironmentVariables)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d dist
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {0.0001, 1}, {90, 90}} {
		if got := d.pct(c.q); got != c.want {
			t.Errorf("pct(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if d[0] != 100 {
		t.Error("pct sorted its receiver")
	}
	if (dist{}).pct(50) != 0 {
		t.Error("pct of nothing")
	}
}

func TestModulePath(t *testing.T) {
	if got := modulePath([]byte("// x\nmodule github.com/goxpc/xpc/bench\n\ngo 1.26.0\n")); got != "github.com/goxpc/xpc/bench" {
		t.Errorf("modulePath = %q", got)
	}
}

// The idle measurement's plists load as intended: a calendar entry three
// days on at noon, a job started at load, one on demand.
func TestIdlePlists(t *testing.T) {
	l := &lab{tmp: t.TempDir(), svcBin: "/opt/bench/service"}
	root, err := l.newRoot("idle")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.Local) // a Thursday
	if err := l.writeIdleJobs(root, now); err != nil {
		t.Fatal(err)
	}
	load := func(label string) *launchd.Job {
		t.Helper()
		j, err := launchd.Load(filepath.Join(root, "LaunchAgents", label+".plist"))
		if err != nil {
			t.Fatal(err)
		}
		if len(j.Warnings) > 0 {
			t.Errorf("%s: warnings %v", label, j.Warnings)
		}
		return j
	}
	cal := load("bench.idle.calendar")
	if len(cal.StartCalendarInterval) != 1 || cal.StartsAtLoad() {
		t.Fatalf("calendar job: %v, starts at load %v", cal.StartCalendarInterval, cal.StartsAtLoad())
	}
	if next := cal.StartCalendarInterval[0].Next(now); !next.Equal(time.Date(2026, 12, 6, 12, 0, 0, 0, time.Local)) {
		t.Errorf("calendar job next at %v, want Sunday noon", next)
	}
	if !load("bench.idle.running").StartsAtLoad() || load("bench.idle.demand").StartsAtLoad() {
		t.Error("the running job does not start at load, or the on-demand one does")
	}
}
