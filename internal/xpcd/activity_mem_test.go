package xpcd

import (
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/criteria"
	"github.com/goxpc/xpc/launchd"
)

// What 10,000 activities cost xpcd (the goal is 20 MiB at most), and that
// the scheduler sleeps, with one timer, until the first is due.

const memActivities = 10000

// registerMany loads jobs of actsPerJob registered activities each, n in
// all, due from one to n minutes on, and returns the heap bytes they
// added (jobs included), measured after a collection.
func registerMany(t testing.TB, mc *machine, n int) uint64 {
	const actsPerJob = 50
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	mc.do(func() {
		now := time.Now()
		for i := 0; i < n; i += actsPerJob {
			j, oe := mc.m.addJob(mc.d, def(fmt.Sprintf("mem.%05d", i), func(j *launchd.Job) { j.MachServices = nil }), false)
			if oe != nil {
				t.Fatal(oe)
			}
			for k := range min(actsPerJob, n-i) {
				c := xpc.ActivityCriteria{Interval: time.Duration(i+k+1) * time.Minute, Priority: xpc.PriorityUtility, AllowBattery: true}
				if oe := mc.m.actRoom(j); oe != nil {
					t.Fatal(oe)
				}
				a := mc.m.newActivity(j, fmt.Sprintf("com.example.activity.%d", k), c, now)
				a.registered = true
			}
		}
	})
	runtime.GC()
	runtime.ReadMemStats(&after)
	return after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
}

// TestActivityMemoryReport reports the cost of 10,000 activities and the
// scheduler's wake-ups over an idle minute before the first is due.
func TestActivityMemoryReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc := newActMachine(t, criteria.NewFake(), time.Hour, nil)
		bytes := registerMany(t, mc, memActivities)
		var arms, fires, n int
		mc.do(func() { arms, n = mc.m.acts.arms, mc.m.acts.heap.Len() })
		time.Sleep(59 * time.Second)
		synctest.Wait()
		mc.do(func() { fires = mc.m.acts.fires })
		t.Logf("%d activities (in %d jobs): %.2f MiB of heap (%d bytes each, jobs included); timer armed %d times while registering; %d wake-ups in the idle minute before the first is due",
			n, memActivities/50, float64(bytes)/(1<<20), bytes/uint64(n), arms, fires)
		if n != memActivities || fires != 0 {
			t.Fatalf("heap %d, %d wake-ups", n, fires)
		}
	})
}
