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
// recorded as waiting. Writes go through the file's persister, at most
// one every activitySaveDelay (the latest state), and once more as xpcd
// stops.

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

// saveActivities writes activities.json soon.
func (m *supervisor) saveActivities() {
	if m.store == nil || m.acts.saveTimer != nil || m.acts.stopped {
		return
	}
	m.acts.saveTimer = time.AfterFunc(activitySaveDelay, func() {
		m.post(func() {
			m.acts.saveTimer = nil
			m.writeActivities()
		})
	})
}

// writeActivities writes activities.json now (in the background).
func (m *supervisor) writeActivities() {
	if m.store == nil {
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
	m.store.saveActivities(recs)
}

// record is a as activities.json keeps it: running or not, waiting.
func (a *activity) record() activityRecord {
	return activityRecord{Domain: a.job.dom.name, Label: a.job.def.Label, ID: a.id, Criteria: a.crit,
		Declared: a.declared, Registered: a.registered, Base: a.base, LastRun: a.lastRun,
		Defers: a.defers, DeferUntil: a.deferUntil}
}

// saveActivities writes the activity records, in the background (nothing,
// if the state is read-only).
func (s *stateStore) saveActivities(recs []activityRecord) {
	if s.readOnly != "" || s.activities == nil {
		return
	}
	b, err := json.MarshalIndent(activitiesDoc{Version: stateVersion, Activities: recs}, "", "\t")
	if err != nil {
		s.log.Error("state: encode activities", "err", err)
		return
	}
	s.activities.put(b)
}
