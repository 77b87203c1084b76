package xpcd

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/goxpc/xpc/launchd"
)

// Tests of the schedule's state machine: StartInterval and
// StartCalendarInterval on synctest's clock, WatchPaths and
// QueueDirectories through a fake watcher the test drives (inotify itself
// is tested in pathwatch_test.go), with the fake launcher of
// machine_test.go.

// fakeWatches makes fakeWatch watchers and remembers them.
type fakeWatches struct {
	mu sync.Mutex
	ws []*fakeWatch
}

type fakeWatch struct {
	watch, queue, state []string
	closed              chan struct{}
	once                sync.Once

	mu      sync.Mutex
	changed func(watch, queue, state bool)
}

func (f *fakeWatches) new(spec watchSpec) (pathWatcher, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeWatch{watch: spec.watch, queue: spec.queue, state: spec.state, closed: make(chan struct{})}
	f.ws = append(f.ws, w)
	return w, nil
}

func (f *fakeWatches) all() []*fakeWatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeWatch(nil), f.ws...)
}

func (w *fakeWatch) run(changed func(watch, queue, state bool)) error {
	w.mu.Lock()
	w.changed = changed
	w.mu.Unlock()
	if len(w.queue) > 0 || len(w.state) > 0 {
		changed(false, len(w.queue) > 0, len(w.state) > 0)
	}
	<-w.closed
	return nil
}

// pathState is the file system's word, as the inotify watcher's would be.
func (w *fakeWatch) pathState(path string) (exists, known bool) {
	_, err := os.Stat(path)
	return err == nil, true
}

func (w *fakeWatch) close() { w.once.Do(func() { close(w.closed) }) }

func (w *fakeWatch) isClosed() bool {
	select {
	case <-w.closed:
		return true
	default:
		return false
	}
}

// fire reports a change, as the watcher's goroutine does.
func (w *fakeWatch) fire(watch, queue bool) { w.fireState(watch, queue, false) }

func (w *fakeWatch) fireState(watch, queue, state bool) {
	w.mu.Lock()
	f := w.changed
	w.mu.Unlock()
	f(watch, queue, state)
}

// newSchedMachine is newMachine with a fake watcher and a fake wall clock
// (synctest's, which a timerfd does not follow).
func newSchedMachine(t *testing.T, defs ...*launchd.Job) (*machine, *fakeWatches) {
	mc, fw, _ := newCalendarMachine(t, defs...)
	return mc, fw
}

// newCalendarMachine is newSchedMachine, and also returns its wall clock.
func newCalendarMachine(t *testing.T, defs ...*launchd.Job) (*machine, *fakeWatches, *fakeWall) {
	fl := &fakeLauncher{}
	fw := &fakeWatches{}
	m := newSupervisor(supervisorConfig{
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		launcher: fl,
		domains:  map[string]uint32{"user/0": 0},
		userMode: true,
		newWatch: fw.new,
	})
	wall := newFakeWall()
	m.cal.now, m.cal.newTimer = wall.now, wall.newTimer
	d := m.domains["user/0"]
	for _, def := range defs {
		if _, err := m.addJob(d, def, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.close(context.Background()) })
	synctest.Wait()
	return &machine{t: t, m: m, fl: fl, d: d}, fw, wall
}

// startTimes returns when each launch happened, relative to t0.
func startTimes(fl *fakeLauncher, t0 time.Time) []time.Duration {
	var out []time.Duration
	for _, p := range fl.launches() {
		out = append(out, p.started.Sub(t0))
	}
	return out
}

func sameDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sleepTo sleeps until t0+d and lets everything settle.
func sleepTo(t0 time.Time, d time.Duration) {
	time.Sleep(time.Until(t0.Add(d)))
	synctest.Wait()
}

func (mc *machine) reason(label string) string {
	var r string
	mc.do(func() { r = mc.d.jobs[label].lastReason.why })
	return r
}

func (mc *machine) blameOf(label string) string {
	var s string
	mc.do(func() { s = mc.m.blame(mc.d.jobs[label]) })
	return s
}

// StartInterval: a start every interval after load; one that comes while
// the job runs does nothing; ThrottleInterval holds; an exit does not
// start it again.
func TestScheduleStartInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		mc, _ := newSchedMachine(t, def("iv", func(j *launchd.Job) {
			j.StartInterval = 30 * time.Second
			j.ThrottleInterval = 45 * time.Second
		}))
		if n := len(mc.fl.launches()); n != 0 {
			t.Fatalf("%d launches at load", n)
		}
		var next time.Time
		mc.do(func() { next, _ = mc.m.jobDict(mc.d.jobs["iv"]).Date("next_start") })
		if !next.Equal(t0.Add(30 * time.Second)) {
			t.Errorf("next_start %v, want load+30s", next.Sub(t0))
		}
		if b := mc.blameOf("iv"); !strings.Contains(b, "waiting: next start by StartInterval (every 30s) at ") {
			t.Errorf("blame: %q", b)
		}

		sleepTo(t0, 30*time.Second)
		ps := mc.fl.launches()
		if len(ps) != 1 || mc.reason("iv") != reasonInterval {
			t.Fatalf("at 30s: %v, reason %q", startTimes(mc.fl, t0), mc.reason("iv"))
		}
		sleepTo(t0, 31*time.Second)
		ps[0].die(exitStatus{known: true})
		synctest.Wait()
		if st := mc.state("iv"); st != "waiting" {
			t.Fatalf("after exit: %s (an exit must not start it again)", st)
		}
		// 60s: due, but the throttle (launch at 30s + 45s) holds it to 75s.
		sleepTo(t0, 60*time.Second)
		if st := mc.state("iv"); st != "throttled" {
			t.Fatalf("at 60s: %s, want throttled", st)
		}
		sleepTo(t0, 75*time.Second)
		if len(mc.fl.launches()) != 2 || mc.reason("iv") != reasonInterval {
			t.Fatalf("at 75s: %v", startTimes(mc.fl, t0))
		}
		// 90s and 120s come while it runs: nothing.
		sleepTo(t0, 121*time.Second)
		if n := len(mc.fl.launches()); n != 2 {
			t.Fatalf("started while running: %v", startTimes(mc.fl, t0))
		}
		mc.fl.launches()[1].die(exitStatus{known: true})
		synctest.Wait()
		// 150s: the throttle (75s + 45s) has passed; 180s comes while
		// it runs.
		sleepTo(t0, 200*time.Second)
		want := []time.Duration{30 * time.Second, 75 * time.Second, 150 * time.Second}
		if got := startTimes(mc.fl, t0); !sameDurations(got, want) {
			t.Fatalf("launches at %v, want %v", got, want)
		}
	})
}

// firstLocalMinute returns the first minute after t whose local minute is
// min, by walking the clock.
func firstLocalMinute(t time.Time, min int) time.Time {
	c := t.Truncate(time.Minute)
	for {
		c = c.Add(time.Minute)
		if c.In(time.Local).Minute() == min {
			return c
		}
	}
}

// StartCalendarInterval: the next matching minute of any entry, in local
// time; a start due while the job runs does nothing.
func TestScheduleCalendar(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(17 * time.Second) // not on a minute
		t0 := time.Now()
		m30, m10 := 30, 10
		mc, _ := newSchedMachine(t, def("cal", func(j *launchd.Job) {
			j.StartCalendarInterval = []launchd.CalendarInterval{{Minute: &m30}, {Minute: &m10}}
		}))
		a, b := firstLocalMinute(t0, 30), firstLocalMinute(t0, 10)
		first, entry := a, "Minute=30"
		if b.Before(a) {
			first, entry = b, "Minute=10"
		}
		var next time.Time
		mc.do(func() { next, _ = mc.m.jobDict(mc.d.jobs["cal"]).Date("next_start") })
		if !next.Equal(first) {
			t.Fatalf("next_start %v, want %v", next, first)
		}
		if bl := mc.blameOf("cal"); !strings.Contains(bl, "next calendar start at ") || !strings.Contains(bl, "("+entry+")") {
			t.Errorf("blame: %q", bl)
		}
		time.Sleep(time.Until(first) - time.Nanosecond)
		synctest.Wait()
		if n := len(mc.fl.launches()); n != 0 {
			t.Fatalf("started %v early", time.Until(first))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		ps := mc.fl.launches()
		if len(ps) != 1 || !ps[0].started.Equal(first) || mc.reason("cal") != reasonCalendar {
			t.Fatalf("launches at %v, want one at %v", startTimes(mc.fl, t0), first.Sub(t0))
		}
		// The next one (20 or 40 minutes on) comes while it runs: nothing.
		second := firstLocalMinute(first, 10)
		if c := firstLocalMinute(first, 30); c.Before(second) {
			second = c
		}
		time.Sleep(time.Until(second) + time.Second)
		synctest.Wait()
		if n := len(mc.fl.launches()); n != 1 {
			t.Fatalf("started while running: %v", startTimes(mc.fl, t0))
		}
		ps[0].die(exitStatus{known: true})
		synctest.Wait()
		third := firstLocalMinute(second, 10)
		if c := firstLocalMinute(second, 30); c.Before(third) {
			third = c
		}
		time.Sleep(time.Until(third))
		synctest.Wait()
		ps = mc.fl.launches()
		if len(ps) != 2 || !ps[1].started.Equal(third) {
			t.Fatalf("launches at %v, want the second at %v", startTimes(mc.fl, t0), third.Sub(t0))
		}
	})
}

// An entry that never matches schedules nothing, and says so.
func TestScheduleCalendarNever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bad := 61 // out of range: Next returns the zero Time
		mc, _ := newSchedMachine(t, def("never", func(j *launchd.Job) {
			j.StartCalendarInterval = []launchd.CalendarInterval{{Minute: &bad}}
		}))
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if n := len(mc.fl.launches()); n != 0 {
			t.Fatalf("%d launches", n)
		}
		if b := mc.blameOf("never"); !strings.Contains(b, "never matches") {
			t.Errorf("blame: %q", b)
		}
	})
}

// WatchPaths: changes within watchDebounce make one start, watchDebounce
// after the first; changes while the job runs start nothing; the
// throttle holds.
func TestScheduleWatchPathsDebounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc, fw := newSchedMachine(t, def("wp", func(j *launchd.Job) {
			j.WatchPaths = []string{"/etc/wp.conf"}
		}))
		ws := fw.all()
		if len(ws) != 1 || len(ws[0].watch) != 1 || ws[0].watch[0] != "/etc/wp.conf" {
			t.Fatalf("watches: %+v", ws)
		}
		w := ws[0]
		if b := mc.blameOf("wp"); !strings.Contains(b, "watching paths /etc/wp.conf") {
			t.Errorf("blame: %q", b)
		}
		t0 := time.Now()
		for i := range 5 { // at 0, 20, ... 80 ms
			if i > 0 {
				time.Sleep(20 * time.Millisecond)
			}
			w.fire(true, false)
		}
		sleepTo(t0, watchDebounce-time.Nanosecond)
		if n := len(mc.fl.launches()); n != 0 {
			t.Fatalf("started before the debounce ended")
		}
		sleepTo(t0, time.Second)
		ps := mc.fl.launches()
		if got := startTimes(mc.fl, t0); !sameDurations(got, []time.Duration{watchDebounce}) || mc.reason("wp") != reasonWatchPath {
			t.Fatalf("launches at %v (%s), want one at %v", got, mc.reason("wp"), watchDebounce)
		}
		// While it runs.
		w.fire(true, false)
		sleepTo(t0, 2*time.Second)
		if n := len(mc.fl.launches()); n != 1 {
			t.Fatalf("started again while running")
		}
		ps[0].die(exitStatus{known: true})
		synctest.Wait()
		sleepTo(t0, 3*time.Second)
		if n := len(mc.fl.launches()); n != 1 {
			t.Fatalf("an exit started it again")
		}
		// A change 3s after the last launch: throttled to 10s after it.
		w.fire(true, false)
		sleepTo(t0, 4*time.Second)
		if st := mc.state("wp"); st != "throttled" {
			t.Fatalf("state %s, want throttled", st)
		}
		sleepTo(t0, 11*time.Second)
		want := []time.Duration{watchDebounce, watchDebounce + launchd.DefaultThrottleInterval}
		if got := startTimes(mc.fl, t0); !sameDurations(got, want) {
			t.Fatalf("launches at %v, want %v", got, want)
		}
	})
}

// QueueDirectories: started while a directory has an entry, again after
// each exit (throttled) until it is empty.
func TestScheduleQueueDirectories(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		q := filepath.Join(dir, "queue")
		if err := os.Mkdir(q, 0o755); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		mc, fw := newSchedMachine(t, def("qd", func(j *launchd.Job) {
			j.QueueDirectories = []string{q, filepath.Join(dir, "absent")}
		}))
		if n := len(mc.fl.launches()); n != 0 {
			t.Fatalf("started with empty queues")
		}
		w := fw.all()[0]
		item := filepath.Join(q, "item")
		if err := os.WriteFile(item, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		w.fire(false, true)
		synctest.Wait()
		ps := mc.fl.launches()
		if len(ps) != 1 || mc.reason("qd") != reasonQueue {
			t.Fatalf("launches %v, reason %s", startTimes(mc.fl, t0), mc.reason("qd"))
		}
		// It exits without emptying the queue: again, ThrottleInterval
		// after its launch.
		sleepTo(t0, time.Second)
		ps[0].die(exitStatus{known: true})
		synctest.Wait()
		if st := mc.state("qd"); st != "throttled" {
			t.Fatalf("state %s, want throttled", st)
		}
		sleepTo(t0, 11*time.Second)
		ps = mc.fl.launches()
		if got := startTimes(mc.fl, t0); !sameDurations(got, []time.Duration{0, 10 * time.Second}) {
			t.Fatalf("launches at %v", got)
		}
		// This one empties it: no more.
		os.Remove(item)
		ps[1].die(exitStatus{known: true})
		synctest.Wait()
		sleepTo(t0, time.Minute)
		if n := len(mc.fl.launches()); n != 2 || mc.state("qd") != "waiting" {
			t.Fatalf("%d launches, state %s", n, mc.state("qd"))
		}
		// Emptied while the throttle waits: no start when it ends.
		os.WriteFile(item, nil, 0o644)
		w.fire(false, true)
		synctest.Wait()
		ps = mc.fl.launches()
		ps[2].die(exitStatus{known: true})
		synctest.Wait()
		if st := mc.state("qd"); st != "throttled" {
			t.Fatalf("state %s, want throttled", st)
		}
		os.Remove(item)
		sleepTo(t0, 2*time.Minute)
		if n := len(mc.fl.launches()); n != 3 {
			t.Fatalf("%d launches: started for an empty queue", n)
		}
		var qs int
		mc.do(func() {
			v, _ := mc.m.jobDict(mc.d.jobs["qd"]).Array("queue_directories")
			qs = len(v)
		})
		if qs != 2 {
			t.Errorf("queue_directories has %d entries, want 2", qs)
		}
	})
}

// A queue that has work when the job is loaded starts it at load.
func TestScheduleQueueAtLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := t.TempDir()
		os.WriteFile(filepath.Join(q, "item"), nil, 0o644)
		mc, _ := newSchedMachine(t, def("ql", func(j *launchd.Job) { j.QueueDirectories = []string{q} }))
		if n := len(mc.fl.launches()); n != 1 || mc.reason("ql") != reasonQueue {
			t.Fatalf("%d launches (%s)", n, mc.reason("ql"))
		}
	})
}

// Disabling a job stops its timers and closes its watch; enabling starts
// them afresh; bootout stops them for good; so does shutdown.
func TestScheduleDisableBootout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		mc, fw := newSchedMachine(t,
			def("s", func(j *launchd.Job) {
				j.StartInterval = time.Minute
				j.WatchPaths = []string{"/etc/s.conf"}
			}),
			def("z", func(j *launchd.Job) { j.QueueDirectories = []string{"/nonexistent/q"} }))
		w := fw.all()
		if len(w) != 2 {
			t.Fatalf("%d watches", len(w))
		}
		ws := w[0]
		if len(ws.watch) == 0 {
			ws = w[1]
		}
		j := mc.d.jobs["s"]
		mc.do(func() {
			j.disabled = true
			mc.m.syncSchedule(j)
		})
		if !ws.isClosed() {
			t.Fatal("watch not closed when disabled")
		}
		ws.fire(true, false) // late news from the closed watcher: ignored
		sleepTo(t0, 5*time.Minute)
		if n := len(mc.fl.launches()); n != 0 {
			t.Fatalf("a disabled job started (%s)", mc.reason("s"))
		}
		var hasNext bool
		mc.do(func() { hasNext = mc.m.jobDict(j).Get("next_start") != nil })
		if hasNext {
			t.Errorf("next_start while disabled")
		}
		mc.do(func() {
			j.disabled = false
			mc.m.syncSchedule(j)
		})
		if len(fw.all()) != 3 {
			t.Fatal("enable did not watch again")
		}
		sleepTo(t0, 6*time.Minute)
		if got := startTimes(mc.fl, t0); !sameDurations(got, []time.Duration{6 * time.Minute}) {
			t.Fatalf("launches at %v, want one a minute after enable", got)
		}
		mc.fl.launches()[0].termExits = true
		if err := bootoutJob(mc.m, j); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !fw.all()[2].isClosed() || mc.d.jobs["s"] != nil {
			t.Fatal("bootout left the watch open or the job loaded")
		}
		sleepTo(t0, 10*time.Minute)
		if n := len(mc.fl.launches()); n != 1 {
			t.Fatalf("a booted-out job started")
		}
		// Shutdown closes what is left.
		if err := mc.m.close(context.Background()); err != nil {
			t.Fatal(err)
		}
		for i, w := range fw.all() {
			if !w.isClosed() {
				t.Errorf("watch %d open after close", i)
			}
		}
	})
}

// bootoutJob boots j out as the bootout request does.
func bootoutJob(m *supervisor, j *job) error {
	return m.call(context.Background(), func() {
		j.unloading = true
		m.dropQueue(j)
		j.cancelThrottle()
		m.syncSchedule(j)
		if j.inst == nil {
			m.finishUnload(j)
			return
		}
		m.stop(j.inst, stopBootout)
	})
}

func TestCalendarText(t *testing.T) {
	three, zero, one := 3, 0, 1
	for _, tc := range []struct {
		c    launchd.CalendarInterval
		want string
	}{
		{launchd.CalendarInterval{}, "every minute"},
		{launchd.CalendarInterval{Hour: &three, Minute: &zero}, "Hour=3 Minute=0"},
		{launchd.CalendarInterval{Weekday: &one, Month: &one}, "Month=1 Weekday=1"},
	} {
		if got := calendarText(tc.c); got != tc.want {
			t.Errorf("calendarText(%s) = %q, want %q", tc.c, got, tc.want)
		}
	}
}
