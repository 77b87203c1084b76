package xpcd

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/launchd"
)

// events.json keeps every job's pending launch events (queued, or
// delivered and not acknowledged yet), so that they survive xpcd being
// stopped or killed and started again on the same state directory: each
// with its stream, descriptor name, ID, arrival time, the count of
// instances that died with it, and its payload in tagged JSON; and each
// job's next event ID, so that IDs are not given twice. Writes go through
// the file's persister, the latest state, encoded off the loop, at most
// one every eventSaveDelay (or longer: saveEvents), and once more as xpcd
// stops; nothing is written while the state is read-only.
//
// At load, a job gets back the events recorded for its domain and label
// whose descriptor its definition still declares; the others are dropped
// with a log line, as are those of jobs no longer loaded once their domain
// is. A job that does not run is launched for them; an instance adopted
// gets them once it declares its handler again.
//
// The file is bounded: at most maxPendingEvents events a job, each with
// a payload of at most maxEventPayloadBytes in tagged JSON (the largest
// xpcd can queue, a uevent of uevent.MaxMessage bytes in uevent.MaxProps
// properties every byte of which JSON escapes, is about 46 KiB; a
// notification's, of a launchd.MaxNotificationNameLen name, about 3 KiB;
// the kernel's uevents are at most 2 KiB, and a few hundred bytes in
// practice), and 200 bytes and its descriptor's name besides: at most
// about 3.6 MiB a job, tens of KiB in practice. An event whose payload is
// larger is not recorded (logged).

// Bounds of events.json.
const (
	// eventSaveDelay is how long a change waits for more before the
	// file is written.
	eventSaveDelay = 100 * time.Millisecond
	// maxEventPayloadBytes bounds one event's payload in the file.
	maxEventPayloadBytes = 56 << 10
)

// eventsDoc is the format of events.json.
type eventsDoc struct {
	Version int               `json:"version"`
	Jobs    []jobEventsRecord `json:"jobs"`
}

// jobEventsRecord is one job's pending events in events.json.
type jobEventsRecord struct {
	Domain  string        `json:"domain"`
	Label   string        `json:"label"`
	NextID  uint64        `json:"next_id"`
	Pending []eventRecord `json:"pending"`
}

// eventRecord is one pending event in events.json.
type eventRecord struct {
	Stream  string          `json:"stream"`
	Name    string          `json:"name"`
	ID      uint64          `json:"id"`
	At      time.Time       `json:"at"`
	Deaths  int             `json:"deaths,omitempty"`
	Payload json.RawMessage `json:"payload"` // tagged JSON (xpc.MarshalTaggedJSON)
	// payload is the payload until saveEvents encodes it, off the loop.
	payload *xpc.Dictionary
}

// restoreEvents takes the records read at start, for syncEvents to give
// the jobs they belong to.
func (m *supervisor) restoreEvents() {
	if m.store == nil {
		return
	}
	m.ev.stored = map[string]map[string]jobEventsRecord{}
	for _, r := range m.store.loadedEvents {
		if m.ev.stored[r.Domain] == nil {
			m.ev.stored[r.Domain] = map[string]jobEventsRecord{}
		}
		m.ev.stored[r.Domain][r.Label] = r
	}
}

// takeStoredEvents gives j the events recorded for it before xpcd
// restarted, those of descriptors its definition still declares; it
// reports whether it got any.
func (m *supervisor) takeStoredEvents(j *job) bool {
	r, ok := m.ev.stored[j.dom.name][j.def.Label]
	if !ok {
		return false
	}
	delete(m.ev.stored[j.dom.name], j.def.Label)
	if j.events == nil {
		m.log.Warn("launch events: recorded events dropped, the job declares no launch events now", "target", j.target(), "events", len(r.Pending))
		m.saveEvents()
		return false
	}
	e := j.events
	e.nextID = max(e.nextID, r.NextID)
	if len(r.Pending) > maxPendingEvents {
		r.Pending = r.Pending[len(r.Pending)-maxPendingEvents:]
	}
	for _, rec := range r.Pending {
		e.nextID = max(e.nextID, rec.ID)
		payload, err := xpc.UnmarshalTaggedJSON(rec.Payload)
		d, isDict := payload.(*xpc.Dictionary)
		switch {
		case rec.Stream != launchd.StreamNotify && rec.Stream != launchd.StreamUEvent || !declared(j.def, rec.Stream, rec.Name):
			m.log.Warn("launch events: recorded event dropped, the job no longer declares its descriptor",
				"target", j.target(), "stream", rec.Stream, "event", rec.Name, "id", rec.ID)
		case err != nil || !isDict:
			m.log.Error("launch events: recorded event dropped, its payload is not a dictionary",
				"target", j.target(), "stream", rec.Stream, "event", rec.Name, "id", rec.ID, "err", err)
		case slices.ContainsFunc(e.pending, func(p *pendingEvent) bool { return p.id == rec.ID }):
			// An ID the file has twice: kept once.
		default:
			e.pending = append(e.pending, &pendingEvent{stream: rec.Stream, name: rec.Name, id: rec.ID,
				payload: d, at: rec.At, deaths: min(max(rec.Deaths, 0), maxEventDeaths-1)})
		}
	}
	m.log.Info("launch events: restored", "target", j.target(), "pending", len(e.pending))
	m.saveEvents()
	return len(e.pending) > 0
}

// installedEvents: the jobs of d are loaded (installJobs). The events
// recorded for jobs of d that are not loaded go; a job of d that got
// events back and does not run is launched for them: now if the loop
// runs (start), else once it does, after the processes are adopted.
func (m *supervisor) installedEvents(d *domain, start bool) {
	for _, l := range sortedKeys(m.ev.stored[d.name]) {
		m.log.Warn("launch events: recorded events dropped, the job is not loaded", "target", d.name+"/"+l,
			"events", len(m.ev.stored[d.name][l].Pending))
	}
	if len(m.ev.stored[d.name]) > 0 {
		delete(m.ev.stored, d.name)
		m.saveEvents()
	}
	var jobs []*job
	for _, l := range sortedKeys(d.jobs) {
		if j := d.jobs[l]; j.events != nil && j.events.restored {
			j.events.restored = false
			jobs = append(jobs, j)
		}
	}
	launch := func() {
		for _, j := range jobs {
			if !j.removed && j.inst == nil {
				m.wantForEvents(j, true)
			}
		}
	}
	switch {
	case len(jobs) == 0:
	case start:
		launch()
	default:
		time.AfterFunc(0, func() { m.post(launch) })
	}
}

// saveEvents writes events.json soon: after eventSaveDelay, or
// activitySaveFactor times as long as the last write took if that is
// longer (as activities.json).
func (m *supervisor) saveEvents() {
	sv := &m.ev.save
	if m.store == nil || sv.timer != nil || sv.stopped {
		return
	}
	sv.timer = time.AfterFunc(max(eventSaveDelay, activitySaveFactor*sv.took), func() {
		m.post(func() {
			sv.timer = nil
			m.writeEvents()
		})
	})
}

// stopEvents: xpcd is letting go of its jobs. The events are written a
// last time, as they stand, at once.
func (m *supervisor) stopEvents() {
	sv := &m.ev.save
	if sv.stopped {
		return
	}
	sv.stopped = true
	if sv.timer != nil {
		sv.timer.Stop()
		sv.timer = nil
	}
	m.writeEvents()
}

// writeEvents writes events.json: the records are taken here, on the loop
// (payloads are never changed once made), and encoded and written off it,
// one write at a time (one asked for meanwhile follows it). Once xpcd
// stops, the last is written at once, after any under way.
func (m *supervisor) writeEvents() {
	sv := &m.ev.save
	if m.store == nil {
		return
	}
	if sv.busy && !sv.stopped {
		sv.again = true
		return
	}
	recs := []jobEventsRecord{}
	for _, d := range m.sortedDomains() {
		for _, j := range sortedJobs(d) {
			if r, ok := eventsRecord(j); ok {
				recs = append(recs, r)
			}
		}
	}
	for _, dn := range sortedKeys(m.ev.stored) {
		for _, l := range sortedKeys(m.ev.stored[dn]) {
			recs = append(recs, m.ev.stored[dn][l])
		}
	}
	sv.gen++
	gen := sv.gen
	if sv.stopped {
		m.store.saveEvents(gen, recs, false)
		return
	}
	sv.busy = true
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		start := time.Now()
		m.store.saveEvents(gen, recs, true)
		took := time.Since(start)
		m.post(func() {
			sv.busy, sv.took = false, took
			if sv.again {
				sv.again = false
				m.saveEvents()
			}
		})
	}()
}

// eventSaver is where the writes of events.json stand (writeEvents).
type eventSaver struct {
	timer   *time.Timer   // a write is due
	busy    bool          // one is under way, off the loop
	again   bool          // another was asked for meanwhile
	took    time.Duration // how long the last took
	gen     uint64        // the generation of the last taken
	stopped bool          // xpcd let go of its jobs
}

// eventsRecord is j's pending events as events.json keeps them, their
// payloads not yet encoded; false if it has none.
func eventsRecord(j *job) (jobEventsRecord, bool) {
	e := j.events
	if e == nil || len(e.pending) == 0 {
		return jobEventsRecord{}, false
	}
	r := jobEventsRecord{Domain: j.dom.name, Label: j.def.Label, NextID: e.nextID}
	for _, ev := range e.pending {
		r.Pending = append(r.Pending, eventRecord{Stream: ev.stream, Name: ev.name, ID: ev.id, At: ev.at,
			Deaths: ev.deaths, payload: ev.payload})
	}
	return r, true
}

// saveEvents encodes the event records of generation gen and hands them
// to the file's persister, waiting for the write if wait (nothing, if the
// state is read-only, or a later generation was handed over already). An
// event whose payload cannot be encoded within maxEventPayloadBytes is
// left out.
func (s *stateStore) saveEvents(gen uint64, recs []jobEventsRecord, wait bool) {
	if s.readOnly != "" || s.events == nil {
		return
	}
	s.evMu.Lock()
	if gen <= s.evGen {
		s.evMu.Unlock()
		return
	}
	s.evGen = gen
	for i := range recs {
		recs[i].Pending = s.encodePayloads(recs[i])
	}
	b, err := json.MarshalIndent(eventsDoc{Version: stateVersion, Jobs: recs}, "", "\t")
	if err != nil {
		s.evMu.Unlock()
		s.log.Error("state: encode launch events", "err", err)
		return
	}
	done := s.events.put(b)
	s.evMu.Unlock()
	if wait {
		<-done
	}
}

// encodePayloads returns r's events with their payloads encoded, but for
// those that cannot be within maxEventPayloadBytes.
func (s *stateStore) encodePayloads(r jobEventsRecord) []eventRecord {
	kept := make([]eventRecord, 0, len(r.Pending))
	for _, ev := range r.Pending {
		if ev.payload != nil {
			b, err := xpc.MarshalTaggedJSON(ev.payload)
			if err != nil || len(b) > maxEventPayloadBytes {
				s.log.Error("launch events: event not recorded, its payload cannot be written", "target", r.Domain+"/"+r.Label,
					"stream", ev.Stream, "id", ev.ID, "bytes", len(b), "err", err)
				continue
			}
			ev.Payload, ev.payload = b, nil
		}
		kept = append(kept, ev)
	}
	return kept
}
