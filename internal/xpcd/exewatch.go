package xpcd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The upgrades monitor notices running services whose executable was
// replaced without looking at them on a timer. An inotify instance
// watches, for each running executable's path, every inode reached
// resolving it (each directory on the way, each symbolic link and what it
// leads to, and the file at the end) for itself: a link or file for being
// moved, deleted, or its link count or attributes changed, which is what
// renaming over it, unlinking it or renaming it away does (the kernel
// reports the link count of a file renamed over as IN_ATTRIB), and the
// file at the end for being written to too; a directory for being moved
// or deleted only (it cannot be renamed over, or removed, while it holds
// the path's next component, and its IN_ATTRIB would also report every
// file whose attributes or links change in it). A component that does not
// exist is watched for in its directory. Nothing else can change what stat of the path
// says but a mount over a directory on the way, which
// /proc/self/mountinfo's POLLPRI tells. Watching the inodes themselves,
// not their directories' entries, keeps a busy directory on the way (/tmp)
// from waking xpcd for every file made in it.
//
// An event, a mount change, or the loop saying that an instance started or
// ended (exesChanged) makes it watch the paths again (they may lead
// elsewhere now) and then look at each executable, as before. Watches are
// added as the job's user, as the look is made: inotify needs the right to
// read what it watches, and a job whose user cannot watch all of its
// path (or whose executable is given by a relative path) is looked at
// every Config.UpgradeInterval instead, while it runs.

const (
	// exeDirMask is what a directory on the way reports: moved or
	// deleted.
	exeDirMask = unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_DONT_FOLLOW | unix.IN_ONLYDIR
	// exeSelfMask is what a link on the way reports: moved, deleted, or
	// its attributes or link count changed.
	exeSelfMask = unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_DONT_FOLLOW
	// exeFileMask is what the executable itself reports: that, and its
	// contents written to.
	exeFileMask = exeSelfMask | unix.IN_MODIFY | unix.IN_CLOSE_WRITE
	// exeMissingMask is what the directory of a missing component
	// reports: an entry made or moved in.
	exeMissingMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_DONT_FOLLOW
)

// exeRewatchGap is the least time between two rewatches: what happens
// meanwhile (a package manager replacing many files, a user touching a
// file of theirs in a loop) makes one.
const exeRewatchGap = 100 * time.Millisecond

// exeSpot is one inode to watch for an executable's path.
type exeSpot struct {
	mask  uint32
	names map[string]bool // for a directory watched for missing names
}

// exeWatch is the upgrades monitor's state.
type exeWatch struct {
	m        *supervisor
	interval time.Duration // for what cannot be watched

	mu  sync.Mutex
	efd int // the eventfd kick writes; -1 when not running

	looks atomic.Int64 // looks at the executables, for tests

	// Owned by run's goroutine.
	ifd int
	wds map[int32]map[string]bool // watch -> the names in its directory that matter
}

// exesChanged tells the upgrades monitor that the running instances
// changed. Called by the loop; it never blocks.
func (m *supervisor) exesChanged() {
	if m.exeWatch != nil {
		m.exeWatch.kick()
	}
}

func (w *exeWatch) kick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.efd >= 0 {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(w.efd, one[:]) // EAGAIN only when the count is at its maximum: woken anyway
	}
}

// run watches until stop is closed (close calls kick to end a poll).
func (w *exeWatch) run(stop <-chan struct{}) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err == nil {
		w.ifd, err = unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
		if err != nil {
			unix.Close(efd)
		}
	}
	if err != nil {
		w.m.log.Warn("cannot watch executables; looking at them every interval", "err", err)
		every(stop, w.interval, func() { w.look(nil) })
		return
	}
	w.mu.Lock()
	w.efd = efd
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.efd = -1
		w.mu.Unlock()
		unix.Close(efd)
		unix.Close(w.ifd)
	}()
	mfd, err := unix.Open("/proc/self/mountinfo", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		mfd = -1 // polling -1 reports nothing
	}
	defer unix.Close(mfd)
	w.wds = map[int32]map[string]bool{}
	again, blind := true, false
	var last time.Time // the last rewatch
	for {
		select {
		case <-stop:
			return
		default:
		}
		timeout := -1
		switch wait := exeRewatchGap - time.Since(last); {
		case again && wait <= 0:
			blind = w.rewatch()
			again, last = false, time.Now()
		case again:
			timeout = max(1, int(wait.Milliseconds())) // events gather meanwhile
		}
		if blind && timeout < 0 {
			timeout = max(1, int(w.interval.Milliseconds()))
		}
		more, err := w.wait(efd, mfd, timeout, !again)
		if err != nil {
			w.m.log.Warn("watching executables", "err", err)
			every(stop, w.interval, func() { w.look(nil) })
			return
		}
		again = again || more
	}
}

// wait polls inotify, the kick eventfd and the mount table for timeout
// ms (-1: until one of them has something), and tells whether the paths
// must be watched again. look: a poll that timed out is the interval of
// what cannot be watched, and looks at the executables.
func (w *exeWatch) wait(efd, mfd, timeout int, look bool) (again bool, err error) {
	fds := []unix.PollFd{{Fd: int32(w.ifd), Events: unix.POLLIN}, {Fd: int32(efd), Events: unix.POLLIN},
		{Fd: int32(mfd), Events: unix.POLLPRI}}
	n, err := unix.Poll(fds, timeout)
	switch {
	case errors.Is(err, unix.EINTR):
		return false, nil
	case err != nil:
		return false, os.NewSyscallError("poll", err)
	case n == 0 && look:
		w.look(nil)
	}
	if fds[1].Revents != 0 {
		var b [8]byte
		unix.Read(efd, b[:])
		again = true
	}
	if fds[2].Revents != 0 {
		again = true // a mount or unmount
	}
	if fds[0].Revents != 0 && w.readEvents() {
		again = true
	}
	return again, nil
}

// readEvents reads what inotify has and tells whether any of it matters:
// an event for a name on a watched path, on a watched directory itself, or
// a lost event.
func (w *exeWatch) readEvents() bool {
	var buf [16 << 10]byte
	hit := false
	for {
		n, err := unix.Read(w.ifd, buf[:])
		if err != nil || n <= 0 {
			return hit
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			end := off + unix.SizeofInotifyEvent + int(ev.Len)
			if end > n {
				break
			}
			name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:end], "\x00"))
			off = end
			names, ok := w.wds[ev.Wd]
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0:
				hit = true
			case !ok:
			case name == "" || names[name]:
				hit = true
			}
		}
	}
}

// Bounds on the upgrades monitor's watches (bootstrap.RuleWatchLimit's
// kind, but never refused: past them an executable is looked at every
// interval instead). Every watch counts against root's inotify limit
// (fs.inotify.max_user_watches), which everything root runs shares, and a
// user chooses how deep their program's path goes and how many symbolic
// links it runs through.
const (
	// maxExeSpots is the most components (so inodes) resolving one
	// executable's path may reach, each symbolic link's included; the
	// walk stops there and the path is not watched.
	maxExeSpots = 128
	// maxExeSpotsPerUser is the most inodes watched for the executables
	// of one user's (bucket's) jobs together; root's are not counted.
	maxExeSpotsPerUser = 1024
)

// rewatch watches the paths of the running instances' executables, each
// as its job's user, drops the watches no longer needed, and then looks at
// the executables. It reports whether some executable could not be
// watched (and must be looked at every interval).
func (w *exeWatch) rewatch() (blind bool) {
	list, ok := w.running()
	if !ok {
		return false
	}
	byUser, ids := groupByUser(list)
	want, paths, blind := w.plan(byUser, ids)
	need := map[int32]map[string]bool{}
	for key, ps := range paths {
		err := asUser(ids[key], func() error {
			for _, p := range ps {
				wd, err := unix.InotifyAddWatch(w.ifd, p, want[p].mask)
				if err != nil {
					blind = true
					continue
				}
				if need[int32(wd)] == nil {
					need[int32(wd)] = map[string]bool{}
				}
				maps.Copy(need[int32(wd)], want[p].names)
			}
			return nil
		})
		blind = blind || err != nil
	}
	for wd := range w.wds {
		if need[wd] == nil {
			unix.InotifyRmWatch(w.ifd, uint32(wd))
		}
	}
	w.wds = need
	w.look(list) // after the watches: a change from here on is seen
	return blind
}

// plan says what to watch for each user's executables, as that user: the
// same inode for several jobs once with what each needs (a watch's mask
// is replaced by each add); paths lists each user's. An executable whose
// path needs more than maxExeSpots, or more than its user has left of
// maxExeSpotsPerUser, is not watched, and blind says so.
func (w *exeWatch) plan(byUser map[string][]exeWatched, ids map[string]*ident) (want map[string]*exeSpot, paths map[string][]string, blind bool) {
	want, paths = map[string]*exeSpot{}, map[string][]string{}
	used := map[uint32]map[string]bool{} // by bucket: the paths watched for its executables
	for key, ws := range byUser {
		id := ids[key]
		var counted map[string]bool
		if !id.privileged() {
			b := w.m.buckets.of(id.uid)
			if used[b] == nil {
				used[b] = map[string]bool{}
			}
			counted = used[b]
		}
		err := asUser(id, func() error {
			for _, x := range ws {
				spots, ok := exeSpots(x.path)
				if ok && counted != nil && !fitSpots(counted, spots) {
					ok = false
				}
				if !ok {
					blind = true
					continue
				}
				for p, sp := range spots {
					if want[p] == nil {
						want[p] = &exeSpot{names: map[string]bool{}}
					}
					want[p].mask |= sp.mask
					maps.Copy(want[p].names, sp.names)
					paths[key] = append(paths[key], p)
				}
			}
			return nil
		})
		blind = blind || err != nil
	}
	return want, paths, blind
}

// fitSpots adds spots' paths to counted, a user's, if they fit in
// maxExeSpotsPerUser together, and tells whether they did.
func fitSpots(counted map[string]bool, spots map[string]exeSpot) bool {
	n := len(counted)
	for p := range spots {
		if !counted[p] {
			n++
		}
	}
	if n > maxExeSpotsPerUser {
		return false
	}
	for p := range spots {
		counted[p] = true
	}
	return true
}

// running lists the running instances whose executable is watched for
// replacement.
func (w *exeWatch) running() ([]exeWatched, bool) {
	m := w.m
	var list []exeWatched
	err := m.call(context.Background(), func() {
		for _, inst := range m.byPID {
			if !inst.upgrade && inst.stopWhy == "" && inst.exe != (fileID{}) {
				list = append(list, exeWatched{inst, inst.def.Executable(), inst.exe, m.identOf(inst.job)})
			}
		}
	})
	return list, err == nil
}

// look tells the loop of each instance whose executable changed; with
// list nil, it lists them first.
func (w *exeWatch) look(list []exeWatched) {
	if list == nil {
		var ok bool
		if list, ok = w.running(); !ok {
			return
		}
	}
	w.looks.Add(1)
	for _, inst := range changedExecutables(list) {
		w.m.post(func() { w.m.upgradeDetected(inst) })
	}
}

// exeSpots returns what to watch for path, as the calling thread's user
// sees it: each inode reached resolving it, symbolic links and their
// targets' components included, for itself, and the directory of a
// missing component for its name. ok is false if it could not follow the
// path through what exists (a relative path, a loop, a component it may
// not look at).
func exeSpots(path string) (spots map[string]exeSpot, ok bool) {
	spots = map[string]exeSpot{}
	if !filepath.IsAbs(path) {
		return spots, false
	}
	last := ""
	visits := 0
	err := walkPath(path, func(next string, st *unix.Stat_t, _ bool) error {
		// Each component reached counts, again or not: the walk is
		// bounded, not only what it finds.
		if visits++; visits > maxExeSpots {
			return errTooManySpots
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			spots[next] = exeSpot{mask: exeDirMask}
		} else {
			spots[next] = exeSpot{mask: exeSelfMask}
		}
		last = next
		return nil
	})
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe) && pe.Op == "lstat" && errors.Is(err, unix.ENOENT):
		dir := filepath.Dir(pe.Path)
		if _, seen := spots[dir]; !seen && len(spots) >= maxExeSpots {
			return spots, false
		}
		spots[dir] = exeSpot{mask: exeDirMask | exeMissingMask, names: map[string]bool{filepath.Base(pe.Path): true}}
		return spots, true
	case err != nil:
		return spots, false
	}
	if last != "" {
		spots[last] = exeSpot{mask: exeFileMask}
	}
	return spots, true
}

// errTooManySpots: a path needs more than maxExeSpots watches.
var errTooManySpots = errors.New("too many inodes on the way")
