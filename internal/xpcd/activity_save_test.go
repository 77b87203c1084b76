package xpcd

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Every change of a user's activities (a registration, an unregistration,
// a run) rewrites activities.json, all users' activities in it: 10,000 of
// them encode to megabytes in a fifth of a second. A user changing theirs
// in a loop must not have xpcd's loop encode that each time, nor the file
// written back to back: the loop only takes the records, the encoding and
// the write happen off it, and the next write waits ten times as long as
// the last took.
func TestActivitiesSavedOffTheLoop(t *testing.T) {
	t.Parallel()
	h := newSystemHarness(t)
	h.start()
	m, s := h.d.sup, h.d.sup.store
	path := filepath.Join(h.paths.StateDir, activitiesFile)
	mtime := func() time.Time {
		fi, err := os.Stat(path)
		if err != nil {
			return time.Time{}
		}
		return fi.ModTime()
	}

	// An encoding under way (held here): the loop does not wait for it.
	s.actMu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := m.call(ctx, m.writeActivities)
	cancel()
	s.actMu.Unlock()
	if err != nil {
		t.Fatalf("the loop waited for activities.json to be encoded: %v", err)
	}
	waitFor(t, "the write off the loop to end", func() bool {
		var saving bool
		m.call(context.Background(), func() { saving = m.acts.saving })
		return !saving
	})

	// A write that took 300 ms: the next waits 3 s, not activitySaveDelay.
	before := mtime()
	m.call(context.Background(), func() {
		m.acts.saveTook = 300 * time.Millisecond
		m.saveActivities()
	})
	time.Sleep(1500 * time.Millisecond)
	if got := mtime(); !got.Equal(before) {
		t.Errorf("activities.json written again %v after a write that took 300 ms", got.Sub(before))
	}
	waitFor(t, "the write after the longer delay", func() bool { return !mtime().Equal(before) })
}
