package xpcd

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// What a user's service can do in a loop must not write a line to root's
// log each time round: the log (and the journal's rate limit, which then
// drops xpcd's lines, everyone's) is shared. Registering and unregistering
// an activity, and setting a stream's handler and refusing its event, are
// logged at the Info level or above at most once, however often they are
// done; the rest goes to Debug.
func TestServiceLoopsDoNotFillTheLog(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	m := newSupervisor(supervisorConfig{
		log:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		launcher: &fakeLauncher{}, domains: map[string]uint32{"user/1000": 1000}, root: true,
	})
	if err := m.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.close(context.Background()) })
	const rounds = 50
	err := m.call(context.Background(), func() {
		d := m.domains["user/1000"]
		j, oe := m.addJob(d, def("loop", func(j *launchd.Job) {
			j.MachServices = nil
			j.LaunchEvents = map[string]map[string]*xpc.Dictionary{
				launchd.StreamNotify: {"n": xpc.Dict(launchd.NotificationKey, "user.uid.1000.n")}}
		}), false)
		if oe != nil {
			t.Fatal(oe)
		}
		inst := &instance{job: j, pid: 4242}
		j.inst = inst
		c := utility(xpc.ActivityCriteria{Interval: time.Hour})
		for i := range rounds {
			if _, oe := m.activityRegister(inst, "a", &c); oe != nil {
				t.Fatalf("round %d: register: %v", i, oe)
			}
			if oe := m.activityUnregister(inst, "a"); oe != nil {
				t.Fatalf("round %d: unregister: %v", i, oe)
			}
		}
		// A channel that takes nothing: each event sent is handed back,
		// as the service's refusal then does.
		ch := newChannel(nil, 0)
		ch.close()
		inst.ch = ch
		inst.events = &instEvents{ch: ch, handlers: map[string]bool{}, ever: map[string]bool{}}
		m.queueEvent(j, launchd.StreamNotify, "n", xpc.Dict(launchd.NotificationKey, "user.uid.1000.n"))
		ev := j.events.pending[0]
		for range rounds {
			inst.events.handlers[launchd.StreamNotify] = true
			ev.to, ev.ch = inst, ch
			m.eventAnswered(inst, ch, ev, &xpc.RemoteError{})
		}
		inst.ch, inst.events, j.inst = nil, nil, nil // no process to stop
	})
	if err != nil {
		t.Fatal(err)
	}
	count := func(msg string) int { return strings.Count(logs.String(), fmt.Sprintf("msg=%q", msg)) }
	for msg, most := range map[string]int{"activity registered": 0, "activity unregistered": 0,
		"launch event refused by the service; waiting for it to set its handler again": 1} {
		if n := count(msg); n > most {
			t.Errorf("%d rounds: %d lines %q at Info or above, want at most %d", rounds, n, msg, most)
		}
	}
	if n := count("launch event refused by the service; waiting for it to set its handler again"); n != 1 {
		t.Errorf("the first refusal: %d lines, want 1", n)
	}
}

// An activity identifier activities.json cannot keep as it is (not UTF-8:
// JSON replaces the bad bytes, so that two identifiers come back as one,
// or as another than the service registers) is refused; what JSON keeps
// round-trips.
func TestActivityIDsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"a\xff", "a\xfe", "\xc3"} {
		if oe := checkActivityID(id); oe == nil || oe.reason != bootstrap.ReasonBadRequest {
			t.Errorf("identifier %q: %v, want a bad request", id, oe)
		}
	}
	for _, id := range []string{"a", "com.example.backup", "é/\n\"x\"", strings.Repeat("x", maxActivityID)} {
		if oe := checkActivityID(id); oe != nil {
			t.Errorf("identifier %q: %v", id, oe)
			continue
		}
		b, _ := json.Marshal(activityRecord{ID: id})
		var back activityRecord
		if err := json.Unmarshal(b, &back); err != nil || back.ID != id {
			t.Errorf("identifier %q comes back from activities.json as %q (%v)", id, back.ID, err)
		}
	}
}
