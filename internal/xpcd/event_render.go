package xpcd

import (
	"fmt"
	"strings"
	"time"

	"github.com/goxpc/xpc"
)

// What print and blame say of a job's launch events.
//
//	launch_event     string: "STREAM NAME", the event that launched the
//	                 instance (launch_reason event)
//	launch_events    dictionary, for a job that declares launch events or
//	                 has some pending: by stream, a dictionary of
//	                 descriptors (array of names), pending (int64),
//	                 overflowed (int64: dropped, the queue being full) and
//	                 status (a sentence); and dropped (array of sentences:
//	                 the last events given up)

// setEventKeys sets jobDict's keys of launch events.
func setEventKeys(d *xpc.Dictionary, j *job) {
	r := j.lastReason
	if j.inst != nil {
		r = j.inst.reason
	}
	if r.why == reasonEvent && r.event != "" {
		d.Set("launch_event", xpc.String(r.event))
	}
	e := j.events
	if e == nil {
		return
	}
	out := xpc.NewDictionary(4)
	for _, stream := range eventStreams(j) {
		s := xpc.NewDictionary(4)
		s.Set("descriptors", strArray(sortedKeys(j.def.LaunchEvents[stream])))
		s.Set("pending", xpc.Int64(pendingOf(e, stream)))
		if n := e.overflow[stream]; n > 0 {
			s.Set("overflowed", xpc.Int64(n))
		}
		s.Set("status", xpc.String(eventStatus(j, stream, time.Now())))
		out.Set(stream, s)
	}
	if len(e.dropped) > 0 {
		out.Set("dropped", strArray(droppedText(e)))
	}
	d.Set("launch_events", out)
}

// eventStreams returns the streams j declares or has events of, sorted.
func eventStreams(j *job) []string {
	set := map[string]bool{}
	for s, descs := range j.def.LaunchEvents {
		if len(descs) > 0 {
			set[s] = true
		}
	}
	for _, ev := range j.events.pending {
		set[ev.stream] = true
	}
	return sortedKeys(set)
}

func pendingOf(e *jobEvents, stream string) int {
	n := 0
	for _, ev := range e.pending {
		if ev.stream == stream {
			n++
		}
	}
	return n
}

// eventStatus says where the events of stream stand: delivered and not
// acknowledged yet (a slow handler), or waiting, and for what: a launch,
// a handler, or nothing, because the job ran without handling the stream.
func eventStatus(j *job, stream string, now time.Time) string {
	e, inst := j.events, j.inst
	n := pendingOf(e, stream)
	if n == 0 {
		return "no events pending"
	}
	head := fmt.Sprintf("%d %s pending for %s: ", n, plural(n, "event", "events"), stream)
	for _, ev := range e.pending {
		if ev.stream == stream && ev.inFlight(inst) {
			return head + fmt.Sprintf("event %d (%s) delivered %ds ago, not yet acknowledged",
				ev.id, ev.name, int(now.Sub(ev.sentAt)/time.Second))
		}
	}
	if at, ok := e.unhandled[stream]; ok && (inst == nil || !inst.handles(stream)) {
		return head + "the job ran without handling the stream (no HandleEvents; its last instance ended " +
			at.Format(time.RFC3339) + "); they wait, and do not launch it"
	}
	switch {
	case inst == nil:
		return head + "waiting for the job to launch"
	case inst.spawning:
		return head + "waiting for the job to start"
	case inst.handles(stream):
		return head + "being delivered"
	case inst.spoke && now.Sub(inst.started) > eventHandlerGrace:
		return head + fmt.Sprintf("the job runs without handling the stream (no HandleEvents after %ds)",
			int(now.Sub(inst.started)/time.Second))
	}
	return head + "waiting for the job to set its handler (HandleEvents)"
}

func droppedText(e *jobEvents) []string {
	out := make([]string, 0, len(e.dropped))
	for _, d := range e.dropped {
		out = append(out, fmt.Sprintf("event %d (%s %s) dropped at %s: %s", d.id, d.stream, d.name, d.at.Format(time.RFC3339), d.why))
	}
	return out
}

// eventsBlame is blame's sentence of launch events: "" or "; ...".
func eventsBlame(j *job) string {
	e := j.events
	if e == nil {
		return ""
	}
	var b strings.Builder
	now := time.Now()
	for _, stream := range eventStreams(j) {
		if pendingOf(e, stream) > 0 {
			b.WriteString("; " + eventStatus(j, stream, now))
		}
	}
	if e.droppedN > 0 {
		fmt.Fprintf(&b, "; %d launch events dropped, the last: %s", e.droppedN, droppedText(e)[len(e.dropped)-1])
	}
	return b.String()
}

// eventReasonText is reasonText's for reasonEvent.
func eventReasonText(r launchReason) string {
	if r.event == "" {
		return "launched by a launch event"
	}
	stream, name, _ := strings.Cut(r.event, " ")
	return fmt.Sprintf("launched by the launch event %s of %s", name, stream)
}

// eventsWaitText is blame's sentence for a job that waits for nothing but
// its launch events.
func eventsWaitText(j *job) string {
	var parts []string
	for _, stream := range sortedKeys(j.def.LaunchEvents) {
		if names := sortedKeys(j.def.LaunchEvents[stream]); len(names) > 0 {
			parts = append(parts, stream+" ("+strings.Join(names, ", ")+")")
		}
	}
	return "waiting for launch events: " + strings.Join(parts, "; ")
}

// plural is one or many, by n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
