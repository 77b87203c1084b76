package xpcd

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/goxpc/xpc/launchd"
)

// fakeWall is a wall clock for synctest: synctest's time plus an offset
// the test sets, as an administrator setting the clock would. It is the
// wallTimer of every calendar clock the machine starts, and counts its
// wake-ups.
type fakeWall struct {
	kick chan struct{}
	setc chan struct{}

	mu      sync.Mutex
	offset  time.Duration
	timers  int // calendar clocks started
	waits   int // waits begun
	wakeups int // waits that returned because of the clock (due or set)
}

func newFakeWall() *fakeWall {
	return &fakeWall{kick: make(chan struct{}, 1), setc: make(chan struct{}, 1)}
}

func (f *fakeWall) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().Add(f.offset).Round(0)
}

func (f *fakeWall) newTimer() (wallTimer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.timers++
	return f, nil
}

// setClock moves the wall clock by d, and tells a waiting timer.
func (f *fakeWall) setClock(d time.Duration) {
	f.mu.Lock()
	f.offset += d
	f.mu.Unlock()
	select {
	case f.setc <- struct{}{}:
	default:
	}
}

func (f *fakeWall) counts() (timers, waits, wakeups int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timers, f.waits, f.wakeups
}

func (f *fakeWall) wait(deadline time.Time) (wallWake, error) {
	f.mu.Lock()
	f.waits++
	f.mu.Unlock()
	for {
		var c <-chan time.Time
		if !deadline.IsZero() {
			t := time.NewTimer(deadline.Sub(f.now()))
			defer t.Stop()
			c = t.C
		}
		select {
		case <-f.kick:
			return wallWoken, nil
		case <-f.setc:
			if deadline.IsZero() {
				continue // a disarmed timerfd is not cancelled either
			}
			f.mu.Lock()
			f.wakeups++
			f.mu.Unlock()
			return wallSet, nil
		case <-c:
			if f.now().Before(deadline) {
				continue
			}
			f.mu.Lock()
			f.wakeups++
			f.mu.Unlock()
			return wallDue, nil
		}
	}
}

func (f *fakeWall) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *fakeWall) close() {}

// nextStart reads the job's next_start from print.
func (mc *machine) nextStart(label string) time.Time {
	var next time.Time
	mc.do(func() { next, _ = mc.m.jobDict(mc.d.jobs[label]).Date("next_start") })
	return next
}

// The calendar sleeps until the next matching minute and not a moment
// before: a job due days away costs no wake-up until then (the timer that
// looked at the clock every minute woke thousands of times), and then
// exactly one.
func TestCalendarIdleNoWakeups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(17 * time.Second)
		wd, h, mi := (int(time.Now().In(time.Local).Weekday())+3)%7, 12, 0
		mc, _, wall := newCalendarMachine(t, def("far", func(j *launchd.Job) {
			j.StartCalendarInterval = []launchd.CalendarInterval{{Weekday: &wd, Hour: &h, Minute: &mi}}
		}))
		due := mc.nextStart("far")
		if d := time.Until(due); d < 48*time.Hour || d > 4*24*time.Hour {
			t.Fatalf("next start in %v, want in about three days", d)
		}
		time.Sleep(time.Until(due) - time.Nanosecond)
		synctest.Wait()
		timers, _, wakeups := wall.counts()
		if wakeups != 0 || len(mc.fl.launches()) != 0 {
			t.Fatalf("before the minute: %d wake-ups, %d launches; want none", wakeups, len(mc.fl.launches()))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if ps := mc.fl.launches(); len(ps) != 1 || !ps[0].started.Equal(due) || mc.reason("far") != reasonCalendar {
			t.Fatalf("launches %v, want one at %v", ps, due)
		}
		if _, _, w := wall.counts(); w != 1 || timers != 1 {
			t.Errorf("%d wake-ups, %d clocks; want 1 and 1", w, timers)
		}
		if next := mc.nextStart("far"); next.Sub(due) != 7*24*time.Hour {
			t.Errorf("then next at %v, want a week after %v", next, due)
		}
	})
}

// All jobs share one clock, which wakes once for each distinct minute;
// it stops when the last calendar job goes, and starts again for a new
// one.
func TestCalendarOneClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(17 * time.Second)
		m10, m40 := 10, 40
		entry := func(m *int) func(*launchd.Job) {
			return func(j *launchd.Job) { j.StartCalendarInterval = []launchd.CalendarInterval{{Minute: m}} }
		}
		mc, _, wall := newCalendarMachine(t, def("a", entry(&m10)), def("b", entry(&m40)), def("c", entry(&m10)))
		t0 := time.Now()
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := len(mc.fl.launches()); n != 3 {
			t.Fatalf("launches %v in an hour, want 3", startTimes(mc.fl, t0))
		}
		timers, _, wakeups := wall.counts()
		if timers != 1 || wakeups != 2 {
			t.Errorf("%d clocks woke %d times in an hour, want 1 clock waking twice", timers, wakeups)
		}
		// Booted out, all three: the clock stops.
		mc.do(func() {
			for _, l := range []string{"a", "b", "c"} {
				mc.m.disarm(mc.d.jobs[l])
			}
		})
		var clock *calendarClock
		mc.do(func() { clock = mc.m.cal.clock })
		if clock != nil {
			t.Fatal("a clock runs with no calendar job")
		}
		mc.do(func() { mc.m.syncSchedule(mc.d.jobs["b"]) })
		mc.do(func() { clock = mc.m.cal.clock })
		if clock == nil {
			t.Fatal("no clock for a calendar job armed again")
		}
		if timers, _, _ := wall.counts(); timers != 2 {
			t.Errorf("%d clocks made, want 2", timers)
		}
	})
}

// The clock set forward past a job's minute starts it once, at once (a
// suspend that slept through several is the same); set back, the job's
// next minute is computed again from the new time, and nothing starts.
func TestCalendarClockSet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(17 * time.Second)
		m30 := 30
		mc, _, wall := newCalendarMachine(t, def("cal", func(j *launchd.Job) {
			j.StartCalendarInterval = []launchd.CalendarInterval{{Minute: &m30}}
		}))
		first := mc.nextStart("cal")
		if d := first.Sub(wall.now()); d <= 0 || d > time.Hour {
			t.Fatalf("first start %v from now", d)
		}
		// Forward by five hours: five minutes :30 skipped, one start.
		wall.setClock(5 * time.Hour)
		synctest.Wait()
		ps := mc.fl.launches()
		if len(ps) != 1 || mc.reason("cal") != reasonCalendar {
			t.Fatalf("%d launches after the clock went forward, want 1", len(ps))
		}
		next := mc.nextStart("cal")
		if d := next.Sub(wall.now()); d <= 0 || d > time.Hour || next.In(time.Local).Minute() != 30 {
			t.Errorf("after the clock went forward, next at %v (%v from now)", next, d)
		}
		ps[0].die(exitStatus{known: true})
		synctest.Wait()

		// Back by a day: nothing starts; the next :30 comes from the new
		// time, and the job starts then.
		wall.setClock(-24 * time.Hour)
		synctest.Wait()
		if n := len(mc.fl.launches()); n != 1 {
			t.Fatalf("%d launches after the clock went back, want still 1", n)
		}
		back := mc.nextStart("cal")
		if d := back.Sub(wall.now()); d <= 0 || d > time.Hour || back.In(time.Local).Minute() != 30 {
			t.Fatalf("after the clock went back, next at %v (%v from now)", back, d)
		}
		time.Sleep(back.Sub(wall.now()))
		synctest.Wait()
		if ps := mc.fl.launches(); len(ps) != 2 {
			t.Fatalf("%d launches at the next :30 after the clock went back, want 2", len(ps))
		}
	})
}

// The real timer: a timerfd deadline a second and a half ahead fires
// then, not before; wake, before or during a wait, ends it at once.
func TestTimerfdWallDeadline(t *testing.T) {
	t.Parallel()
	w, err := newTimerfdWall()
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	start := time.Now()
	why, err := w.wait(start.Add(1500 * time.Millisecond))
	el := time.Since(start)
	if err != nil || why != wallDue {
		t.Fatalf("wait: %v, %v", why, err)
	}
	if el < 1400*time.Millisecond || el > 10*time.Second {
		t.Errorf("a deadline 1.5 s ahead fired after %v", el)
	}

	w.wake() // before the wait: kept
	if why, err := w.wait(time.Now().Add(time.Hour)); err != nil || why != wallWoken {
		t.Fatalf("wait after wake: %v, %v", why, err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		w.wake()
	}()
	start = time.Now()
	if why, err := w.wait(time.Time{}); err != nil || why != wallWoken || time.Since(start) > 10*time.Second {
		t.Fatalf("wait with no deadline, woken: %v, %v after %v", why, err, time.Since(start))
	}
	// A deadline already past fires at once.
	if why, err := w.wait(time.Now().Add(-time.Hour)); err != nil || why != wallDue {
		t.Fatalf("wait for a past deadline: %v, %v", why, err)
	}
}

// The calendar clock on a real timerfd fires once for its deadline, and
// then waits for the loop's next one rather than firing again for the
// deadline it has passed.
func TestCalendarClockFiresOnce(t *testing.T) {
	t.Parallel()
	w, err := newTimerfdWall()
	if err != nil {
		t.Fatal(err)
	}
	var fired atomic.Int32
	got := make(chan bool, 16)
	c := startCalendarClock(w, func(set bool) { fired.Add(1); got <- set }, func(err error) { t.Error(err) }, func() {})
	c.set(time.Now().Add(time.Second))
	select {
	case set := <-got:
		if set {
			t.Error("reported a clock set")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the deadline did not fire")
	}
	time.Sleep(500 * time.Millisecond)
	if n := fired.Load(); n != 1 {
		t.Errorf("fired %d times for one deadline", n)
	}
	c.stop()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the clock did not stop")
	}
}
