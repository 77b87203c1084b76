package xpcd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// PressureSource tells whether the system is short of memory. xpcd asks it
// every Config.PressureInterval (unless it is a PressureNotifier); while it
// says yes, clean services with EnablePressuredExit are stopped.
type PressureSource interface {
	UnderPressure() (bool, error)
}

// PressureNotifier is a PressureSource that can say when pressure may have
// begun, so that xpcd need not ask it on a timer: it asks once at start,
// then after each notification, and every Config.PressureInterval from
// then on until the source has said no for pressureLinger after the last
// one. PSIMemory is one, where the kernel lets it.
type PressureNotifier interface {
	PressureSource
	// NotifyPressure starts watching. The channel receives when pressure
	// may have begun (a value may stand for several), and is closed if
	// watching ends by itself; stop ends it and releases what it holds.
	// An error means the source cannot notify, and is asked on a timer.
	NotifyPressure() (c <-chan struct{}, stop func(), err error)
}

// pressureLinger is how long after a notification xpcd goes on asking
// every interval though the source says no: PSI's avg10 follows the stalls
// that triggered it by up to ten seconds.
const pressureLinger = 10 * time.Second

// PressureFunc adapts a function to a PressureSource.
type PressureFunc func() (bool, error)

// UnderPressure calls f.
func (f PressureFunc) UnderPressure() (bool, error) { return f() }

// PSIMemory reads Linux's pressure stall information for memory
// (/proc/pressure/memory): pressure is when "some avg10", the share of the
// last ten seconds in which some task waited for memory, exceeds
// Threshold percent.
type PSIMemory struct {
	Path      string  // "" is /proc/pressure/memory
	Threshold float64 // percent; 0 is DefaultPressureThreshold
}

// DefaultPressureThreshold is PSIMemory's default threshold, in percent.
const DefaultPressureThreshold = 10

// UnderPressure reads the file.
func (p PSIMemory) UnderPressure() (bool, error) {
	path := orDefault(p.Path, "/proc/pressure/memory")
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	avg, err := parsePSISomeAvg10(b)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	th := p.Threshold
	if th == 0 {
		th = DefaultPressureThreshold
	}
	return avg > th, nil
}

// NotifyPressure asks the kernel for a PSI trigger on the file: a
// notification when tasks stalled for memory for Threshold percent of a
// window (one second, or two where the kernel allows unprivileged
// triggers only, whose windows are multiples of two seconds; the kernel
// tells at most once a window). Where there is no PSI, or no right to a
// trigger, it fails, and xpcd asks on a timer.
func (p PSIMemory) NotifyPressure() (<-chan struct{}, func(), error) {
	path := orDefault(p.Path, "/proc/pressure/memory")
	th := p.Threshold
	if th == 0 {
		th = DefaultPressureThreshold
	}
	if th <= 0 || th >= 100 {
		return nil, nil, fmt.Errorf("%s: no trigger for a threshold of %v%%", path, th)
	}
	var fd int
	var err error
	for _, window := range []int{1e6, 2e6} { // µs
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		trigger := fmt.Sprintf("some %d %d\x00", int(th*float64(window)/100), window)
		if _, err = unix.Write(fd, []byte(trigger)); err == nil {
			break
		}
		unix.Close(fd)
		err = &os.PathError{Op: "write trigger " + strings.TrimRight(trigger, "\x00") + " to", Path: path, Err: err}
	}
	if err != nil {
		return nil, nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, nil, os.NewSyscallError("eventfd", err)
	}
	c := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c)
		defer unix.Close(fd)
		for {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}, {Fd: int32(efd), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
				return
			}
			if fds[1].Revents != 0 {
				return // stopped
			}
			if fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
				return // the trigger went (its cgroup was removed)
			}
			if fds[0].Revents&unix.POLLPRI != 0 {
				select {
				case c <- struct{}{}:
				default:
				}
			}
		}
	}()
	stop := func() {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(efd, one[:])
		<-done
		unix.Close(efd)
	}
	return c, stop, nil
}

// parsePSISomeAvg10 reads avg10 from the "some" line:
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=0
func parsePSISomeAvg10(b []byte) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "some" {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "avg10="); ok {
				return strconv.ParseFloat(v, 64)
			}
		}
	}
	return 0, fmt.Errorf("no \"some avg10\" value")
}

// monitor runs a function in its own goroutine until closed: the pressure
// and executable watchers, which look at the system (blocking reads)
// outside the supervisor's loop. run returns when stop is closed; wake,
// if set, makes close end a run blocked elsewhere (in a poll).
type monitor struct {
	label string
	run   func(stop <-chan struct{})
	wake  func()

	stop chan struct{}
	wg   sync.WaitGroup
}

func (mo *monitor) name() string { return mo.label }

func (mo *monitor) start(context.Context) error {
	mo.stop = make(chan struct{})
	mo.wg.Add(1)
	go func() {
		defer mo.wg.Done()
		mo.run(mo.stop)
	}()
	return nil
}

func (mo *monitor) close(ctx context.Context) error {
	if mo.stop == nil {
		return nil
	}
	close(mo.stop)
	if mo.wake != nil {
		mo.wake()
	}
	mo.wg.Wait()
	return nil
}

// every calls tick every interval until stop is closed.
func every(stop <-chan struct{}, interval time.Duration, tick func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			tick()
		}
	}
}

// pressureMonitor asks src and tells the supervisor when there is pressure.
func pressureMonitor(m *supervisor, src PressureSource, interval time.Duration, log *slog.Logger) *monitor {
	return &monitor{label: "pressure", run: func(stop <-chan struct{}) {
		watchPressure(stop, src, interval, log, func() { m.post(m.pressure) })
	}}
}

// watchPressure calls pressed each time src says there is pressure: asked
// every interval, or, if src is a PressureNotifier that can notify, only
// around its notifications (PressureNotifier).
func watchPressure(stop <-chan struct{}, src PressureSource, interval time.Duration, log *slog.Logger, pressed func()) {
	failing := false
	ask := func() bool {
		on, err := src.UnderPressure()
		if err != nil {
			if !failing {
				log.Warn("memory pressure unknown", "err", err)
				failing = true
			}
			return false
		}
		failing = false
		if on {
			pressed()
		}
		return on
	}
	var notes <-chan struct{}
	if n, ok := src.(PressureNotifier); ok {
		c, cancel, err := n.NotifyPressure()
		if err != nil {
			log.Info("memory pressure: no notifications, asking on a timer", "err", err)
		} else {
			notes = c
			defer cancel()
		}
	}
	if notes == nil {
		every(stop, interval, func() { ask() })
		return
	}
	t := time.NewTimer(0) // asked at start: pressure may hold already
	defer t.Stop()
	var last time.Time // the last notification
	for {
		select {
		case <-stop:
			return
		case _, ok := <-notes:
			if !ok {
				log.Info("memory pressure: notifications ended, asking on a timer")
				every(stop, interval, func() { ask() })
				return
			}
			last = time.Now()
			t.Reset(0)
		case <-t.C:
			if ask() || time.Since(last) < pressureLinger {
				t.Reset(interval)
			}
		}
	}
}

// exeMonitor notices running services whose executable was replaced
// (device, inode, size or modification time differ from when it started)
// and tells the supervisor, which restarts them once clean. It watches
// their paths with inotify (exewatch.go); interval is how often it looks
// at what it cannot watch.
func exeMonitor(m *supervisor, interval time.Duration) *monitor {
	w := &exeWatch{m: m, interval: interval, efd: -1}
	m.exeWatch = w
	return &monitor{label: "upgrades", run: w.run, wake: w.kick}
}

// exeWatched is a running instance's executable, as it was at launch.
type exeWatched struct {
	inst  *instance
	path  string
	id    fileID
	ident func() (*ident, error) // the job's user; nil: xpcd's own
}

// changedExecutables returns the instances whose executable is no longer
// the one they started from. Each is looked at as its job's user (one
// thread per user, not per job), so that a job's program path, which its
// user may point anywhere through a symbolic link, tells them nothing
// about files they cannot see.
func changedExecutables(list []exeWatched) []*instance {
	byUser, ids := groupByUser(list)
	var out []*instance
	for key, ws := range byUser {
		asUser(ids[key], func() error {
			for _, w := range ws {
				id, err := statID(w.path)
				if err == nil && id != w.id { // an error: being replaced, or gone; look again later
					out = append(out, w.inst)
				}
			}
			return nil
		})
	}
	return out
}

// groupByUser groups list by the identity each is looked at as, which it
// resolves (a job whose user cannot be resolved is left out).
func groupByUser(list []exeWatched) (map[string][]exeWatched, map[string]*ident) {
	byUser := map[string][]exeWatched{}
	ids := map[string]*ident{}
	for _, w := range list {
		var id *ident
		if w.ident != nil {
			var err error
			if id, err = w.ident(); err != nil {
				continue
			}
		}
		key := ""
		if !id.privileged() {
			key = fmt.Sprint(id.uid, id.gid, id.groups)
		}
		byUser[key] = append(byUser[key], w)
		ids[key] = id
	}
	return byUser, ids
}
