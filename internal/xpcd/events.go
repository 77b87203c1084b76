package xpcd

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/uevent"
	"github.com/goxpc/xpc/launchd"
)

// Launch events (docs/XPCD.md, "Launch events"): a job's LaunchEvents
// descriptors, matched against notifications posted (notificationPosted)
// and the kernel's uevents (one listener goroutine while some job declares
// uevent descriptors); each match queues an event for the job, which is
// launched if it is not running and delivered to its handler
// (event_deliver.go), and forgotten when the handler has acknowledged it.

// Limits of launch events.
const (
	// maxPendingEvents is the most events one job may have waiting; past
	// it the oldest not being delivered is dropped, and counted.
	maxPendingEvents = 64
	// maxEventDeaths is how many instances may die with an event
	// delivered and unacknowledged before it is dropped.
	maxEventDeaths = 3
	// maxDroppedKept is how many dropped events a job remembers, for
	// print and blame.
	maxDroppedKept = 8
	// eventHandlerGrace is how long a running instance that has not set
	// a handler for a stream with events pending is taken for starting up
	// rather than for not handling the stream (print).
	eventHandlerGrace = 10 * time.Second
)

// payloadState is the key of a notification's state in its event's
// payload; launchd.NotificationKey is its name's.
const payloadState = "State"

// reasonEvent: launched to deliver a launch event (launchReason.event says
// which).
const reasonEvent = "event"

// jobEvents is a job's launch-event state, kept across its instances.
type jobEvents struct {
	notify  map[string][]string // notification name -> descriptor names
	uevents []ueventRule
	pending []*pendingEvent // in arrival order
	nextID  uint64
	// overflow counts, by stream, the events dropped because the queue
	// was full.
	overflow map[string]int
	// dropped are the last events dropped after maxEventDeaths instances
	// died with them; droppedN counts them all.
	dropped  []droppedEvent
	droppedN int
	// unhandled: streams an instance of the job ran without setting a
	// handler for while their events waited. Their events do not launch
	// the job (no relaunch loop), until an instance sets a handler or the
	// definition changes.
	unhandled map[string]time.Time
	// restored: it got events recorded before xpcd restarted, and has
	// not been launched for them yet (installedEvents).
	restored bool
}

// pendingEvent is an event waiting for its acknowledgement.
type pendingEvent struct {
	stream, name string
	id           uint64
	payload      *xpc.Dictionary // never changed once made: shared by its sends
	at           time.Time
	// to and ch: the instance and channel it was last sent to, until
	// that instance acknowledges it, refuses it or its channel ends;
	// sentAt is when.
	to     *instance
	ch     *channel
	sentAt time.Time
	// deaths counts the instances that died with it unacknowledged.
	deaths int
}

// droppedEvent is an event given up.
type droppedEvent struct {
	stream, name string
	id           uint64
	at           time.Time
	why          string
}

// ueventRule is one uevent descriptor of a job, for the listener: it is
// read off the loop, so it is never changed once made.
type ueventRule struct {
	j       *job
	name    string
	matcher uevent.Matcher
}

// eventState is the supervisor's index of launch events, owned by the
// loop but for rules, which the uevent listener reads.
type eventState struct {
	notify map[string]map[*job]bool // notification name -> jobs with a descriptor for it
	ujobs  map[*job]bool            // jobs with uevent descriptors
	rules  atomic.Pointer[[]ueventRule]
	// names is notify's keys, published by the loop for the notification
	// registry to read: a post of another name is not handed to the loop.
	names atomic.Pointer[map[string]struct{}]
	// stop ends the uevent listener; nil when none runs.
	stop context.CancelFunc
	// stored: events.json's records of jobs not loaded (yet), by domain
	// and label; save: where its writes stand (event_state.go).
	stored map[string]map[string]jobEventsRecord
	save   eventSaver
}

// syncEvents reads the launch events of j's definition (at load, and when
// the definition changes): the descriptors are indexed, the events of
// descriptors no longer declared are dropped, and streams taken for
// unhandled are tried afresh.
func (m *supervisor) syncEvents(j *job) {
	m.unindexEvents(j)
	def := j.def.LaunchEvents
	if len(def[launchd.StreamNotify]) == 0 && len(def[launchd.StreamUEvent]) == 0 {
		if j.events != nil && len(j.events.pending) > 0 {
			m.saveEvents()
		}
		j.events = nil
		m.takeStoredEvents(j)
		m.publishNotified()
		m.updateUEvents()
		return
	}
	if j.events == nil {
		j.events = &jobEvents{}
	}
	e := j.events
	e.notify, e.uevents, e.unhandled = map[string][]string{}, nil, nil
	for _, name := range sortedKeys(def[launchd.StreamNotify]) {
		n, _ := def[launchd.StreamNotify][name].String(launchd.NotificationKey)
		e.notify[n] = append(e.notify[n], name)
		if m.ev.notify == nil {
			m.ev.notify = map[string]map[*job]bool{}
		}
		if m.ev.notify[n] == nil {
			m.ev.notify[n] = map[*job]bool{}
		}
		m.ev.notify[n][j] = true
	}
	for _, name := range sortedKeys(def[launchd.StreamUEvent]) {
		mt, err := uevent.Compile(def[launchd.StreamUEvent][name])
		if err != nil {
			m.log.Warn("launch events: descriptor ignored", "target", j.target(), "event", name, "err", err)
			continue
		}
		e.uevents = append(e.uevents, ueventRule{j: j, name: name, matcher: mt})
	}
	if len(e.uevents) > 0 {
		if m.ev.ujobs == nil {
			m.ev.ujobs = map[*job]bool{}
		}
		m.ev.ujobs[j] = true
	}
	if m.takeStoredEvents(j) {
		e.restored = true
	}
	n := len(e.pending)
	e.pending = slices.DeleteFunc(e.pending, func(ev *pendingEvent) bool { return !declared(j.def, ev.stream, ev.name) })
	if len(e.pending) != n {
		m.saveEvents()
	}
	m.publishNotified()
	m.updateUEvents()
}

// declared reports whether def declares the descriptor name of stream.
func declared(def *launchd.Job, stream, name string) bool {
	_, ok := def.LaunchEvents[stream][name]
	return ok
}

// dropEvents forgets j's launch events (it is unloaded).
func (m *supervisor) dropEvents(j *job) {
	m.unindexEvents(j)
	if j.events != nil && len(j.events.pending) > 0 {
		m.saveEvents()
	}
	j.events = nil
	m.publishNotified()
	m.updateUEvents()
}

// publishNotified publishes the names of the notifications some job has a
// descriptor for (notificationWatched).
func (m *supervisor) publishNotified() {
	names := make(map[string]struct{}, len(m.ev.notify))
	for n := range m.ev.notify {
		names[n] = struct{}{}
	}
	m.ev.names.Store(&names)
}

// notificationWatched reports whether some job has a descriptor for the
// notification name. Any goroutine may ask.
func (m *supervisor) notificationWatched(name string) bool {
	names := m.ev.names.Load()
	if names == nil {
		return false
	}
	_, ok := (*names)[name]
	return ok
}

// unindexEvents takes j out of the indexes.
func (m *supervisor) unindexEvents(j *job) {
	if j.events == nil {
		return
	}
	for n := range j.events.notify {
		delete(m.ev.notify[n], j)
		if len(m.ev.notify[n]) == 0 {
			delete(m.ev.notify, n)
		}
	}
	delete(m.ev.ujobs, j)
}

// updateUEvents gives the listener the rules of every job with uevent
// descriptors, starting it for the first such job and stopping it after
// the last.
func (m *supervisor) updateUEvents() {
	var rules []ueventRule
	for _, j := range sortedKeysBy(m.ev.ujobs, func(j *job) string { return j.target() }) {
		rules = append(rules, j.events.uevents...)
	}
	m.ev.rules.Store(&rules)
	switch {
	case len(rules) > 0 && m.ev.stop == nil && !m.detached:
		ctx, cancel := context.WithCancel(context.Background())
		m.ev.stop = cancel
		m.bg.Add(1)
		go m.listenUEvents(ctx)
	case len(rules) == 0 && m.ev.stop != nil:
		m.stopUEvents()
	}
}

// stopUEvents stops the uevent listener, if one runs.
func (m *supervisor) stopUEvents() {
	if m.ev.stop != nil {
		m.ev.stop()
		m.ev.stop = nil
	}
}

// listenUEvents reads the kernel's uevents until ctx ends, matching each
// against the rules here, off the loop: only an event some job wants is
// posted to it.
func (m *supervisor) listenUEvents(ctx context.Context) {
	defer m.bg.Done()
	m.log.Debug("launch events: listening for uevents")
	err := uevent.Run(ctx, func(ev *uevent.Event) {
		var hits []ueventRule
		for _, r := range *m.ev.rules.Load() {
			if r.matcher.Match(ev) {
				hits = append(hits, r)
			}
		}
		if len(hits) > 0 {
			payload := ev.Dictionary()
			m.post(func() { m.ueventMatched(hits, payload) })
		}
	})
	if err != nil {
		m.log.Error("launch events: cannot read the kernel's uevents", "err", err)
	}
}

// ueventMatched queues a matched uevent for each job whose rule matched
// (if the job still has the rule: its definition may have changed since).
func (m *supervisor) ueventMatched(hits []ueventRule, payload *xpc.Dictionary) {
	for _, r := range hits {
		j := r.j
		if j.removed || j.events == nil || !declared(j.def, launchd.StreamUEvent, r.name) {
			continue
		}
		m.queueEvent(j, launchd.StreamUEvent, r.name, payload)
	}
}

// notificationPosted queues an event for each job with a descriptor
// {Notification = name}: runs on the loop. A job of a user's domain is
// told only of that user's names and the system's.
func (m *supervisor) notificationPosted(name string, state uint64) {
	jobs := m.ev.notify[name]
	if len(jobs) == 0 {
		return
	}
	payload := xpc.NewDictionary(2)
	payload.Set(launchd.NotificationKey, xpc.String(name))
	payload.Set(payloadState, xpc.Uint64(state))
	owner, user := bootstrap.NotificationOwner(name)
	for _, j := range sortedKeysBy(jobs, func(j *job) string { return j.target() }) {
		if user && j.dom.name != DomainSystem && j.dom.owner != owner {
			continue
		}
		for _, ename := range j.events.notify[name] {
			m.queueEvent(j, launchd.StreamNotify, ename, payload)
		}
	}
}

// queueEvent queues an event for j, delivers it if j runs with a handler
// for the stream, and launches j if it does not run (unless it ran
// without handling the stream).
func (m *supervisor) queueEvent(j *job, stream, name string, payload *xpc.Dictionary) {
	e := j.events
	e.nextID++
	ev := &pendingEvent{stream: stream, name: name, id: e.nextID, payload: payload, at: time.Now()}
	if len(e.pending) >= maxPendingEvents {
		// The oldest not in the hands of an instance goes.
		i := slices.IndexFunc(e.pending, func(p *pendingEvent) bool { return p.to == nil })
		if i < 0 {
			i = 0
		}
		old := e.pending[i]
		e.pending = slices.Delete(e.pending, i, i+1)
		if e.overflow == nil {
			e.overflow = map[string]int{}
		}
		e.overflow[old.stream]++
		m.log.Debug("launch events: queue full, oldest dropped", "target", j.target(), "stream", old.stream, "id", old.id)
	}
	e.pending = append(e.pending, ev)
	m.saveEvents()
	m.log.Debug("launch event", "target", j.target(), "stream", stream, "event", name, "id", ev.id)
	r := launchReason{why: reasonEvent, event: stream + " " + name}
	_, unhandled := e.unhandled[stream]
	switch {
	case unhandled:
		// It ran without handling the stream: this event does not
		// launch it.
	case j.inst != nil:
		m.deliverEvents(j)
	case j.throttle != nil && j.throttleR.why == reasonDemand:
		// The launch waits for the throttle: for this event too, even if
		// the clients that asked for it go away meanwhile.
		j.throttleR = r
	default:
		m.want(j, r)
	}
	m.changed(j)
}

// sortedKeysBy returns the keys of set ordered by key.
func sortedKeysBy[K comparable](set map[K]bool, key func(K) string) []K {
	out := make([]K, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b K) int {
		switch ka, kb := key(a), key(b); {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	return out
}
