package xpcd

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A job's WatchPaths, QueueDirectories and KeepAlive PathState paths are
// watched with inotify: one inotify instance and one goroutine per job
// that has any of them, made when the job is scheduled (schedule.go) and
// closed when it is not. The watcher knows nothing of jobs: it reports "a
// watched path changed", "a queue directory may have changed" and "a
// PathState path may have appeared or gone" to a callback, and the
// supervisor decides (debounce, emptiness, launch) on its loop.
//
// For each path the watcher keeps two watches: one on the path itself, if
// it exists (modification, attributes, deletion, move; for a directory,
// entries created or removed), and one on its parent directory, for the
// path's name being created, removed or renamed over. When the parent
// does not exist either, the nearest existing ancestor is watched instead,
// and the watches move down as the directories appear. After any event
// that may have replaced the path (a new inode, as an editor's or a
// package manager's rename over it makes) the path is resolved again:
// both watches are re-added, and a change in whether the path exists, or
// in its device and inode, counts as a change of the path.

// pathWatcher watches paths for a job. run reports changes until close;
// close never blocks, and run returns soon after it. run must be called
// (once): it owns what the watcher holds and releases it when it returns.
type pathWatcher interface {
	// run adds the watches, reports once (queue or state true) if there
	// are queue directories or PathState paths, so that their first check
	// comes after the watches are in place, then reports changes until
	// closed. changed is called from run's goroutine. It returns nil once
	// closed, or why it could not watch at all.
	run(changed func(watch, queue, state bool)) error
	// pathState tells whether a PathState path exists, as last seen by
	// the job's user; known is false until it has been looked at.
	pathState(path string) (exists, known bool)
	close()
}

// watchSpec is what a job watches, and as whom.
type watchSpec struct {
	watch, queue, state []string
	// ident resolves the job's user (it reads the user database, so run
	// calls it, not the loop); nil: xpcd's own identity.
	ident func() (*ident, error)
	log   *slog.Logger
}

// newWatchFunc makes a pathWatcher for the paths given; it does not touch
// the file system (the loop calls it).
type newWatchFunc func(spec watchSpec) (pathWatcher, error)

const (
	// inDirMask is what a watched directory reports: entries created,
	// removed or renamed, and its own end.
	inDirMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
		unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	// inSelfMask is what a watched path reports: the above, and changes
	// of its contents or attributes.
	inSelfMask = inDirMask | unix.IN_MODIFY | unix.IN_ATTRIB
	// inEntryMask are the events that change a directory's entries.
	inEntryMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO
	// inGoneMask are the events after which a watch's inode is no longer
	// at its path, or no longer watched.
	inGoneMask = unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_IGNORED | unix.IN_UNMOUNT
)

// inotifyWatch is the pathWatcher of xpcd: inotify through a non-blocking
// descriptor made into a pollable *os.File, so that run's Read parks in
// the runtime's poller. close does not close the File (Close waits for a
// call in progress on it, and inotify_add_watch resolves a path, which may
// block): it sets a read deadline in the past, which wakes run's Read, and
// run closes the File as it returns.
type inotifyWatch struct {
	log     *slog.Logger
	ident   func() (*ident, error)
	stopped atomic.Bool

	mu     sync.Mutex
	f      *os.File        // nil until run has made it
	states map[string]bool // PathState path -> exists, as last resolved

	// Owned by run's goroutine.
	entries []*watchEntry
	byWD    map[int32][]wdUse
}

// watchEntry is one path being watched.
type watchEntry struct {
	path   string
	kind   int    // watchPath, queueDir or statePath
	self   int32  // the watch on path itself; -1 if none
	dir    string // the directory watched for path (or an ancestor) to appear
	dirWD  int32  // its watch; -1 if none
	exists bool
	id     [2]uint64 // device and inode of path, when it exists
}

// The kinds of watched path.
const (
	watchPath = iota // WatchPaths
	queueDir         // QueueDirectories
	statePath        // KeepAlive PathState
)

// wdUse is one entry's use of a watch descriptor: as its path's own watch
// (self) or as the directory watched for it. Several entries may share a
// descriptor (inotify gives one per inode).
type wdUse struct {
	e    *watchEntry
	self bool
}

func newInotifyWatch(spec watchSpec) (pathWatcher, error) {
	w := &inotifyWatch{log: spec.log, ident: spec.ident, byWD: map[int32][]wdUse{}, states: map[string]bool{}}
	for _, p := range spec.watch {
		w.entries = append(w.entries, &watchEntry{path: filepath.Clean(p), self: -1, dirWD: -1})
	}
	for _, p := range spec.queue {
		w.entries = append(w.entries, &watchEntry{path: filepath.Clean(p), kind: queueDir, self: -1, dirWD: -1})
	}
	for _, p := range spec.state {
		w.entries = append(w.entries, &watchEntry{path: filepath.Clean(p), kind: statePath, self: -1, dirWD: -1})
	}
	return w, nil
}

func (w *inotifyWatch) close() {
	w.stopped.Store(true)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.SetReadDeadline(time.Unix(1, 0))
	}
}

func (w *inotifyWatch) pathState(path string) (exists, known bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	exists, known = w.states[filepath.Clean(path)]
	return exists, known
}

// become gives run's goroutine the job's identity, on a thread of its own
// that ends with the goroutine (ident.go): the inotify instance counts
// against the user's limit, and every path is resolved and watched with
// the user's rights, so that a job learns nothing of paths its user could
// not look at.
func (w *inotifyWatch) become() error {
	if w.ident == nil || os.Geteuid() != 0 {
		return nil
	}
	id, err := w.ident()
	if err != nil || id.privileged() {
		return err
	}
	// Never unlocked: the thread dies with this goroutine.
	runtime.LockOSThread()
	return becomeUser(id)
}

// open makes the inotify instance.
func (w *inotifyWatch) open() error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return os.NewSyscallError("inotify_init1", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.f = os.NewFile(uintptr(fd), "inotify")
	if w.stopped.Load() {
		w.f.SetReadDeadline(time.Unix(1, 0))
	}
	return nil
}

func (w *inotifyWatch) run(changed func(watch, queue, state bool)) error {
	if err := w.become(); err != nil {
		return fmt.Errorf("taking the job's identity: %w", err)
	}
	if err := w.open(); err != nil {
		return err
	}
	defer w.f.Close()
	hasQueue, hasState := false, false
	for _, e := range w.entries {
		if w.stopped.Load() {
			return nil
		}
		w.resolve(e)
		hasQueue = hasQueue || e.kind == queueDir
		hasState = hasState || e.kind == statePath
	}
	if hasQueue || hasState {
		changed(false, hasQueue, hasState)
	}
	buf := make([]byte, 64<<10)
	for !w.stopped.Load() {
		n, err := w.f.Read(buf)
		if err != nil {
			if w.stopped.Load() {
				return nil
			}
			return fmt.Errorf("reading inotify events: %w", err)
		}
		if watch, queue, state := w.handle(buf[:n]); watch || queue || state {
			changed(watch, queue, state)
		}
	}
	return nil
}

// handle applies a read's events and tells whether a watched path, a
// queue directory or a PathState path changed.
func (w *inotifyWatch) handle(b []byte) (watch, queue, state bool) {
	again := map[*watchEntry]bool{} // entries to resolve again
	hit := func(e *watchEntry) {
		switch e.kind {
		case queueDir:
			queue = true
		case statePath:
			state = true
		default:
			watch = true
		}
	}
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		size := unix.SizeofInotifyEvent + int(ev.Len)
		if size > len(b) {
			break // cannot happen: the kernel returns whole events
		}
		name := ""
		if ev.Len > 0 {
			nb := b[unix.SizeofInotifyEvent:size]
			for i, c := range nb {
				if c == 0 {
					nb = nb[:i]
					break
				}
			}
			name = string(nb)
		}
		b = b[size:]
		if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
			// Events were lost: anything may have changed.
			for _, e := range w.entries {
				hit(e)
				again[e] = true
			}
			continue
		}
		for _, u := range w.byWD[ev.Wd] {
			e := u.e
			if u.self {
				switch {
				case ev.Mask&inGoneMask != 0:
					hit(e)
					again[e] = true
				case name != "" && ev.Mask&inEntryMask == 0:
					// A file inside a watched directory changed: not
					// a change of the directory (launchd watches the
					// directory's own vnode).
				default:
					hit(e)
				}
				continue
			}
			// The directory watched for e: its own end moves the watch
			// up; the next name on the way to e.path moves it down, and
			// is e's path itself when the directory is its parent.
			if ev.Mask&inGoneMask != 0 {
				again[e] = true
			} else if name != "" && name == nextName(e.dir, e.path) {
				if filepath.Dir(e.path) == e.dir {
					hit(e)
				}
				again[e] = true
			}
		}
	}
	for _, e := range w.entries {
		if again[e] && w.resolveChanged(e) {
			hit(e)
		}
	}
	return watch, queue, state
}

// nextName is the name under dir on the way to path: its first component
// after dir.
func nextName(dir, path string) string {
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == "." || rel == ".." || len(rel) > 2 && rel[:3] == "../" {
		return ""
	}
	if i := indexSep(rel); i >= 0 {
		return rel[:i]
	}
	return rel
}

func indexSep(s string) int {
	for i := range len(s) {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

// resolveChanged resolves e again and reports whether its path appeared,
// went, or became another inode.
func (w *inotifyWatch) resolveChanged(e *watchEntry) bool {
	exists, id := e.exists, e.id
	w.resolve(e)
	return exists != e.exists || id != e.id
}

// resolve (re)places e's watches: the nearest existing directory above its
// path, then the path itself. The directory comes first, so that a path
// created meanwhile is either found or reported. A directory below the one
// watched, made while its watch was added, was not seen by it: then the
// watches are placed again, from there.
func (w *inotifyWatch) resolve(e *watchEntry) {
	for range maxResolves {
		w.resolveOnce(e)
		if nearestDir(e.path) == e.dir {
			return
		}
	}
}

// maxResolves bounds how often resolve places a path's watches again while
// directories on its way keep appearing.
const maxResolves = 8

// nearestDir is the nearest existing directory above p.
func nearestDir(p string) string {
	dir := filepath.Dir(p)
	for dir != "/" && !isDir(dir) {
		dir = filepath.Dir(dir)
	}
	return dir
}

func (w *inotifyWatch) resolveOnce(e *watchEntry) {
	for try := 0; ; try++ {
		dir := nearestDir(e.path)
		before := dirID(dir)
		wd, err := w.add(dir, inDirMask)
		if err == nil && dirID(dir) != before && try < 3 {
			// Removed (or replaced) while the watch was added: the watch
			// may be on a directory that is gone, whose removal it will
			// never report. Look again.
			err = unix.ENOENT
		}
		if err != nil && try < 3 {
			continue // removed since we looked: look again
		}
		if err != nil {
			w.log.Warn("watching paths: cannot watch directory", "dir", dir, "path", e.path, "err", err)
			wd = -1
		}
		w.use(wd, e, false)
		e.dir = dir
		break
	}
	wd, err := w.add(e.path, inSelfMask)
	if err != nil {
		// It does not exist: the directory's watch waits for it.
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
			w.log.Warn("watching paths: cannot watch", "path", e.path, "err", err)
		}
		wd = -1
	}
	w.use(wd, e, true)
	var st unix.Stat_t
	e.exists = statNamed(e.path, &st) == nil
	e.id = [2]uint64{}
	if e.exists {
		e.id = [2]uint64{st.Dev, st.Ino}
	}
	if e.kind == statePath {
		w.mu.Lock()
		w.states[e.path] = e.exists
		w.mu.Unlock()
	}
}

// dirID is the identity of the directory at p, zero if there is none.
func dirID(p string) [2]uint64 {
	var st unix.Stat_t
	if statNamed(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return [2]uint64{}
	}
	return [2]uint64{st.Dev, st.Ino}
}

func isDir(p string) bool {
	var st unix.Stat_t
	return statNamed(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// statNamed is stat(2) of a path a user named, found as openNamed finds
// it: /proc's links to xpcd's open files are not followed, since xpcd's
// threads may follow them whoever they act as.
func statNamed(p string, st *unix.Stat_t) error {
	f, err := openNamed(p, unix.O_PATH, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fstat(int(f.Fd()), st)
}

// add adds (or extends: IN_MASK_ADD, as the inode may be watched for
// another entry too) a watch. The path is found as openNamed finds it,
// and the watch placed on what it found, through the kernel's link to
// that descriptor of this process (the one /proc link followed on
// purpose).
func (w *inotifyWatch) add(path string, mask uint32) (int32, error) {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return -1, err
	}
	target, err := openNamed(path, unix.O_PATH, 0)
	if err != nil {
		return -1, err
	}
	defer target.Close()
	found := "/proc/self/fd/" + strconv.Itoa(int(target.Fd()))
	var wd int
	var aerr error
	if err := rc.Control(func(fd uintptr) {
		wd, aerr = unix.InotifyAddWatch(int(fd), found, mask|unix.IN_MASK_ADD)
	}); err != nil {
		return -1, os.ErrClosed
	}
	if aerr != nil {
		return -1, aerr
	}
	return int32(wd), nil
}

// use makes wd e's self or directory watch, releasing the one it had.
func (w *inotifyWatch) use(wd int32, e *watchEntry, self bool) {
	old := &e.dirWD
	if self {
		old = &e.self
	}
	if *old == wd {
		return
	}
	if *old >= 0 {
		w.release(*old, e, self)
	}
	*old = wd
	if wd >= 0 {
		w.byWD[wd] = append(w.byWD[wd], wdUse{e: e, self: self})
	}
}

// release drops e's use of wd, and the watch when nothing uses it.
func (w *inotifyWatch) release(wd int32, e *watchEntry, self bool) {
	uses := w.byWD[wd]
	for i, u := range uses {
		if u.e == e && u.self == self {
			uses = append(uses[:i], uses[i+1:]...)
			break
		}
	}
	if len(uses) > 0 {
		w.byWD[wd] = uses
		return
	}
	delete(w.byWD, wd)
	if rc, err := w.f.SyscallConn(); err == nil {
		// EINVAL if the kernel dropped it already (its inode went).
		rc.Control(func(fd uintptr) { unix.InotifyRmWatch(int(fd), uint32(wd)) })
	}
}
