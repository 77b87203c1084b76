package xpcd

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bundle"
)

// Which application bundle a client was started from. A process started
// from a bundle is its main executable or one of its XPC services: the
// executable it runs, read through /proc/PID/exe while the client's
// pidfd shows it alive before and after, is where bundle.Find finds it,
// and bundle.Read reads the bundle, both with the client's own rights
// (asUser): xpcd opens nothing in a user's bundle as root. This happens
// in the session's goroutine, once per session (a session's process is
// fixed, and lookupClient refuses its lookups once it runs another
// program), never on the loop.

// pidClient is a process as the pid domain sees it.
type pidClient struct {
	pid    int
	start  uint64 // its start time: pid and start identify the process
	uid    uint32
	bucket uint32
	exe    string         // the executable it ran when resolved
	b      *bundle.Bundle // nil: not started from a bundle
	// untrusted says, for each System service of b, why root cannot
	// trust its path (rule bundle-trust); absent: trusted.
	untrusted map[string]error
	// session is its login session's variables (apps_session.go), read
	// only when a service of b joins it.
	session map[string]string
}

// appOf is the session's process as an pidClient, resolved on first use
// and kept (nil if it cannot be read: it has exited). Called from the
// session's handler only.
func (ss *session) appOf() *pidClient {
	if ss.appDone {
		return ss.app
	}
	ss.appDone = true
	ss.app = ss.s.apps.resolve(ss.peer, ss.bucket)
	if ss.app != nil && ss.app.b != nil {
		// Names of a bundle its user has run, for not-in-bundle
		// (apps.known); and where the bundle now is, for the user's
		// registrations of it (bundleSeen: a moved application's follow
		// it). Its identity is read with the user's rights too.
		app := ss.app
		var id bundle.Identity
		var idErr error
		asUser(callerIdent(ss.peer.UID, ss.peer.GID, true), func() error {
			id, idErr = app.b.Identify(ss.m.trust)
			return nil
		})
		ss.m.post(func() {
			ss.m.apps.remember(app)
			if idErr == nil {
				ss.m.bundleSeen(id, app.b.Root, app.uid)
			}
		})
	}
	return ss.app
}

// plainExes remembers, for a while, the executables that are in no
// bundle as their users see them: most sessions are of such processes,
// and each would otherwise pay a thread with the user's identity
// (asUser) and bundle.Find's look around the executable. Its methods are
// safe for concurrent use.
type plainExes struct {
	mu sync.Mutex
	m  map[plainKey]time.Time // when it was found in no bundle
}

// plainKey is an executable, by path and file, as a user sees it.
type plainKey struct {
	path     string
	exe      exeID
	uid, gid uint32
}

const (
	// plainTTL is how long an executable found in no bundle is taken
	// to be in none: a bundle made around it is seen after that.
	plainTTL = 2 * time.Second
	// maxPlainExes bounds plainExes; past it, it starts afresh.
	maxPlainExes = 1024
)

// resolve reads which bundle p was started from, with p's rights; nil
// if p has gone.
func (c *plainExes) resolve(p *xpc.Peer, bucket uint32) *pidClient {
	if p.PID <= 0 || !p.Alive() {
		return nil
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(p.PID) + "/exe")
	start, serr := startTime(p.PID)
	id := exeOfPID(p.PID)
	if err != nil || serr != nil || id == (exeID{}) || !p.Alive() {
		return nil
	}
	app := &pidClient{pid: p.PID, start: start, uid: p.UID, bucket: bucket, exe: exe}
	key := plainKey{path: exe, exe: id, uid: p.UID, gid: p.GID}
	c.mu.Lock()
	at, ok := c.m[key]
	c.mu.Unlock()
	if ok && time.Since(at) < plainTTL {
		return app
	}
	asUser(callerIdent(p.UID, p.GID, true), func() error {
		app.b, app.untrusted = readAppBundle(p.PID, exe)
		if app.b != nil && anyJoinsSession(app.b) && !setID(p) {
			app.session = readSession(p.PID)
		}
		return nil
	})
	if app.session != nil && !p.Alive() {
		return nil // the environment read may be another process's
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if app.b != nil {
		delete(c.m, key)
		return app
	}
	if c.m == nil || len(c.m) >= maxPlainExes {
		c.m = map[plainKey]time.Time{}
	}
	c.m[key] = time.Now()
	return app
}

// readAppBundle finds and reads the bundle that process pid, running exe
// (its /proc/PID/exe), was started from (nil if none, or a malformed
// one), and checks the path of each of its System services (untrusted).
// Run with the client's rights.
func readAppBundle(pid int, exe string) (*bundle.Bundle, map[string]error) {
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return nil, nil
	}
	b, err := bundle.FindBundle(exe, fi)
	if err != nil {
		return nil, nil
	}
	var untrusted map[string]error
	for _, s := range b.Services {
		if s.Type != bundle.System {
			continue
		}
		if err := systemServiceTrusted(b, s); err != nil {
			if untrusted == nil {
				untrusted = map[string]error{}
			}
			untrusted[s.Identifier] = err
		}
	}
	return b, untrusted
}

// systemServiceTrusted checks that nobody but root can change what a
// System service runs: its executable, its Info.plist, the bundle's
// Info.plist, and every directory above them (checkTrusted).
func systemServiceTrusted(b *bundle.Bundle, s *bundle.Service) error {
	paths := []string{s.Executable}
	for _, p := range []string{
		filepath.Join(s.Dir, "Info.plist"), filepath.Join(s.Dir, "Contents", "Info.plist"),
		filepath.Join(b.Root, "Info.plist"), filepath.Join(b.Root, "Contents", "Info.plist"),
	} {
		if _, err := os.Lstat(p); err == nil {
			paths = append(paths, p)
		}
	}
	for _, p := range paths {
		if err := checkTrusted(p, []uint32{0}, true); err != nil {
			return err
		}
	}
	return nil
}
