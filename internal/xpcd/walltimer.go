package xpcd

import (
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// StartCalendarInterval deadlines are times of the wall clock, and a Go
// timer measures a duration on the monotonic clock: it does not move when
// the wall clock is set, and (on Linux) does not count time suspended. So
// the calendar timer is a timerfd on CLOCK_REALTIME, armed at the deadline
// itself (TFD_TIMER_ABSTIME) and cancelled when the clock is set
// (TFD_TIMER_CANCEL_ON_SET: its read fails with ECANCELED, after settime,
// adjtime's step, or a resume from suspend), so that the next match is
// computed again. It sleeps until the next matching minute exactly: no
// look at the clock in between.
//
// One goroutine (calendarClock) owns the earliest deadline of all jobs:
// the loop tells it the earliest after every change, and it posts to the
// loop when that deadline comes or the clock was set. It runs only while
// some job has a calendar deadline.

// wallWake is why a wallTimer's wait returned.
type wallWake int

const (
	wallDue   wallWake = iota // the deadline passed
	wallSet                   // the clock was set (or a resume from suspend)
	wallWoken                 // wake was called
)

// wallTimer sleeps until a time of the wall clock. wait and close are
// called from one goroutine; wake from any.
type wallTimer interface {
	// wait blocks until the wall clock reaches deadline (the zero Time:
	// never), the clock is set, or wake is called (before or during the
	// wait: a wake is kept until a wait takes it), and says which.
	wait(deadline time.Time) (wallWake, error)
	wake()
	close()
}

// timerfdWall is the wallTimer of xpcd: a timerfd on CLOCK_REALTIME, and
// an eventfd for wake, both polled on the waiting goroutine's thread (a
// timerfd is always pollable, but its ECANCELED only comes from read).
type timerfdWall struct {
	tfd, efd int
}

func newTimerfdWall() (wallTimer, error) {
	tfd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(tfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	return &timerfdWall{tfd: tfd, efd: efd}, nil
}

func (w *timerfdWall) wait(deadline time.Time) (wallWake, error) {
	var its unix.ItimerSpec // zero: disarmed
	if !deadline.IsZero() {
		ns := deadline.UnixNano()
		if ns <= 0 {
			ns = 1 // long past: at once (a zero it_value would disarm)
		}
		its.Value = unix.NsecToTimespec(ns)
	}
	err := unix.TimerfdSettime(w.tfd, unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET, &its, nil)
	if errors.Is(err, unix.ECANCELED) {
		return wallSet, nil
	}
	if err != nil {
		return 0, os.NewSyscallError("timerfd_settime", err)
	}
	for {
		fds := []unix.PollFd{{Fd: int32(w.tfd), Events: unix.POLLIN}, {Fd: int32(w.efd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return 0, os.NewSyscallError("poll", err)
		}
		var b [8]byte
		if fds[1].Revents != 0 {
			unix.Read(w.efd, b[:]) // resets the count
			return wallWoken, nil
		}
		if fds[0].Revents == 0 {
			continue
		}
		_, err := unix.Read(w.tfd, b[:])
		switch {
		case err == nil:
			return wallDue, nil
		case errors.Is(err, unix.ECANCELED):
			return wallSet, nil
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue
		default:
			return 0, os.NewSyscallError("timerfd read", err)
		}
	}
}

func (w *timerfdWall) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(w.efd, one[:]) // EAGAIN only if the count is at its maximum: awake anyway
}

func (w *timerfdWall) close() {
	unix.Close(w.tfd)
	unix.Close(w.efd)
}

// goWall is the wallTimer used when there is no timerfd (a kernel or a
// sandbox without it): a Go timer that sleeps at most maxSleep before it
// reports the clock set, so that the loop looks at the wall clock again.
// That is the polling a timerfd avoids; xpcd logs that it fell back.
type goWall struct {
	maxSleep time.Duration
	kick     chan struct{}
}

func newGoWall(maxSleep time.Duration) *goWall {
	return &goWall{maxSleep: maxSleep, kick: make(chan struct{}, 1)}
}

func (w *goWall) wait(deadline time.Time) (wallWake, error) {
	var c <-chan time.Time
	var t *time.Timer
	if !deadline.IsZero() {
		t = time.NewTimer(min(time.Until(deadline), w.maxSleep))
		defer t.Stop()
		c = t.C
	}
	select {
	case <-w.kick:
		return wallWoken, nil
	case <-c:
		if time.Now().Before(deadline) {
			return wallSet, nil // look again from now
		}
		return wallDue, nil
	}
}

func (w *goWall) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *goWall) close() {}

// calendarClock is the one goroutine that waits for the earliest calendar
// deadline of all jobs, on its wallTimer. due is called from it (and
// posts to the loop) when the deadline passed (set false) or the clock
// was set (set true); after that it waits for no deadline until set gives
// it the next one, so that it never spins on a deadline the loop has not
// moved yet.
type calendarClock struct {
	timer  wallTimer
	due    func(set bool)
	fail   func(error)
	exited func()

	mu      sync.Mutex
	next    time.Time
	stopped bool
	done    chan struct{}
}

// calendarRecheck is how long goWall sleeps at most before the loop
// looks at the wall clock again, when there is no timerfd.
const calendarRecheck = time.Minute

// startCalendarClock starts the goroutine; exited is called as it ends.
func startCalendarClock(timer wallTimer, due func(set bool), fail func(error), exited func()) *calendarClock {
	c := &calendarClock{timer: timer, due: due, fail: fail, exited: exited, done: make(chan struct{})}
	go c.run()
	return c
}

// set makes t (the zero Time: none) the deadline. It never blocks.
func (c *calendarClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.next.Equal(t) {
		c.next = t
		c.timer.wake()
	}
}

// stop ends the goroutine, which closes the timer; it does not wait for
// it (Done waits).
func (c *calendarClock) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.timer.wake()
}

// Done is closed when the goroutine has ended.
func (c *calendarClock) Done() <-chan struct{} { return c.done }

func (c *calendarClock) run() {
	defer c.exited()
	defer close(c.done)
	for {
		c.mu.Lock()
		next, stopped, timer := c.next, c.stopped, c.timer
		c.mu.Unlock()
		if stopped {
			timer.close()
			return
		}
		why, err := timer.wait(next)
		if err != nil {
			// Not expected of a timerfd that was made; rather than no
			// calendar starts at all, the polling fallback.
			c.fail(err)
			c.mu.Lock()
			c.timer = newGoWall(calendarRecheck)
			c.mu.Unlock()
			timer.close()
			continue
		}
		if why == wallWoken {
			continue
		}
		c.mu.Lock()
		// Fired for the deadline it waited for (not one replaced
		// meanwhile, which the next wait takes): wait for the loop's next.
		fire := why == wallSet || c.next.Equal(next)
		if fire && !c.stopped {
			c.next = time.Time{}
		}
		stopped = c.stopped
		c.mu.Unlock()
		if fire && !stopped {
			c.due(why == wallSet)
		}
	}
}
