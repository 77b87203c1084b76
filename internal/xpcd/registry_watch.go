package xpcd

import (
	"cmp"
	"context"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// app-watch: a watcher (watch.go) of one registration's status. It counts
// with the job watchers against maxWatchersPerUser, is bounded by
// watchLimit unsent messages as they are, and goes when its connection
// does.

// appWatch is what an app watcher watches.
type appWatch struct {
	uid  uint32
	a    appArgs
	rd   *bundleRead // nil: the bundle was not there when the watch began
	last string      // the status last sent
}

// startAppWatch: {"op":"app-watch","path","app_kind","app_plist"}. The
// reply comes first, then {"status": S} now and at every change.
func (ss *session) startAppWatch(ctx context.Context, msg *xpc.Message) {
	a, oe := parseAppArgs(msg.Body)
	if oe != nil {
		ss.fail(ctx, msg, oe)
		return
	}
	rd, oe := ss.readForLookup(a)
	if oe != nil {
		ss.fail(ctx, msg, oe)
		return
	}
	if ss.watch != nil {
		ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBadRequest, desc: "app-watch: this connection already watches"})
		return
	}
	w := &watcher{uid: ss.peer.UID, bucket: ss.bucket, app: &appWatch{uid: ss.peer.UID, a: a, rd: rd}}
	w.ch = newChannel(ss.conn, watchLimit)
	msg.Defer()
	var refused *opError
	if e := ss.do(func() {
		m := ss.m
		m.reg.init()
		if refused = m.addWatcher(w, msg); refused == nil {
			m.sendAppStatus(w)
		}
	}); e != nil || refused != nil {
		w.ch.close()
		ss.fail(ctx, msg, cmp.Or(e, refused))
		return
	}
	ss.watch = w
}

// appStatusFor is the status an app watcher sees now: its
// registration's. For a bundle that was not there when the watch began
// (not-found, as Status says), the registration made from its path, if
// one is made (the bundle was put there and registered), else not-found.
func (m *supervisor) appStatusFor(aw *appWatch) string {
	if aw.rd == nil {
		if r := m.findReg(aw.uid, aw.a, nil); r != nil {
			return r.status()
		}
		return bootstrap.AppStatusNotFound
	}
	return m.findReg(aw.uid, aw.a, aw.rd).status()
}

// sendAppStatus sends w its status if it changed.
func (m *supervisor) sendAppStatus(w *watcher) {
	st := m.appStatusFor(w.app)
	if st == w.app.last {
		return
	}
	w.app.last = st
	if !w.ch.send(outItem{msg: xpc.Dict(bootstrap.KeyStatus, st)}) {
		delete(m.watchers, w)
	}
}

// appChanged tells the app watchers of a change of the registry.
func (m *supervisor) appChanged() {
	for w := range m.watchers {
		if w.app != nil {
			m.sendAppStatus(w)
		}
	}
}
