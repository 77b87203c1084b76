package xpcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// Delivering launch events: an instance declares its handler for a stream
// (OpEventHandler); xpcd sends the stream's events one at a time, each as
// a request (OpEvent) whose reply is the acknowledgement; an instance that
// ends with an event unacknowledged leaves it to the next, up to
// maxEventDeaths instances.

// instEvents is what an instance told xpcd of its event handlers.
type instEvents struct {
	ch       *channel        // the channel handlers were declared on
	handlers map[string]bool // streams with a handler on ch
	ever     map[string]bool // streams it has had a handler for
	// refused: streams whose event it refused, which the log has said
	// once: a service that sets its handler and refuses in a loop must
	// not fill root's log (and have its lines dropped by the journal's
	// rate limit, with everyone else's).
	refused map[string]bool
}

// eventHandlerRequest: OpEventHandler on the check-in channel ch of inst,
// from the session's goroutine.
func eventHandlerRequest(ctx context.Context, m *supervisor, inst *instance, ch *channel, msg *xpc.Message) {
	name, _ := msg.Body.String(bootstrap.KeyStream)
	stream, ok := bootstrap.EventStream(name)
	if !ok {
		if msg.WantsReply() {
			desc := fmt.Sprintf("%s: unknown launch-event stream %q (xpcd delivers %s and %s; activities have their own API)",
				bootstrap.OpEventHandler, name, bootstrap.StreamNotify, bootstrap.StreamUEvent)
			msg.ReplyError(ctx, (&opError{reason: bootstrap.ReasonBadRequest, desc: desc}).object())
		}
		return
	}
	msg.Defer()
	m.post(func() { m.eventHandler(inst, ch, stream, msg) })
}

// eventHandler: inst handles stream from now on, on ch.
func (m *supervisor) eventHandler(inst *instance, ch *channel, stream string, msg *xpc.Message) {
	j := inst.job
	if j.inst != inst || inst.ch != ch {
		if msg.WantsReply() {
			ch.send(outItem{reply: msg, replyErr: (&opError{reason: bootstrap.ReasonDenied,
				desc: "this channel no longer belongs to a running instance"}).object()})
		}
		return
	}
	if inst.events == nil {
		inst.events = &instEvents{ever: map[string]bool{}}
	}
	ie := inst.events
	if ie.ch != ch {
		ie.ch, ie.handlers = ch, map[string]bool{}
	}
	ie.handlers[stream], ie.ever[stream] = true, true
	inst.spoke = true
	if j.events != nil {
		delete(j.events.unhandled, stream)
	}
	if msg.WantsReply() {
		ch.send(outItem{reply: msg, msg: &xpc.Dictionary{}})
	}
	m.log.Debug("launch events: handler set", "target", j.target(), "pid", inst.pid, "stream", stream)
	m.deliverEvents(j)
	m.changed(j)
}

// handles reports whether inst has a handler for stream on its channel.
func (inst *instance) handles(stream string) bool {
	ie := inst.events
	return ie != nil && inst.ch != nil && ie.ch == inst.ch && ie.handlers[stream]
}

// inFlight reports whether ev is in the hands of inst, on its channel.
func (ev *pendingEvent) inFlight(inst *instance) bool {
	return ev.to == inst && inst != nil && ev.ch == inst.ch
}

// deliverEvents sends the running instance of j, for each stream it
// handles, the stream's oldest event, unless one of the stream's is
// already in its hands.
func (m *supervisor) deliverEvents(j *job) {
	inst, e := j.inst, j.events
	if inst == nil || inst.spawning || inst.stopWhy != "" || e == nil || inst.ch == nil {
		return
	}
	busy := map[string]bool{}
	for _, ev := range e.pending {
		if busy[ev.stream] || !inst.handles(ev.stream) {
			continue
		}
		busy[ev.stream] = true
		if !ev.inFlight(inst) {
			m.sendEvent(inst, ev)
		}
	}
}

// sendEvent sends ev to inst as a request; the answer comes back to
// eventAnswered.
func (m *supervisor) sendEvent(inst *instance, ev *pendingEvent) {
	ch := inst.ch
	msg := xpc.NewDictionary(5)
	msg.Set(bootstrap.KeyOp, xpc.String(bootstrap.OpEvent))
	msg.Set(bootstrap.KeyStream, xpc.String(ev.stream))
	msg.Set(bootstrap.KeyEventName, xpc.String(ev.name))
	msg.Set(bootstrap.KeyEventID, xpc.Uint64(ev.id))
	msg.Set(bootstrap.KeyPayload, ev.payload)
	ev.to, ev.ch, ev.sentAt = inst, ch, time.Now()
	it := outItem{msg: msg, answered: func(err error) {
		m.post(func() { m.eventAnswered(inst, ch, ev, err) })
	}}
	if !ch.send(it) {
		ev.to, ev.ch = nil, nil
	}
}

// eventAnswered: inst answered ev (err nil: acknowledged), or the request
// failed. An acknowledged event is forgotten; one refused (the service
// has no handler for the stream after all) or whose channel ended waits
// for the instance's next handler, or the next instance.
func (m *supervisor) eventAnswered(inst *instance, ch *channel, ev *pendingEvent, err error) {
	j := inst.job
	if ev.to != inst || ev.ch != ch || j.events == nil {
		return // given up, or sent again since
	}
	i := slices.Index(j.events.pending, ev)
	if i < 0 {
		return
	}
	var re *xpc.RemoteError
	switch {
	case err == nil:
		j.events.pending = slices.Delete(j.events.pending, i, i+1)
		m.saveEvents()
		m.log.Debug("launch event acknowledged", "target", j.target(), "pid", inst.pid, "stream", ev.stream, "id", ev.id)
	case errors.As(err, &re) || errors.Is(err, xpc.ErrNoReply):
		// The service answered, without acknowledging.
		ev.to, ev.ch = nil, nil
		if inst.ch == ch && inst.events != nil && inst.events.ch == ch {
			ie := inst.events
			delete(ie.handlers, ev.stream)
			level := slog.LevelWarn
			if ie.refused[ev.stream] {
				level = slog.LevelDebug
			} else if ie.refused == nil {
				ie.refused = map[string]bool{}
			}
			ie.refused[ev.stream] = true
			m.log.Log(context.Background(), level, "launch event refused by the service; waiting for it to set its handler again",
				"target", j.target(), "pid", inst.pid, "stream", ev.stream, "id", ev.id, "err", err)
		}
	default:
		// The channel ended: the event stays with the instance, which
		// is dying (eventsEnded counts it) or gets it again on its
		// next channel (inFlight).
		return
	}
	if j.inst == inst {
		m.deliverEvents(j)
	}
	m.changed(j)
}

// eventsEnded accounts for the events of an instance that ended (ran: its
// process ran; false for a launch that failed): each in its hands counts
// one death (but for an instance xpcd stopped as it shuts down), and goes
// after maxEventDeaths; each stream it never set a
// handler for while its events waited is taken for unhandled, and its
// events no longer launch the job.
func (m *supervisor) eventsEnded(inst *instance, ran bool) {
	j, e := inst.job, inst.job.events
	if e == nil || len(e.pending) == 0 {
		return
	}
	now := time.Now()
	kept := e.pending[:0]
	for _, ev := range e.pending {
		if ev.to != inst {
			kept = append(kept, ev)
			continue
		}
		ev.to, ev.ch = nil, nil
		m.saveEvents()
		if inst.stopWhy == stopShutdown {
			// xpcd stopped it to shut down: not the event's doing.
			kept = append(kept, ev)
			continue
		}
		if ev.deaths++; ev.deaths < maxEventDeaths {
			kept = append(kept, ev)
			continue
		}
		why := fmt.Sprintf("%d instances ended before acknowledging it", ev.deaths)
		m.dropEvent(j, ev, why, now)
	}
	clear(e.pending[len(kept):])
	e.pending = kept
	if !ran {
		return
	}
	for _, ev := range e.pending {
		if inst.events != nil && inst.events.ever[ev.stream] {
			continue
		}
		if _, ok := e.unhandled[ev.stream]; !ok {
			if e.unhandled == nil {
				e.unhandled = map[string]time.Time{}
			}
			e.unhandled[ev.stream] = now
			m.log.Warn("launch events: the job ran without handling the stream; its events wait and do not launch it",
				"target", j.target(), "pid", inst.pid, "stream", ev.stream)
		}
	}
}

// dropEvent gives ev up, remembering it for print and blame.
func (m *supervisor) dropEvent(j *job, ev *pendingEvent, why string, now time.Time) {
	e := j.events
	e.droppedN++
	if len(e.dropped) >= maxDroppedKept {
		e.dropped = slices.Delete(e.dropped, 0, 1)
	}
	e.dropped = append(e.dropped, droppedEvent{stream: ev.stream, name: ev.name, id: ev.id, at: now, why: why})
	m.log.Error("launch event dropped", "target", j.target(), "stream", ev.stream, "event", ev.name, "id", ev.id, "why", why)
}

// wantForEvents launches j, if events of a stream it handles wait: after
// an instance ended, after it is enabled again, and for the events it got
// back when xpcd restarted. After a launch that failed it does not: the
// next event (or anything else) launches it.
func (m *supervisor) wantForEvents(j *job, ran bool) {
	e := j.events
	if !ran || e == nil || j.inst != nil {
		return
	}
	for _, ev := range e.pending {
		if _, no := e.unhandled[ev.stream]; !no {
			m.want(j, launchReason{why: reasonEvent, event: ev.stream + " " + ev.name})
			return
		}
	}
}
