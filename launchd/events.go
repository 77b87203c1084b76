package launchd

import (
	"fmt"
	"path"
	"strings"

	"github.com/goxpc/xpc"
)

// Launch-event streams: the keys of LaunchEvents. Apple's names are
// accepted; where Linux's source differs, the stream has a name of its own.
const (
	// StreamActivity: each name is an activity of the job and its
	// descriptor the activity's criteria (xpc.ActivityCriteria's keys);
	// they are in Job.Activities.
	StreamActivity = "com.apple.xpc.activity"
	// StreamNotify: a descriptor {Notification = NAME} matches each post
	// of the notification NAME, as notifyd's matching does.
	StreamNotify = "com.apple.notifyd.matching"
	// StreamUEvent: a descriptor matches the kernel's device events
	// (uevents) by their properties, as the kernel names them (ACTION,
	// SUBSYSTEM, DEVPATH, DEVNAME, DEVTYPE, DRIVER, ...): each key must
	// equal the event's property, or match it as a shell pattern
	// (path.Match). {SUBSYSTEM = "block"; ACTION = "add"} matches every
	// block device added.
	StreamUEvent = "org.goxpc.uevent"
	// StreamIOKit is Apple's IOKit matching stream: a plist may name it
	// for StreamUEvent. IOKit's own keys (the provider class, vendor ids, ...)
	// mean nothing on Linux and are ignored with a warning.
	StreamIOKit = "com.apple.iokit.matching"

	// NotificationKey is the key of a StreamNotify descriptor.
	NotificationKey = "Notification"
	// MaxLaunchEvents is the most descriptors, over all streams, one job
	// may declare.
	MaxLaunchEvents = 64
	// MaxNotificationNameLen is the longest notification name, in bytes.
	MaxNotificationNameLen = 512
	// MaxUEventPattern is the longest value of a StreamUEvent descriptor,
	// in bytes, and MaxUEventKeys the most properties one matches: every
	// kernel device event is matched against every descriptor, so what
	// one costs is bounded.
	MaxUEventPattern = 1024
	MaxUEventKeys    = 16
)

// launchEvents reads LaunchEvents: stream → name → descriptor.
func (d *decoder) launchEvents(key keyPath, v xpc.Object, j *Job) {
	streams, ok := d.dict(key, v)
	if !ok {
		return
	}
	n := 0
	for _, stream := range sortedKeys(streams) {
		k := key.dot(stream)
		events, ok := d.dict(k, streams.Get(stream))
		if !ok {
			continue
		}
		canon := stream
		switch stream {
		case StreamIOKit:
			canon = StreamUEvent
		case StreamActivity, StreamNotify, StreamUEvent:
		default:
			d.warn(k, "unknown launch-event stream: ignored (goxpc has "+StreamActivity+", "+StreamNotify+" and "+StreamUEvent+")")
			continue
		}
		for _, name := range sortedKeys(events) {
			ek := k.dot(name)
			if r := labelProblem(name); r != "" {
				d.fail(ek, ErrValueNotAllowed, "event name "+r)
				continue
			}
			if n++; n > MaxLaunchEvents {
				d.fail(ek, ErrValueNotAllowed, fmt.Sprintf("more than %d launch events", MaxLaunchEvents))
				return
			}
			desc, ok := d.dict(ek, events.Get(name))
			if !ok {
				continue
			}
			d.launchEvent(ek, canon, name, desc, j)
		}
	}
}

// launchEvent reads one descriptor of stream.
func (d *decoder) launchEvent(key keyPath, stream, name string, desc *xpc.Dictionary, j *Job) {
	var out *xpc.Dictionary
	switch stream {
	case StreamActivity:
		c, unknown, err := xpc.ParseActivityCriteria(desc)
		if err != nil {
			d.errs = append(d.errs, &Error{File: d.file, Key: string(key), Reason: strings.TrimPrefix(err.Error(), "xpc: "),
				Err: fmt.Errorf("%w: %w", ErrValueNotAllowed, err)})
			return
		}
		for _, u := range unknown {
			d.warn(key.dot(u), "not an activity criterion: ignored")
		}
		if j.Activities == nil {
			j.Activities = map[string]xpc.ActivityCriteria{}
		}
		j.Activities[name] = c
		return
	case StreamNotify:
		out = d.notifyDescriptor(key, desc)
	case StreamUEvent:
		out = d.ueventDescriptor(key, desc)
	}
	if out == nil {
		return
	}
	if j.LaunchEvents == nil {
		j.LaunchEvents = map[string]map[string]*xpc.Dictionary{}
	}
	if j.LaunchEvents[stream] == nil {
		j.LaunchEvents[stream] = map[string]*xpc.Dictionary{}
	}
	j.LaunchEvents[stream][name] = out
}

// notifyDescriptor reads {Notification = NAME}.
func (d *decoder) notifyDescriptor(key keyPath, desc *xpc.Dictionary) *xpc.Dictionary {
	var out *xpc.Dictionary
	d.fields(key, desc, map[string]field{
		NotificationKey: func(k keyPath, v xpc.Object) {
			s, ok := d.str(k, v)
			if !ok {
				return
			}
			if r := NotificationNameProblem(s); r != "" {
				d.fail(k, ErrValueNotAllowed, r)
				return
			}
			out = &xpc.Dictionary{}
			out.Set(NotificationKey, xpc.String(s))
		},
	}, nil)
	if out == nil && desc.Get(NotificationKey) == nil {
		d.fail(key.dot(NotificationKey), ErrMissingKey, missingReason(desc, NotificationKey))
	}
	return out
}

// ueventDescriptor reads a dictionary of uevent properties and patterns.
func (d *decoder) ueventDescriptor(key keyPath, desc *xpc.Dictionary) *xpc.Dictionary {
	out := &xpc.Dictionary{}
	for _, prop := range sortedKeys(desc) {
		k := key.dot(prop)
		if !isUEventProperty(prop) {
			d.warn(k, "not a uevent property (they are upper case, as ACTION, SUBSYSTEM, DEVNAME): ignored")
			continue
		}
		s, ok := d.str(k, desc.Get(prop))
		if !ok {
			continue
		}
		if len(s) > MaxUEventPattern {
			d.fail(k, ErrValueNotAllowed, fmt.Sprintf("longer than %d bytes", MaxUEventPattern))
			continue
		}
		if out.Len() == MaxUEventKeys {
			d.fail(k, ErrValueNotAllowed, fmt.Sprintf("more than %d properties in one descriptor", MaxUEventKeys))
			break
		}
		if _, err := path.Match(s, ""); err != nil {
			d.fail(k, ErrValueNotAllowed, fmt.Sprintf("bad pattern %q: %v", s, err))
			continue
		}
		out.Set(prop, xpc.String(s))
	}
	if out.Len() == 0 {
		d.warn(key, "matches no uevent property: ignored")
		return nil
	}
	return out
}

// isUEventProperty: upper-case letters, digits and '_', as the kernel and
// udev name properties, at most 64 bytes.
func isUEventProperty(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// NotificationNameProblem says why s is not a valid notification name, or
// "": 1 to MaxNotificationNameLen bytes of visible characters.
func NotificationNameProblem(s string) string {
	switch {
	case s == "":
		return "notification name must not be empty"
	case len(s) > MaxNotificationNameLen:
		return fmt.Sprintf("notification name longer than %d bytes", MaxNotificationNameLen)
	}
	for _, r := range s {
		if !isGraphic(r) {
			return fmt.Sprintf("notification name must not contain white space or control characters (have %U)", r)
		}
	}
	return ""
}

// launchEventsObject is LaunchEvents in canonical form, or nil.
func (j *Job) launchEventsObject() xpc.Object {
	if len(j.LaunchEvents) == 0 && len(j.Activities) == 0 {
		return nil
	}
	streams := entries{}
	for stream, events := range j.LaunchEvents {
		e := entries{}
		for name, desc := range events {
			e.set(name, desc)
		}
		streams.set(stream, e.dict())
	}
	if len(j.Activities) > 0 {
		e := entries{}
		for name, c := range j.Activities {
			e.set(name, c.Dictionary())
		}
		streams.set(StreamActivity, e.dict())
	}
	return streams.dict()
}
