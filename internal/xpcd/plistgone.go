package xpcd

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// Plists that are deleted. As systemd forgets a unit whose file is gone
// once it has stopped, xpcd forgets a job loaded from one of its domain's
// directories (plistdir.go) once that plist is deleted:
//
//	not running   it is unloaded at once, as bootout would
//	running       it is marked (job.gone): not launched again (KeepAlive,
//	              demand, schedule, kickstart), lookups of its names are
//	              refused, and it is unloaded when its instance exits; the
//	              clients it has keep their connections
//	put back      a marked job whose plist is at the same path again is
//	              reloaded from it, as bootstrap reloads a job; a plist
//	              of another Label there leaves it marked
//
// A job whose plist is elsewhere (xpcctl bootstrap of another path) keeps
// launchd's meaning: its file is not watched. The load errors of plists
// that were deleted are dropped from list too. New plists are not loaded:
// that stays bootstrap's, or the next start's.
//
// The directories are watched with inotify (one pathWatcher for them all,
// as xpcd itself); after plistDebounce without changes the loop lists the
// plists of the jobs and load errors they concern, a goroutine looks at
// them (and reads those of marked jobs), and the loop applies what it
// found (plistsSeen). One look at a time; changes meanwhile make another.

// plistDebounce is how long the directories must be quiet before a look:
// an editor's or a package manager's replacement of a plist (a rename
// over it, or a delete and a write) is not a deletion.
const plistDebounce = 200 * time.Millisecond

// plistWatch is the watch on the domains' directories.
type plistWatch struct {
	w        pathWatcher
	debounce *time.Timer // reset by the watcher's goroutine; posts checkPlists

	// Owned by the loop.
	checking bool // a look is under way
	again    bool // a change came during it
}

// plistLook is one plist to look at: a job's (j) or a load error's (dom),
// and, once looked at, what was found.
type plistLook struct {
	j      *job
	dom    *domain
	path   string
	domain string // j's domain and owner, for reading the plist
	owner  uint32
	read   bool // j is marked: read the plist if it is there

	gone bool
	def  *launchd.Job
	errs []loadError
}

// watchPlistDirs starts watching the domains' directories (from start,
// before the loop runs).
func (m *supervisor) watchPlistDirs() {
	dirs := m.allDomainDirs()
	if len(dirs) == 0 {
		return
	}
	// As PathState paths: the watcher reports once its watches are in
	// place (so that a plist deleted before is found), then at each entry
	// of a directory added or removed, and a directory's own end.
	w, err := newInotifyWatch(watchSpec{state: dirs, log: m.log.With("watch", "plists")})
	if err != nil {
		m.log.Warn("plists: cannot watch the plist directories; deleted plists are not noticed", "err", err)
		return
	}
	pw := &plistWatch{w: w}
	pw.debounce = time.AfterFunc(time.Hour, func() { m.post(m.checkPlists) })
	pw.debounce.Stop()
	m.plists = pw
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		defer pw.debounce.Stop()
		err := w.run(func(_, _, _ bool) { pw.debounce.Reset(plistDebounce) })
		if err != nil {
			m.log.Warn("plists: cannot watch the plist directories; deleted plists are not noticed", "dirs", dirs, "err", err)
		}
	}()
}

// stopPlistWatch closes the watch (beginClose).
func (m *supervisor) stopPlistWatch() {
	if m.plists != nil {
		m.plists.w.close()
	}
}

// checkPlists starts a look at the plists the directories' change may
// concern.
func (m *supervisor) checkPlists() {
	pw := m.plists
	if pw == nil || m.closing {
		return
	}
	if pw.checking {
		pw.again = true
		return
	}
	looks := m.plistsToLook()
	if len(looks) == 0 {
		return
	}
	pw.checking = true
	m.log.Debug("plists: looking at those of the domains' directories", "plists", len(looks))
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		for i := range looks {
			looks[i].lookAt()
		}
		m.post(func() { m.plistsSeen(looks) })
	}()
}

// plistsToLook lists the plists in the domains' directories that jobs
// were loaded from, and those of load errors.
func (m *supervisor) plistsToLook() []plistLook {
	var looks []plistLook
	for _, d := range m.sortedDomains() {
		dirs := m.domainDirs(d.name)
		if len(dirs) == 0 {
			continue
		}
		for _, label := range sortedKeys(d.jobs) {
			j := d.jobs[label]
			if p := sourcePath(j); !j.unloading && inDomainDir(p, dirs) {
				looks = append(looks, plistLook{j: j, path: p, domain: d.name, owner: d.owner, read: j.gone != ""})
			}
		}
		for _, le := range d.errors {
			if inDomainDir(le.File, dirs) || slices.Contains(dirs, filepath.Clean(le.File)) {
				looks = append(looks, plistLook{dom: d, path: le.File})
			}
		}
	}
	return looks
}

// sourcePath is the plist the job's next instance is defined by.
func sourcePath(j *job) string {
	if j.next != nil {
		return j.next.Path
	}
	return j.def.Path
}

// lookAt looks at the plist, off the loop, with xpcd's rights, as the job
// store reads these directories. Only a plist that does not exist is
// gone: any other error leaves things as they are.
func (l *plistLook) lookAt() {
	_, err := os.Stat(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		l.gone = true
		return
	}
	if err == nil && l.read {
		l.def, l.errs = loadPlist(l.domain, l.owner, l.path)
	}
}

// plistsSeen applies a look's findings, for the jobs and load errors that
// are still as they were when it began.
func (m *supervisor) plistsSeen(looks []plistLook) {
	pw := m.plists
	pw.checking = false
	if m.closing {
		return
	}
	for _, l := range looks {
		switch {
		case l.j == nil:
			if l.gone {
				m.dropLoadError(l.dom, l.path)
			}
		case l.j.removed || l.j.unloading || sourcePath(l.j) != l.path:
		case l.gone:
			m.plistDeleted(l.j, l.path)
		case l.j.gone != "" && l.def != nil && l.def.Label != l.j.def.Label:
			// Labels are unique in a domain, and the job is known by
			// its own: this is another job's plist.
			m.log.Error("plist put back with another Label; the job stays marked deleted", "target", l.j.target(), "file", l.path, "label", l.def.Label)
		case l.j.gone != "" && l.def != nil:
			m.plistBack(l.j, l.def)
		case l.j.gone != "" && l.errs != nil:
			for _, le := range l.errs {
				m.log.Error("plist put back, but rejected; the job stays marked deleted", "target", l.j.target(), "file", le.File, "key", le.Key, "reason", le.Reason)
			}
		}
	}
	if pw.again {
		pw.again = false
		m.checkPlists()
	}
}

// plistDeleted marks j, whose plist path was deleted; a job that does not
// run is unloaded at once.
func (m *supervisor) plistDeleted(j *job, path string) {
	if j.gone != "" {
		return
	}
	j.gone = path
	m.log.Info("plist deleted", "target", j.target(), "plist", path, "running", j.inst != nil)
	j.cancelThrottle()
	m.syncSchedule(j)
	if j.inst == nil {
		m.forgetJob(j)
		return
	}
	m.changed(j)
}

// forgetJob unloads a marked job that does not run: the clients waiting
// for it are told why.
func (m *supervisor) forgetJob(j *job) {
	m.refuseWaiting(j, func(p *pending) *opError {
		return retryRefusal(bootstrap.ReasonNotFound, "service %s: %s", p.name, plistDeletedText(j))
	})
	m.finishUnload(j)
}

// plistBack reloads a marked job from its plist, put back: as bootstrap
// would, the same contents keep the job as it is, others upgrade it.
func (m *supervisor) plistBack(j *job, def *launchd.Job) {
	path := j.gone
	j.gone = ""
	status, oe := m.redefine(j, def)
	if oe != nil {
		j.gone = path
		m.log.Error("plist put back, but not reloaded; the job stays marked deleted", "target", j.target(), "err", oe.desc)
		return
	}
	m.log.Info("plist put back: reloaded", "target", j.target(), "plist", def.Path, "status", status)
	m.syncSchedule(j)
	m.changed(j)
}

// dropLoadError drops d's load errors of the plist path, which was
// deleted.
func (m *supervisor) dropLoadError(d *domain, path string) {
	d.errors = slices.DeleteFunc(d.errors, func(le loadError) bool { return le.File == path })
}
