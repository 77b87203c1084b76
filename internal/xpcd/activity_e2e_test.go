package xpcd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/criteria"
)

// End-to-end tests of activities: a private xpcd launching the test
// binary, re-executed as TestActivityService, a service written with the
// library's RegisterActivity.
//
// Environment of the service:
//
//	XPCD_ACT_SERVICE=1      be the service
//	XPCD_ACT_LOG=PATH       append a line per handler call: "STATE ID PID"
//	XPCD_ACT_IDS=a,b        check in (criteria nil) for these activities
//	XPCD_ACT_REGISTER=ID    register ID with criteria (Interval 1 h)
//	XPCD_ACT_MODE=continue  SetState(ActivityContinue) in the handler, and
//	                        ActivityDone 100 ms later from a goroutine
//	XPCD_LC_OWNER=PID       exit when the test process ends
func TestActivityService(t *testing.T) {
	if os.Getenv("XPCD_ACT_SERVICE") != "1" {
		t.Skip("not a test: the service the activity tests run")
	}
	os.Exit(activityServiceMain())
}

func activityServiceMain() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	ownerGone := watchOwner(os.Getenv("XPCD_LC_OWNER"))
	ctx := context.Background()
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "activity service: CheckIn:", err)
		return 20
	}
	logLine := func(s string) {
		f, err := os.OpenFile(os.Getenv("XPCD_ACT_LOG"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			fmt.Fprintln(f, s)
			f.Close()
		}
	}
	handler := func(a *xpc.Activity) {
		logLine(fmt.Sprintf("%s %s %d", a.State(), a.Identifier(), os.Getpid()))
		if a.State() == xpc.ActivityRun && os.Getenv("XPCD_ACT_MODE") == "continue" {
			if err := a.SetState(ctx, xpc.ActivityContinue); err != nil {
				logLine("error " + err.Error())
			}
			go func() {
				time.Sleep(100 * time.Millisecond)
				if err := a.SetState(ctx, xpc.ActivityDone); err != nil {
					logLine("error " + err.Error())
				}
			}()
		}
	}
	for _, id := range strings.Split(os.Getenv("XPCD_ACT_IDS"), ",") {
		if id == "" {
			continue
		}
		if err := svc.RegisterActivity(ctx, id, nil, handler); err != nil {
			logLine("error " + err.Error())
		}
	}
	if id := os.Getenv("XPCD_ACT_REGISTER"); id != "" {
		c := &xpc.ActivityCriteria{Interval: time.Hour, Priority: xpc.PriorityUtility, AllowBattery: true}
		if err := svc.RegisterActivity(ctx, id, c, handler); err != nil {
			logLine("error " + err.Error())
		}
	}
	select {
	case <-svc.Terminating():
	case <-sigs:
	case <-ownerGone:
		return 13
	}
	return 0
}

// actHarness is a harness whose xpcd reads criteria from a Fake that says
// the machine is on mains power.
func newActHarness(t *testing.T) (*harness, *criteria.Fake) {
	h := newHarness(t)
	f := criteria.NewFake()
	f.Set(criteria.OnBattery, false)
	h.cfg.Criteria = f
	return h, f
}

// actJob is a job run by TestActivityService declaring the activities
// decl (id -> criteria keys), with no MachServices and nothing else that
// would launch it.
func (h *harness) actJob(label string, decl map[string]any, env map[string]string) testJob {
	e := map[string]string{"XPCD_ACT_SERVICE": "1", "XPCD_LC_OWNER": strconv.Itoa(os.Getpid()),
		"XPCD_ACT_LOG": filepath.Join(h.dir, label+".log")}
	var ids []string
	for id := range decl {
		ids = append(ids, id)
	}
	e["XPCD_ACT_IDS"] = strings.Join(ids, ",")
	for k, v := range env {
		e[k] = v
	}
	x := map[string]any{
		"ProgramArguments": []any{h.exe, "-test.run=^TestActivityService$"},
		"LaunchEvents":     map[string]any{"com.apple.xpc.activity": decl},
	}
	return testJob{label: label, env: e, extra: x}
}

// actLog returns the service's log lines.
func (h *harness) actLog(label string) []string {
	b, _ := os.ReadFile(filepath.Join(h.dir, label+".log"))
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// actPrint is activity-print of label/id.
func (h *harness) actPrint(label, id string) *xpc.Dictionary {
	h.t.Helper()
	return h.mustAdmin(bootstrap.OpActivityPrint, bootstrap.KeyTarget, h.target(label), bootstrap.KeyActivityID, id)
}

var tickCriteria = map[string]any{"Interval": 1, "Priority": "Utility"}

// A job declaring a repeating activity is launched by xpcd, with no client
// ever connecting, and its handler runs, again and again, in one process.
func TestActivityLaunchesJob(t *testing.T) {
	h, _ := newActHarness(t)
	h.writePlist(h.actJob("act.tick", map[string]any{"tick": tickCriteria}, map[string]string{"XPCD_ACT_MODE": "continue"}))
	h.start()
	waitFor(t, "two runs", func() bool { return countPrefix(h.actLog("act.tick"), "run_tick_") >= 2 })
	lines := h.actLog("act.tick")
	if countPrefix(lines, "check-in_tick_") != 1 || countPrefix(lines, "error") != 0 {
		t.Fatalf("log: %v", lines)
	}
	d := h.print("act.tick")
	if strOf(d, bootstrap.KeyLaunchReason) != reasonActivity || intOf(d, bootstrap.KeyRuns) != 1 {
		t.Errorf("print: launch_reason %q, runs %d", strOf(d, bootstrap.KeyLaunchReason), intOf(d, bootstrap.KeyRuns))
	}
	if acts, _ := d.Array(bootstrap.KeyActivities); len(acts) != 1 {
		t.Errorf("print lists %d activities", len(acts))
	}
	p := h.actPrint("act.tick", "tick")
	if _, err := p.Date("last_run"); err != nil {
		t.Errorf("activity print without last_run: %v", p)
	}
	b := h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("act.tick"))
	if why := strOf(b, "why"); !strings.Contains(why, "launched to run an activity") || !strings.Contains(why, "tick: ") {
		t.Errorf("blame: %q", why)
	}
}

// Registrations and last runs survive xpcd being stopped with every
// process killed; the runs missed meanwhile coalesce into one.
func TestActivityPersistsAcrossRestart(t *testing.T) {
	h, _ := newActHarness(t)
	h.writePlist(h.actJob("act.keep", map[string]any{"slow": map[string]any{"Interval": 3, "Priority": "Utility"}},
		map[string]string{"XPCD_ACT_REGISTER": "reg"}))
	d := h.start()
	waitFor(t, "a run", func() bool { return countPrefix(h.actLog("act.keep"), "run_slow_") == 1 })
	before := h.mustAdmin(bootstrap.OpActivityList)
	h.close(d) // StopServicesOnClose: the service is stopped, SIGKILL at the latest
	var doc activitiesDoc
	b, err := os.ReadFile(filepath.Join(h.paths.StateDir, activitiesFile))
	if err != nil || json.Unmarshal(b, &doc) != nil || len(doc.Activities) != 2 {
		t.Fatalf("activities.json: %v\n%s", err, b)
	}
	var lastRun time.Time
	for _, r := range doc.Activities {
		if r.ID == "slow" {
			lastRun = r.LastRun
		}
	}
	if lastRun.IsZero() {
		t.Fatalf("no last run recorded: %s", b)
	}
	time.Sleep(7 * time.Second) // two runs missed
	h.start()
	after := h.mustAdmin(bootstrap.OpActivityList)
	acts, _ := after.Array(bootstrap.KeyActivities)
	if len(acts) != 2 {
		t.Fatalf("after restart: %d activities (before: %v)", len(acts), before)
	}
	p := h.actPrint("act.keep", "reg")
	if reg, _ := p.Bool("registered"); !reg {
		t.Errorf("registered activity lost: %v", p)
	}
	waitFor(t, "the coalesced run", func() bool { return countPrefix(h.actLog("act.keep"), "run_slow_") == 2 })
	time.Sleep(1500 * time.Millisecond)
	if n := countPrefix(h.actLog("act.keep"), "run_slow_"); n != 2 {
		t.Fatalf("%d runs: the missed runs did not coalesce into one", n)
	}
	p = h.actPrint("act.keep", "slow")
	next, _ := p.Date("next_eligible")
	last, _ := p.Date("last_run")
	if !last.After(lastRun) || !next.Equal(last.Add(3*time.Second)) {
		t.Errorf("after the coalesced run: last run %v (before the restart %v), next eligible %v; want an interval after it",
			last, lastRun, next)
	}
}

// activity-run runs an activity now, launching its job, whatever its
// schedule says; print says why a waiting one has not run: each criterion
// not met, read from the sources; when it comes to hold, it runs.
func TestActivityRunAndWhyNot(t *testing.T) {
	h, f := newActHarness(t)
	h.writePlist(h.actJob("act.hour", map[string]any{"hourly": map[string]any{"Interval": 3600, "Priority": "Utility"}}, nil))
	h.writePlist(h.actJob("act.net", map[string]any{"net": map[string]any{"Delay": 1, "Priority": "Utility", "RequireNetworkConnectivity": true}}, nil))
	h.start()
	// Its activity is what starts the job, and blame says so.
	why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("act.hour")), bootstrap.KeyWhy)
	if !strings.HasPrefix(why, "waiting for its activities") {
		t.Errorf("blame: %q", why)
	}
	r := h.mustAdmin(bootstrap.OpActivityRun, bootstrap.KeyTarget, h.target("act.hour"), bootstrap.KeyActivityID, "hourly")
	if strOf(r, bootstrap.KeyStatus) != "started" {
		t.Errorf("activity-run: %v", r)
	}
	waitFor(t, "the run", func() bool { return countPrefix(h.actLog("act.hour"), "run_hourly_") == 1 })
	if strOf(h.print("act.hour"), bootstrap.KeyLaunchReason) != reasonActivity {
		t.Error("not launched for the activity")
	}
	if _, err := h.admin(bootstrap.OpActivityRun, bootstrap.KeyTarget, h.target("act.hour"), bootstrap.KeyActivityID, "nope"); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("run of an unknown activity: %v", err)
	}

	var p *xpc.Dictionary
	waitFor(t, "the criteria read", func() bool {
		p = h.actPrint("act.net", "net")
		return strOf(p, "waiting_for") == "criteria"
	})
	unmet, _ := p.Array("unmet")
	if len(unmet) != 1 || !strings.Contains(fmt.Sprint(unmet[0]), xpc.CriteriaRequireNetwork+": unknown") ||
		!strings.Contains(strOf(p, "why"), "criteria not met") {
		t.Fatalf("print: unmet %v, why %q", unmet, strOf(p, "why"))
	}
	if len(h.actLog("act.net")) != 0 {
		t.Fatal("ran with its criteria unmet")
	}
	f.Set(criteria.Network, true)
	waitFor(t, "the run once the network came", func() bool { return countPrefix(h.actLog("act.net"), "run_net_") == 1 })
}

// A service that outlives xpcd registers its activities again once the
// next xpcd adopts it, and gets them there, in the same process.
func TestActivityAfterAdoption(t *testing.T) {
	h, _ := newActHarness(t)
	h.cfg.StopServicesOnClose = false
	h.writePlist(h.actJob("act.adopt", map[string]any{"tick": map[string]any{"Interval": 2, "Priority": "Utility"}}, nil))
	d := h.start()
	waitFor(t, "a run", func() bool { return countPrefix(h.actLog("act.adopt"), "run_tick_") == 1 })
	pid := intOf(h.print("act.adopt"), bootstrap.KeyPID)
	h.close(d) // the service keeps running
	h.cfg.StopServicesOnClose = true
	h.start()
	waitFor(t, "a run after the restart", func() bool { return countPrefix(h.actLog("act.adopt"), "run_tick_") >= 2 })
	want := fmt.Sprintf("run_tick_%d", pid)
	for _, l := range h.actLog("act.adopt") {
		if strings.HasPrefix(l, "run_") && l != want {
			t.Fatalf("run in another process: %v (want pid %d)", h.actLog("act.adopt"), pid)
		}
	}
	if p := h.print("act.adopt"); intOf(p, bootstrap.KeyRuns) != 1 {
		t.Errorf("relaunched: runs %d", intOf(p, bootstrap.KeyRuns))
	}
}
