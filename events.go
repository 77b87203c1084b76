package xpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// ErrUnknownStream: HandleEvents for a stream xpcd does not deliver with
// it (launchd.StreamNotify and launchd.StreamUEvent, or its alias
// launchd.StreamIOKit, are; activities have their own API).
var ErrUnknownStream = errors.New("unknown launch-event stream")

// maxQueuedEvents bounds the events a stream's handler has waiting in the
// service; xpcd sends a stream's next event only once the last is
// acknowledged, so one is the most it sees.
const maxQueuedEvents = 64

// Event is one launch event, as xpcd delivers it to the handler of its
// stream: Stream is the stream's Linux name (launchd.StreamUEvent for a
// handler set for launchd.StreamIOKit, which is read as it), Name the name
// of the job's descriptor (the plist's key under the stream in
// LaunchEvents) that matched, ID the event's number, unique in the job, and
// Payload what the event says: for launchd.StreamNotify
// {Notification = NAME; State = STATE (a uint64)}, for launchd.StreamUEvent the
// uevent's properties (ACTION, DEVPATH, SUBSYSTEM, SEQNUM, ...).
type Event struct {
	Stream, Name string
	ID           uint64
	Payload      *Dictionary
}

// eventStream is one stream's handler and the events waiting for it
// (guarded by the Service's mu); running: a goroutine hands them over.
type eventStream struct {
	stream  string
	fn      func(ctx context.Context, ev *Event)
	queue   []*Message
	running bool
}

// HandleEvents sets the handler of the launch-event stream stream, as
// xpc_set_event_stream_handler does: xpcd delivers to it the events of the
// descriptors the job's plist declares under LaunchEvents for that stream,
// those that waited for the service included (xpcd launches a job that is
// not running when one of its events comes).
//
//	svc, err := xpc.CheckIn(ctx)
//	...
//	err = svc.HandleEvents(ctx, launchd.StreamNotify, func(ctx context.Context, ev *xpc.Event) {
//		name, _ := ev.Payload.String("Notification")
//		...
//	})
//
// Call it early, as Listen: events wait in xpcd until the handler is set.
// A job that runs and ends without setting the handler of a stream whose
// events wait is not launched again for them (xpcctl print says so).
//
// Delivery is acknowledged and at least once. The events of a stream are
// handed to handler one at a time, in order, on a goroutine of the
// service's; ctx is the service's, which ends with Close. Once handler
// returns, the event is acknowledged and xpcd forgets it. If the process
// ends first (a crash, a kill), or its check-in channel does (xpcd
// restarted), the event is delivered again, to the next instance or on the
// new channel; ID tells a repeat apart. A handler that panics is not
// recovered: the process ends as for any panic, the event unacknowledged,
// and the next instance gets it, up to three instances, after which xpcd
// drops it and reports it. While a handler runs, the service has an open
// transaction (no idle exit). Close waits for running handlers to return.
//
// HandleEvents fails with ErrUnknownStream for a stream xpcd does not
// deliver events of, and with ErrNotLaunched on a nil Service (CheckIn
// failed: the process was not launched by xpcd). After xpcd restarts and
// the service is adopted again, its handlers are declared again.
func (s *Service) HandleEvents(ctx context.Context, stream string, handler func(ctx context.Context, ev *Event)) error {
	if s == nil {
		return fmt.Errorf("xpc: HandleEvents: %w", ErrNotLaunched)
	}
	canon, ok := bootstrap.EventStream(stream)
	if !ok {
		hint := fmt.Sprintf("the streams are %s and %s (or %s)", bootstrap.StreamNotify, bootstrap.StreamUEvent, bootstrap.StreamIOKit)
		if stream == bootstrap.StreamActivity {
			hint = "activities are run through Service.RegisterActivity"
		}
		return fmt.Errorf("xpc: HandleEvents(%q): %w: %s", stream, ErrUnknownStream, hint)
	}
	if handler == nil {
		return fmt.Errorf("xpc: HandleEvents(%q): a nil handler", stream)
	}
	s.mu.Lock()
	if s.events == nil {
		s.events = map[string]*eventStream{}
	}
	if _, dup := s.events[canon]; dup {
		s.mu.Unlock()
		return fmt.Errorf("xpc: HandleEvents(%q): the stream already has a handler", stream)
	}
	s.events[canon] = &eventStream{stream: canon, fn: handler}
	ctl := s.ctl
	s.mu.Unlock()
	if err := declareHandler(ctx, ctl, canon); err != nil {
		s.mu.Lock()
		delete(s.events, canon)
		s.mu.Unlock()
		return err
	}
	return nil
}

// declareHandler tells xpcd, on ctl, that the service handles stream.
func declareHandler(ctx context.Context, ctl *Connection, stream string) error {
	if ctl == nil {
		return interruptedError(nil, "no check-in channel to xpcd")
	}
	_, err := ctl.SendWithReply(ctx, Dict(bootstrap.KeyOp, bootstrap.OpEventHandler, bootstrap.KeyStream, stream))
	var re *RemoteError
	if errors.As(err, &re) {
		if reason, _ := re.Object.String(bootstrap.KeyReason); reason == bootstrap.ReasonBadRequest {
			return fmt.Errorf("xpc: HandleEvents(%q): %w: %s", stream, ErrUnknownStream, re.Object.Description())
		}
		return fmt.Errorf("xpc: HandleEvents(%q): %s", stream, re.Object.Description())
	}
	if err != nil {
		return wrapf(err, "HandleEvents(%q)", stream)
	}
	return nil
}

// declareHandlers declares every handler again on ctl, a check-in channel
// the service was adopted on.
func (s *Service) declareHandlers(ctx context.Context, ctl *Connection) error {
	s.mu.Lock()
	streams := make([]string, 0, len(s.events))
	for st := range s.events {
		streams = append(streams, st)
	}
	s.mu.Unlock()
	for _, st := range streams {
		if err := declareHandler(ctx, ctl, st); err != nil {
			return err
		}
	}
	return nil
}

// event handles xpcd's OpEvent, m: queued for its stream's handler, or
// refused (an error reply: xpcd keeps the event) when the stream has none.
func (s *Service) event(ctx context.Context, m *Message) {
	stream, _ := m.Body.String(bootstrap.KeyStream)
	s.mu.Lock()
	es := s.events[stream]
	if es == nil || len(es.queue) >= maxQueuedEvents {
		s.mu.Unlock()
		if m.WantsReply() {
			e := NewErrorObject(fmt.Sprintf("no handler for launch-event stream %q, or too many of its events waiting", stream))
			e.Set(bootstrap.KeyReason, String(bootstrap.ReasonBadRequest))
			_ = m.ReplyError(ctx, e)
		}
		return
	}
	m.Defer()
	es.queue = append(es.queue, m)
	start := !es.running
	es.running = true
	if start {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if start {
		go s.runEvents(es)
	}
}

// runEvents hands the events queued for es to its handler, one at a time,
// acknowledging each once the handler has returned.
func (s *Service) runEvents(es *eventStream) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(es.queue) == 0 {
			es.running = false
			s.mu.Unlock()
			return
		}
		m := es.queue[0]
		es.queue[0] = nil
		es.queue = es.queue[1:]
		s.mu.Unlock()
		ev := &Event{Stream: es.stream}
		ev.Name, _ = m.Body.String(bootstrap.KeyEventName)
		ev.ID, _ = m.Body.Uint64(bootstrap.KeyEventID)
		ev.Payload, _ = m.Body.Get(bootstrap.KeyPayload).(*Dictionary)
		if ev.Payload == nil {
			ev.Payload = Dict()
		}
		end := s.tx.Begin()
		es.fn(s.ctx, ev)
		end()
		// Not sent once Close has begun: the event was not seen
		// through, and goes to the next instance.
		_ = m.Reply(s.ctx, Dict())
	}
}
