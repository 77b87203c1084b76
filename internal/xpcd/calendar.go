package xpcd

import "time"

// StartCalendarInterval's part of a job's schedule (schedule.go): each
// job's next matching minute, and the one clock that wakes the loop for
// the earliest of them all (walltimer.go).

// calendars is the supervisor's record of the jobs waiting for a
// StartCalendarInterval minute, and the one clock that wakes for the
// earliest of them (walltimer.go). Owned by the loop.
type calendars struct {
	jobs  map[*job]struct{} // the jobs with a calendarNext
	clock *calendarClock    // running while jobs is not empty
	next  time.Time         // what clock was last told
	// now reads the wall clock, and newTimer makes the clock's timer;
	// nil: time.Now and a timerfd. Tests fake both.
	now      func() time.Time
	newTimer func() (wallTimer, error)
}

func (c *calendars) wallNow() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// nextCalendar finds the next minute an entry matches after now and
// records it; the caller then calls reschedule.
func (m *supervisor) nextCalendar(j *job, s *schedule) {
	now := m.cal.wallNow()
	s.calendarNext, s.calendarAt = time.Time{}, 0
	for i, c := range j.def.StartCalendarInterval {
		t := c.Next(now.In(time.Local))
		if !t.IsZero() && (s.calendarNext.IsZero() || t.Before(s.calendarNext)) {
			s.calendarNext, s.calendarAt = t, i
		}
	}
	if s.calendarNext.IsZero() {
		delete(m.cal.jobs, j)
		return
	}
	if m.cal.jobs == nil {
		m.cal.jobs = map[*job]struct{}{}
	}
	m.cal.jobs[j] = struct{}{}
}

// reschedule gives the clock the earliest deadline of all jobs, starting
// it for the first and stopping it after the last.
func (c *calendars) reschedule(m *supervisor) {
	var next time.Time
	for j := range c.jobs {
		if t := j.sched.calendarNext; next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if next.IsZero() {
		if c.clock != nil {
			c.clock.stop()
			c.clock, c.next = nil, time.Time{}
		}
		return
	}
	if c.clock == nil {
		c.clock = m.startCalendarClock()
		c.next = time.Time{}
	}
	if !next.Equal(c.next) {
		c.next = next
		c.clock.set(next)
	}
}

// startCalendarClock starts the goroutine that waits for the calendar's
// deadlines: on a timerfd, or (without one) on a Go timer that looks at
// the clock again every calendarRecheck.
func (m *supervisor) startCalendarClock() *calendarClock {
	newTimer := m.cal.newTimer
	if newTimer == nil {
		newTimer = newTimerfdWall
	}
	timer, err := newTimer()
	if err != nil {
		m.log.Warn("no wall-clock timer: calendar starts look at the clock every minute", "err", err)
		timer = newGoWall(calendarRecheck)
	}
	var c *calendarClock
	due := func(set bool) { m.post(func() { m.calendarDue(c, set) }) }
	fail := func(err error) {
		m.log.Warn("wall-clock timer failed: calendar starts look at the clock every minute", "err", err)
	}
	m.bg.Add(1)
	c = startCalendarClock(timer, due, fail, m.bg.Done)
	return c
}

// calendarDue: the earliest deadline passed, or the clock was set (set).
// Each job is judged by the wall clock now: one whose minute has come
// starts once (a sleep or a clock set forward that skipped several
// minutes makes one start), and goes on from now; after a clock set, the
// others' next minute is computed again from now (the clock may have gone
// back).
func (m *supervisor) calendarDue(c *calendarClock, set bool) {
	if m.cal.clock != c {
		return // stopped meanwhile
	}
	now := m.cal.wallNow()
	var due, moved []*job
	for j := range m.cal.jobs {
		if !now.Before(j.sched.calendarNext) {
			due = append(due, j)
		} else if set {
			moved = append(moved, j)
		}
	}
	for _, j := range moved {
		if _, ok := m.cal.jobs[j]; ok {
			m.nextCalendar(j, j.sched)
			m.changed(j)
		}
	}
	for _, j := range due {
		if _, ok := m.cal.jobs[j]; ok { // not disarmed by a start before it
			m.nextCalendar(j, j.sched)
			m.scheduledStart(j, reasonCalendar)
		}
	}
	// Told afresh: the clock forgets its deadline once it fired.
	m.cal.next = time.Time{}
	m.cal.reschedule(m)
}
