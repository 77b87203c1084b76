package xpcd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PressureSource tells whether the system is short of memory. xpcd asks it
// every Config.PressureInterval; while it says yes, clean services with
// EnablePressuredExit are stopped.
type PressureSource interface {
	UnderPressure() (bool, error)
}

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

// monitor runs a function every interval in its own goroutine: the
// pressure and executable watchers, which look at the system (blocking
// reads) outside the supervisor's loop.
type monitor struct {
	label    string
	interval time.Duration
	tick     func()

	stop chan struct{}
	wg   sync.WaitGroup
}

func (mo *monitor) name() string { return mo.label }

func (mo *monitor) start(context.Context) error {
	mo.stop = make(chan struct{})
	mo.wg.Add(1)
	go func() {
		defer mo.wg.Done()
		t := time.NewTicker(mo.interval)
		defer t.Stop()
		for {
			select {
			case <-mo.stop:
				return
			case <-t.C:
				mo.tick()
			}
		}
	}()
	return nil
}

func (mo *monitor) close(ctx context.Context) error {
	if mo.stop == nil {
		return nil
	}
	close(mo.stop)
	mo.wg.Wait()
	return nil
}

// pressureMonitor asks src and tells the supervisor when there is pressure.
func pressureMonitor(m *supervisor, src PressureSource, interval time.Duration, log *slog.Logger) *monitor {
	failing := false
	return &monitor{label: "pressure", interval: interval, tick: func() {
		on, err := src.UnderPressure()
		if err != nil {
			if !failing {
				log.Warn("memory pressure unknown", "err", err)
				failing = true
			}
			return
		}
		failing = false
		if on {
			m.post(m.pressure)
		}
	}}
}

// exeMonitor notices running services whose executable was replaced
// (device, inode, size or modification time differ from when it started)
// and tells the supervisor, which restarts them once clean.
func exeMonitor(m *supervisor, interval time.Duration) *monitor {
	return &monitor{label: "upgrades", interval: interval, tick: func() {
		var list []exeWatched
		if m.call(context.Background(), func() {
			for _, inst := range m.byPID {
				if !inst.upgrade && inst.stopWhy == "" && inst.exe != (fileID{}) {
					list = append(list, exeWatched{inst, inst.def.Executable(), inst.exe, m.identOf(inst.job)})
				}
			}
		}) != nil {
			return
		}
		for _, inst := range changedExecutables(list) {
			m.post(func() { m.upgradeDetected(inst) })
		}
	}}
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
