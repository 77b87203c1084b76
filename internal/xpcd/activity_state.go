package xpcd

import (
	"encoding/json"
	"time"

	"github.com/goxpc/xpc"
)

// activities.json keeps every activity: its criteria, where it came from,
// its base, last run and deferrals, so that registrations and last runs
// survive xpcd being stopped, every process killed, and xpcd started again
// on the same state directory. An activity running when xpcd stopped is
// recorded as waiting. Writes go through the file's persister, the latest
// state, encoded off the loop, at most one every activitySaveDelay (or
// longer: saveActivities), and once more as xpcd stops.

// activitySaveDelay is how long a change waits for more before the file is
// written.
const activitySaveDelay = 100 * time.Millisecond

// activityRecord is one activity in activities.json.
type activityRecord struct {
	Domain     string               `json:"domain"`
	Label      string               `json:"label"`
	ID         string               `json:"id"`
	Criteria   xpc.ActivityCriteria `json:"criteria"`
	Declared   bool                 `json:"declared,omitempty"`
	Registered bool                 `json:"registered,omitempty"`
	Base       time.Time            `json:"base"`
	LastRun    time.Time            `json:"last_run,omitzero"`
	Defers     int                  `json:"defers,omitempty"`
	DeferUntil time.Time            `json:"defer_until,omitzero"`
}

type activitiesDoc struct {
	Version    int              `json:"version"`
	Activities []activityRecord `json:"activities"`
}

// restoreActivities takes the records read at start, for addJob to give
// the jobs they belong to.
func (m *supervisor) restoreActivities() {
	if m.store == nil {
		return
	}
	for _, r := range m.store.loadedActivities {
		if m.acts.stored[r.Domain] == nil {
			m.acts.stored[r.Domain] = map[string][]activityRecord{}
		}
		m.acts.stored[r.Domain][r.Label] = append(m.acts.stored[r.Domain][r.Label], r)
	}
}

// saveActivities writes activities.json soon: after activitySaveDelay, or
// activitySaveFactor times as long as the last write took if that is
// longer, so that however often users change their activities, writing
// them takes at most about a tenth of xpcd's time.
func (m *supervisor) saveActivities() {
	if m.store == nil || m.acts.saveTimer != nil || m.acts.stopped {
		return
	}
	delay := max(activitySaveDelay, activitySaveFactor*m.acts.saveTook)
	m.acts.saveTimer = time.AfterFunc(delay, func() {
		m.post(func() {
			m.acts.saveTimer = nil
			m.writeActivities()
		})
	})
}

// activitySaveFactor: see saveActivities.
const activitySaveFactor = 10

// writeActivities writes activities.json: the records are taken here, on
// the loop, and encoded and written off it, one write at a time (one asked
// for meanwhile follows it). Once xpcd stops, the last is written at once,
// after any under way.
func (m *supervisor) writeActivities() {
	if m.store == nil {
		return
	}
	if m.acts.saving && !m.acts.stopped {
		m.acts.saveAgain = true
		return
	}
	recs := []activityRecord{}
	for _, d := range m.sortedDomains() {
		for _, j := range sortedJobs(d) {
			for _, a := range sortedActivities(j) {
				recs = append(recs, a.record())
			}
		}
	}
	for _, dn := range sortedKeys(m.acts.stored) {
		for _, l := range sortedKeys(m.acts.stored[dn]) {
			recs = append(recs, m.acts.stored[dn][l]...)
		}
	}
	m.acts.saveGen++
	gen := m.acts.saveGen
	if m.acts.stopped {
		m.store.saveActivities(gen, recs, false)
		return
	}
	m.acts.saving = true
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		start := time.Now()
		m.store.saveActivities(gen, recs, true)
		took := time.Since(start)
		m.post(func() {
			m.acts.saving, m.acts.saveTook = false, took
			if m.acts.saveAgain {
				m.acts.saveAgain = false
				m.saveActivities()
			}
		})
	}()
}

// record is a as activities.json keeps it: running or not, waiting.
func (a *activity) record() activityRecord {
	return activityRecord{Domain: a.job.dom.name, Label: a.job.def.Label, ID: a.id, Criteria: a.crit,
		Declared: a.declared, Registered: a.registered, Base: a.base, LastRun: a.lastRun,
		Defers: a.defers, DeferUntil: a.deferUntil}
}

// saveActivities encodes the activity records of generation gen and hands
// them to the file's persister, waiting for the write if wait (nothing, if
// the state is read-only, or a later generation was handed over already).
func (s *stateStore) saveActivities(gen uint64, recs []activityRecord, wait bool) {
	if s.readOnly != "" || s.activities == nil {
		return
	}
	s.actMu.Lock()
	if gen <= s.actGen {
		s.actMu.Unlock()
		return
	}
	s.actGen = gen
	b, err := json.MarshalIndent(activitiesDoc{Version: stateVersion, Activities: recs}, "", "\t")
	if err != nil {
		s.actMu.Unlock()
		s.log.Error("state: encode activities", "err", err)
		return
	}
	done := s.activities.put(b)
	s.actMu.Unlock()
	if wait {
		<-done
	}
}
