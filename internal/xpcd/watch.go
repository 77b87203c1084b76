package xpcd

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// Watchers (xpcctl watch): connections sent a job's dictionary each time
// it changes.

// watcher is a connection that asked for state changes.
type watcher struct {
	ch     *channel
	uid    uint32
	bucket uint32    // what it counts under (buckets)
	dom    string    // "" for every domain the caller may read
	label  string    // "" for every job
	app    *appWatch // an app-watch (registry_watch.go): no job events
}

func (w *watcher) matches(j *job) bool {
	if w.app != nil {
		return false
	}
	if w.dom != "" && w.dom != j.dom.name {
		return false
	}
	if w.label != "" && w.label != j.def.Label {
		return false
	}
	return mayRead(w.uid, j.dom.name, j.dom.owner)
}

// changed notes a possible change of the job: its since, and the watchers.
func (m *supervisor) changed(j *job) {
	if j.removed {
		return
	}
	if st := j.stateOf(); st != j.state {
		j.state = st
		j.since = time.Now()
	}
	if len(m.watchers) == 0 {
		j.lastSent = nil
		return
	}
	d := m.jobDict(j)
	if j.lastSent != nil && xpc.Equal(d, j.lastSent) {
		return
	}
	j.lastSent = d
	m.notify(j, d)
}

func (m *supervisor) notify(j *job, d *xpc.Dictionary) {
	for w := range m.watchers {
		if w.matches(j) && !w.ch.send(outItem{msg: xpc.Dict(bootstrap.KeyEvent, d)}) {
			delete(m.watchers, w)
		}
	}
}

// startWatch: {"op":"watch","target":TARGET?}. The reply comes first, then
// one {"event": JOB} message for every job the caller may read (matching
// the target), then one for each change until the connection ends. A job
// booted out gets a last event with state "unloaded". A watcher that falls
// watchLimit events behind gets {"overflow": true} and no more.
func (ss *session) startWatch(ctx context.Context, msg *xpc.Message) {
	w := &watcher{uid: ss.peer.UID, bucket: ss.bucket}
	ss.ensureOwn()
	if ts, err := msg.Body.String(bootstrap.KeyTarget); err == nil && ts != "" {
		t, oe := ss.targetArg(msg.Body, false)
		if oe != nil {
			ss.fail(ctx, msg, oe)
			return
		}
		if !mayRead(ss.peer.UID, t.Domain, t.UID) {
			ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonDenied, desc: fmt.Sprintf("watch %s: uid %d may not read that domain", t, ss.peer.UID)})
			return
		}
		w.dom, w.label = t.Domain, t.Label
	}
	if ss.watch != nil {
		ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBadRequest, desc: "watch: this connection already watches"})
		return
	}
	w.ch = newChannel(ss.conn, watchLimit)
	msg.Defer()
	var refused *opError
	if oe := ss.do(func() { refused = ss.m.addWatcher(w, msg) }); oe != nil || refused != nil {
		w.ch.close()
		ss.fail(ctx, msg, cmp.Or(oe, refused))
		return
	}
	ss.watch = w
}

// addWatcher starts sending w the jobs it may see, unless its user has
// maxWatchersPerUser watchers already (bootstrap.RuleWatcherLimit): each may
// hold up to watchLimit unsent events, which a watcher that stops reading
// leaves in xpcd's memory. Root has no such limit.
func (m *supervisor) addWatcher(w *watcher, msg *xpc.Message) *opError {
	if w.uid != 0 {
		n := 0
		for o := range m.watchers {
			if o.bucket == w.bucket {
				n++
			}
		}
		if n >= maxWatchersPerUser {
			re := refusedBy(bootstrap.RuleWatcherLimit, "%s has %d watch connections already, the limit", bucketName(w.bucket), n)
			return ruleOpError(re, "watch: %s", re.Detail)
		}
	}
	w.ch.send(outItem{reply: msg, msg: &xpc.Dictionary{}})
	for _, d := range m.sortedDomains() {
		for _, j := range sortedJobs(d) {
			if w.matches(j) {
				w.ch.send(outItem{msg: xpc.Dict(bootstrap.KeyEvent, m.jobDict(j))})
			}
		}
	}
	m.watchers[w] = struct{}{}
	return nil
}
