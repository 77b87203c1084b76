package criteria

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
)

// good sets every condition to the value no criterion objects to.
func good() *Fake {
	f := NewFake()
	for _, c := range []Condition{OnBattery, CPUPressure, MemoryPressure, IOPressure} {
		f.Set(c, false)
	}
	for _, c := range []Condition{Network, InexpensiveNetwork, ScreenLocked, UserIdle} {
		f.Set(c, true)
	}
	return f
}

func keys(us []Unmet) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Key)
	}
	return out
}

func TestEvaluate(t *testing.T) {
	all := xpc.ActivityCriteria{Priority: xpc.PriorityUtility, RequireNetwork: true, RequireInexpensiveNetwork: true, RequireScreenSleep: true, RequireUserIdle: true, CPUIntensive: true, MemoryIntensive: true, DiskIntensive: true}
	for _, tc := range []struct {
		name     string
		criteria xpc.ActivityCriteria
		cond     Condition
		bad      bool // the value the criterion objects to
		key      string
	}{
		{"battery", xpc.ActivityCriteria{Priority: xpc.PriorityUtility}, OnBattery, true, xpc.CriteriaAllowBattery},
		{"network", xpc.ActivityCriteria{RequireNetwork: true, AllowBattery: true}, Network, false, xpc.CriteriaRequireNetwork},
		{"network, for an inexpensive one", xpc.ActivityCriteria{RequireInexpensiveNetwork: true, AllowBattery: true}, Network, false, xpc.CriteriaRequireNetwork},
		{"inexpensive network", xpc.ActivityCriteria{RequireInexpensiveNetwork: true, AllowBattery: true}, InexpensiveNetwork, false, xpc.CriteriaRequireInexpensiveNetwork},
		{"screen", xpc.ActivityCriteria{RequireScreenSleep: true, AllowBattery: true}, ScreenLocked, false, xpc.CriteriaRequireScreenSleep},
		{"idle", xpc.ActivityCriteria{RequireUserIdle: true, AllowBattery: true}, UserIdle, false, xpc.CriteriaRequireUserIdle},
		{"cpu", xpc.ActivityCriteria{CPUIntensive: true, AllowBattery: true}, CPUPressure, true, xpc.CriteriaCPUIntensive},
		{"memory", xpc.ActivityCriteria{MemoryIntensive: true, AllowBattery: true}, MemoryPressure, true, xpc.CriteriaMemoryIntensive},
		{"disk", xpc.ActivityCriteria{DiskIntensive: true, AllowBattery: true}, IOPressure, true, xpc.CriteriaDiskIntensive},
		{"battery among all", all, OnBattery, true, xpc.CriteriaAllowBattery},
		{"disk among all", all, IOPressure, true, xpc.CriteriaDiskIntensive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := good()
			if u := Evaluate(ctx, f, tc.criteria, 1000, false); len(u) != 0 {
				t.Fatalf("all good: unmet %v", u)
			}
			f.Set(tc.cond, tc.bad)
			u := Evaluate(ctx, f, tc.criteria, 1000, false)
			if !slices.Equal(keys(u), []string{tc.key}) || u[0].Condition != tc.cond || !u[0].Fact.Known {
				t.Fatalf("%s %v: unmet %v, want %s", tc.cond, tc.bad, u, tc.key)
			}
			// Unknown is unmet, and says so.
			f.SetFact(tc.cond, Fact{Source: "test", Why: "absent"})
			u = Evaluate(ctx, f, tc.criteria, 1000, false)
			if !slices.Equal(keys(u), []string{tc.key}) || u[0].Fact.Known || !strings.Contains(u[0].String(), "unknown, no source (test: absent)") {
				t.Fatalf("%s unknown: unmet %v, want %s", tc.cond, u, tc.key)
			}
		})
	}
}

func TestEvaluateReadsOnlyWhatIsAsked(t *testing.T) {
	f := NewFake() // nothing set: everything unknown
	if u := Evaluate(context.Background(), f, xpc.ActivityCriteria{AllowBattery: true, Priority: xpc.PriorityUtility}, 0, true); len(u) != 0 {
		t.Errorf("no criteria: unmet %v", u)
	}
	for _, c := range []Condition{OnBattery, Network, InexpensiveNetwork, ScreenLocked, UserIdle, CPUPressure, MemoryPressure, IOPressure} {
		if n := f.Reads(c); n != 0 {
			t.Errorf("%s read %d times", c, n)
		}
	}
}

// TestEvaluateMaintenanceHold: a maintenance activity within its grace
// period (held) waits while the machine is under any pressure, reported
// under the Priority key; a utility one, or one past its grace, does not.
func TestEvaluateMaintenanceHold(t *testing.T) {
	ctx := context.Background()
	maint := xpc.ActivityCriteria{AllowBattery: true} // Priority "" is maintenance
	for _, c := range []Condition{CPUPressure, MemoryPressure, IOPressure} {
		f := good()
		f.Set(c, true)
		u := Evaluate(ctx, f, maint, 0, true)
		if !slices.Equal(keys(u), []string{xpc.CriteriaPriority}) || u[0].Condition != c {
			t.Errorf("held, %s: unmet %v, want Priority", c, u)
		}
		if u := Evaluate(ctx, f, maint, 0, false); len(u) != 0 {
			t.Errorf("past grace, %s: unmet %v", c, u)
		}
		util := maint
		util.Priority = xpc.PriorityUtility
		if u := Evaluate(ctx, f, util, 0, true); len(u) != 0 {
			t.Errorf("utility, %s: unmet %v", c, u)
		}
		// An intensive key keeps its own name, held or not.
		intensive := maint
		intensive.CPUIntensive, intensive.MemoryIntensive, intensive.DiskIntensive = true, true, true
		want := map[Condition]string{CPUPressure: xpc.CriteriaCPUIntensive, MemoryPressure: xpc.CriteriaMemoryIntensive, IOPressure: xpc.CriteriaDiskIntensive}[c]
		for _, held := range []bool{true, false} {
			if u := Evaluate(ctx, f, intensive, 0, held); !slices.Equal(keys(u), []string{want}) {
				t.Errorf("intensive, held %v, %s: unmet %v, want %s", held, c, u, want)
			}
		}
	}
	// Held, with pressure unknown: unmet under Priority, all three.
	f := good()
	for _, c := range []Condition{CPUPressure, MemoryPressure, IOPressure} {
		f.SetFact(c, Fact{Why: "no PSI"})
	}
	if u := Evaluate(ctx, f, maint, 0, true); !slices.Equal(keys(u), []string{xpc.CriteriaPriority, xpc.CriteriaPriority, xpc.CriteriaPriority}) {
		t.Errorf("held, no PSI: unmet %v", u)
	}
}

func TestEvaluatePassesUID(t *testing.T) {
	s := &uidSources{Fake: good()}
	Evaluate(context.Background(), s, xpc.ActivityCriteria{RequireUserIdle: true, AllowBattery: true}, 1234, false)
	if s.uid != 1234 {
		t.Errorf("Read got uid %d, want 1234", s.uid)
	}
}

type uidSources struct {
	*Fake
	uid uint32
}

func (s *uidSources) Read(ctx context.Context, c Condition, uid uint32) Fact {
	s.uid = uid
	return s.Fake.Read(ctx, c, uid)
}

func TestFakeDelayBoundedByContext(t *testing.T) {
	f := good()
	f.Delay = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if fact := f.Read(ctx, OnBattery, 0); fact.Known {
		t.Errorf("Read past its deadline = %+v", fact)
	}
}

func TestUnmetString(t *testing.T) {
	for _, tc := range []struct {
		u    Unmet
		want string
	}{
		{Unmet{xpc.CriteriaAllowBattery, OnBattery, Fact{Known: true, Value: true, Source: "/sys/class/power_supply", Why: "BAT0 discharging"}}, "AllowBattery: on-battery (/sys/class/power_supply: BAT0 discharging)"},
		{Unmet{xpc.CriteriaRequireNetwork, Network, Fact{Known: true, Source: "kernel routes"}}, "RequireNetworkConnectivity: no network (kernel routes)"},
		{Unmet{xpc.CriteriaRequireUserIdle, UserIdle, Fact{Why: "logind is not on the system bus"}}, "RequireUserIdle: unknown, no source (logind is not on the system bus)"},
	} {
		if got := tc.u.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
