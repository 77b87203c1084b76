package xpcd

import (
	"maps"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// Overrides (enable, disable, remove-disabled) take effect only once they
// are on disk. m.overrides is what is committed: what the disk has, and
// what jobs follow. A request's changes wait in m.ovQueue; one write at a
// time takes every change queued, writes the committed overrides with
// them applied, and then, on the loop: on success that whole snapshot
// becomes the committed one and each request is told; on failure nothing
// changes and each request is told why. So memory and disk agree after
// every write, however requests interleave, and a request's reply says
// whether its change is on disk. Requests that come while a write is under
// way go together in the next one.

// overrideRequest is one request's changes to the overrides. done runs on
// the loop once they are committed (err nil) or have failed (nothing
// changed).
type overrideRequest struct {
	changes []overrideChange
	done    func(err error)
}

// overrideChange sets an override (disabled or not) or, with remove,
// deletes it.
type overrideChange struct {
	dom, label string
	disabled   bool
	remove     bool
}

// effectiveDisabled tells whether a job is disabled: its override if it
// has one, otherwise its plist's Disabled key.
func (m *supervisor) effectiveDisabled(dom string, def *launchd.Job) bool {
	if v, ok := m.overrides[dom][def.Label]; ok {
		return v
	}
	return def.Disabled
}

// copyOverrides returns a deep copy of the committed overrides.
func (m *supervisor) copyOverrides() map[string]map[string]bool {
	out := make(map[string]map[string]bool, len(m.overrides))
	for d, o := range m.overrides {
		if len(o) > 0 {
			out[d] = maps.Clone(o)
		}
	}
	return out
}

// changeOverrides queues r's changes for writing (on the loop).
func (m *supervisor) changeOverrides(r *overrideRequest) {
	m.ovQueue = append(m.ovQueue, r)
	if !m.ovWriting {
		m.writeOverrides()
	}
}

// writeOverrides writes the committed overrides with the queued changes;
// overridesWritten hears how it went.
func (m *supervisor) writeOverrides() {
	batch := m.ovQueue
	m.ovQueue = nil
	if len(batch) == 0 {
		return
	}
	wanted := m.copyOverrides()
	for _, r := range batch {
		for _, c := range r.changes {
			if c.remove {
				delete(wanted[c.dom], c.label)
				if len(wanted[c.dom]) == 0 {
					delete(wanted, c.dom)
				}
				continue
			}
			if wanted[c.dom] == nil {
				wanted[c.dom] = map[string]bool{}
			}
			wanted[c.dom][c.label] = c.disabled
		}
	}
	if m.store == nil {
		m.overridesWritten(batch, wanted, nil)
		return
	}
	m.ovWriting = true
	saved := m.store.saveOverrides(wanted)
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		err := <-saved
		m.post(func() { m.overridesWritten(batch, wanted, err) })
	}()
}

// overridesWritten: the write of wanted, for batch, has ended with err.
func (m *supervisor) overridesWritten(batch []*overrideRequest, wanted map[string]map[string]bool, err error) {
	m.ovWriting = false
	if err == nil {
		m.overrides = wanted
	} else {
		m.log.Error("overrides not changed: the state could not be written", "err", err)
	}
	for _, r := range batch {
		r.done(err)
	}
	m.writeOverrides()
}

// roomForOverride refuses a new override in a user's domain when the
// domains of the owner's bucket (bucket, found off the loop) have
// maxOverridesPerUserDomain of them together, written or waiting to be
// (bootstrap.RuleOverrideLimit): every label may be given one, loaded or
// not, each one is in overrides.json, rewritten whole at every change, and
// a user with subordinate uids could otherwise have that many for each.
func (m *supervisor) roomForOverride(t Target, bucket uint32) *opError {
	if t.Domain == DomainSystem || t.UID == 0 {
		return nil
	}
	if _, ok := m.overrides[t.Domain][t.Label]; ok {
		return nil
	}
	if m.ovBucket == nil {
		m.ovBucket = map[string]uint32{}
	}
	m.ovBucket[t.Domain] = bucket
	n := 0
	for dom, ovs := range m.overrides {
		if b, ok := m.ovBucket[dom]; ok && b == bucket {
			n += len(ovs)
		}
	}
	for _, r := range m.ovQueue {
		for _, c := range r.changes {
			if b, ok := m.ovBucket[c.dom]; ok && b == bucket {
				n++
			}
		}
	}
	if n < maxOverridesPerUserDomain {
		return nil
	}
	re := refusedBy(bootstrap.RuleOverrideLimit, "%s has %d enable/disable overrides, the limit (xpcctl remove-disabled drops those of jobs not loaded)", bucketName(bucket), n)
	return ruleOpError(re, "%s: %s", t, re.Detail)
}

// bucketOverrides finds the bucket of the owner of each user domain with
// overrides from the state directory (at start, before the loop runs: the
// user database may be slow to answer).
func (m *supervisor) bucketOverrides() {
	m.ovBucket = map[string]uint32{}
	for dom := range m.overrides {
		if _, uid, err := ParseDomain(dom); err == nil && dom != DomainSystem && uid != 0 {
			m.ovBucket[dom] = m.buckets.of(uid)
		}
	}
}

// applyDisabled brings a loaded job in line with the committed overrides
// after they changed; it reports whether the job is loaded.
func (m *supervisor) applyDisabled(dom, label string) bool {
	d := m.domains[dom]
	if d == nil || d.jobs[label] == nil {
		return false
	}
	j := d.jobs[label]
	was := j.disabled
	j.disabled = m.effectiveDisabled(dom, j.def)
	if j.disabled {
		m.unloadedWhile(j, true)
		j.cancelThrottle()
	}
	m.syncSchedule(j)
	if !j.disabled && was {
		m.atLoad(j)
		m.wantForEvents(j, true)
	}
	m.changed(j)
	if was != j.disabled {
		m.otherJobsChanged(d)
	}
	return true
}

// stateReadOnly says why the state is read-only, "" if it is not. It
// never changes once xpcd has started, so sessions may ask it directly.
func (m *supervisor) stateReadOnly() string {
	if m.store == nil {
		return ""
	}
	return m.store.readOnly
}
