package xpcd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The upgrades monitor notices running services whose executable was
// replaced without looking at them on a timer: an inotify instance watches
// every directory whose entries decide what an executable's path names
// (the parent of each component of the path, and of each symbolic link
// met resolving it, the targets' too) for the entry named on the way
// being created, removed or renamed, and the file the path leads to for
// being written to or its attributes changed. Nothing else can change
// what stat of the path says, but a mount over a directory on the way,
// which /proc/self/mountinfo's POLLPRI tells. (Only entry changes are
// asked of directories: the writes to other files of a busy directory
// such as /tmp would wake xpcd for nothing.) An
// event, a mount change, or the loop saying that an instance started or
// ended (exesChanged) makes it watch the paths again (they may name
// other directories now) and then look at each executable, as before.
// Watches are added as the job's user, as the look is made: inotify needs
// the right to read a directory, and a job whose user cannot watch one of
// its directories (or an executable given by a relative path) is looked
// at every Config.UpgradeInterval instead, while it runs.

const (
	// exeDirMask is what a directory on the way reports: its entries
	// created, removed or renamed, and its own end.
	exeDirMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
		unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW
	// exeFileMask is what the executable itself reports: its contents
	// or attributes changed (its size and modification time among them).
	exeFileMask = unix.IN_ATTRIB | unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_DELETE_SELF |
		unix.IN_MOVE_SELF | unix.IN_DONT_FOLLOW
)

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
	again := true
	blind := false
	for {
		select {
		case <-stop:
			return
		default:
		}
		if again {
			blind = w.rewatch()
			again = false
		}
		timeout := -1
		if blind {
			timeout = int(w.interval.Milliseconds())
		}
		fds := []unix.PollFd{{Fd: int32(w.ifd), Events: unix.POLLIN}, {Fd: int32(efd), Events: unix.POLLIN},
			{Fd: int32(mfd), Events: unix.POLLPRI}}
		n, err := unix.Poll(fds, timeout)
		switch {
		case err != nil && !errors.Is(err, unix.EINTR):
			w.m.log.Warn("watching executables", "err", err)
			every(stop, w.interval, func() { w.look(nil) })
			return
		case n == 0 && err == nil:
			w.look(nil) // the interval, for what is not watched
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
	}
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

// rewatch watches the directories of the running instances' executables,
// each as its job's user, drops the watches no longer needed, and then
// looks at the executables. It reports whether some executable could not
// be watched (and must be looked at every interval).
func (w *exeWatch) rewatch() (blind bool) {
	list, ok := w.running()
	if !ok {
		return false
	}
	need := map[int32]map[string]bool{}
	byUser, ids := groupByUser(list)
	for key, ws := range byUser {
		err := asUser(ids[key], func() error {
			for _, x := range ws {
				if !w.watchPath(x.path, need) {
					blind = true
				}
			}
			return nil
		})
		if err != nil {
			blind = true
		}
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

// watchPath adds the watches for path (as the calling thread's user) into
// need; false if it could not watch all it should.
func (w *exeWatch) watchPath(path string, need map[int32]map[string]bool) bool {
	dirs, file, ok := resolveDirs(path)
	if file != "" {
		wd, err := unix.InotifyAddWatch(w.ifd, file, exeFileMask)
		if err != nil {
			ok = false
		} else if need[int32(wd)] == nil {
			need[int32(wd)] = map[string]bool{}
		}
	}
	for dir, names := range dirs {
		wd, err := unix.InotifyAddWatch(w.ifd, dir, exeDirMask)
		if err != nil {
			ok = false
			continue
		}
		if need[int32(wd)] == nil {
			need[int32(wd)] = map[string]bool{}
		}
		for n := range names {
			need[int32(wd)][n] = true
		}
	}
	return ok
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

// resolveDirs returns the directories whose entries decide what path
// names, each with the names in it that matter: the parent of each
// component of path and of every symbolic link's target met resolving it,
// as the calling thread's user sees them; and the path, without links, of
// the file it leads to ("" if none). ok is false if it could not
// follow the path to its end through what exists (a relative path, a
// loop, a component it may not look at); a component that does not
// exist ends it with ok true: its directory is watched for it to appear.
func resolveDirs(path string) (dirs map[string]map[string]bool, file string, ok bool) {
	dirs = map[string]map[string]bool{}
	if !filepath.IsAbs(path) {
		return dirs, "", false
	}
	add := func(p string) {
		dir, name := filepath.Dir(p), filepath.Base(p)
		if dirs[dir] == nil {
			dirs[dir] = map[string]bool{}
		}
		dirs[dir][name] = true
	}
	err := walkPath(path, func(next string, st *unix.Stat_t, _ bool) error {
		add(next)
		file = next // the last one reached is where path leads
		return nil
	})
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Op == "lstat" && errors.Is(err, unix.ENOENT) {
		add(pe.Path) // watched for it to appear
		return dirs, "", true
	}
	return dirs, file, err == nil
}
