package bootstrap

import (
	"strconv"
	"strings"
)

// Activities, launch events and notifications (docs/XPCD.md, "Activities",
// "Launch events", "Notifications"): the words of their operations.

// Operations a service sends on its check-in channel.
const (
	// OpActivityRegister registers the activity KeyActivityID of the
	// service's job with the criteria KeyCriteria (a dictionary of
	// xpc.ActivityCriteria's keys), replacing earlier ones; without
	// KeyCriteria it checks in for the activity the job declared (plist
	// LaunchEvents) or registered before, and fails with ReasonNotFound
	// when there is none. From then on xpcd delivers it (OpActivity) on
	// this channel. The reply has KeyCriteria: the criteria in force.
	OpActivityRegister = "activity-register"
	// OpActivityUnregister removes the activity KeyActivityID.
	OpActivityUnregister = "activity-unregister"
	// OpActivityState: the service's handler moved the activity
	// KeyActivityID to KeyActivityState (ActivityContinue, ActivityDone,
	// ActivityDefer). A request; the reply is empty or an error.
	OpActivityState = "activity-state"
	// OpEventHandler: the service handles the launch-event stream
	// KeyStream; xpcd starts delivering its events (OpEvent).
	OpEventHandler = "event-handler"
)

// Operations xpcd sends on a service's check-in channel.
const (
	// OpActivity: run the activity KeyActivityID (KeyCriteria its
	// criteria). One-way; the service answers with OpActivityState.
	OpActivity = "activity"
	// OpActivityShouldDefer: the criteria of the running activity
	// KeyActivityID no longer hold (KeyShouldDefer true), or hold again
	// (false). One-way.
	OpActivityShouldDefer = "activity-should-defer"
	// OpEvent delivers one launch event: KeyStream, KeyEventName (the
	// name of the descriptor in the plist that matched), KeyEventID, and
	// KeyPayload (a dictionary: the notification's name and state, the
	// uevent's properties, ...). Sent as a request: the reply, sent once
	// the service's handler has returned, acknowledges it, and xpcd
	// forgets the event; until then a new instance gets it again.
	OpEvent = "event"
)

// Operations on the bootstrap connection.
const (
	// OpNotifyPost posts the notification KeyName, setting its state to
	// KeyNotifyState when that is present.
	OpNotifyPost = "notify-post"
	// OpNotifyRegister: tell this connection of every post of KeyName
	// (OpNotify messages) until it closes or cancels.
	OpNotifyRegister = "notify-register"
	// OpNotifyCancel: stop telling this connection of KeyName.
	OpNotifyCancel = "notify-cancel"
	// OpNotifyGet answers KeyNotifyState, the state of KeyName.
	OpNotifyGet = "notify-get"
	// OpNotify, from xpcd to a registered connection: KeyName was posted;
	// KeyNotifyState is its state then.
	OpNotify = "notify"

	// OpActivityList answers KeyActivities: the activities of KeyDomain
	// (or of every domain the caller may read), each a dictionary with
	// KeyDomain, KeyLabel, KeyActivityID, KeyActivityState and more for
	// people (docs/XPCD.md).
	OpActivityList = "activity-list"
	// OpActivityPrint answers one activity, KeyTarget (DOMAIN/LABEL) and
	// KeyActivityID: its criteria, state, last run, next eligible time
	// and, while it waits, each criterion not met.
	OpActivityPrint = "activity-print"
	// OpActivityRun runs the activity KeyTarget, KeyActivityID now,
	// whatever its schedule and criteria (for testing), launching its job
	// if needed.
	OpActivityRun = "activity-run"
)

// Keys of the operations above.
const (
	KeyActivityID    = "activity"       // an activity's identifier
	KeyActivityState = "activity_state" // one of the Activity* states
	KeyCriteria      = "criteria"       // an activity's criteria (a dictionary)
	KeyShouldDefer   = "should_defer"   // OpActivityShouldDefer's answer
	KeyActivities    = "activities"     // OpActivityList's answer
	KeyStream        = "stream"         // a launch-event stream (Stream*)
	KeyEventName     = "event_name"     // the plist's name for the descriptor that matched
	KeyEventID       = "event_id"       // an event's number, unique in its job
	KeyPayload       = "payload"        // what an event says (a dictionary)
	KeyNotifyState   = "notify_state"   // a notification's 64-bit state (uint64)
	// KeySkip: OpActivityList's first activity to answer (0 by default);
	// KeyMore (true) in its reply: there are more after these, asked for
	// with KeySkip the count so far. A reply holds at most
	// MaxListedActivities, to stay within a message's size.
	KeySkip = "skip"
	KeyMore = "more"
	// MaxListedActivities is the most activities one OpActivityList reply
	// holds.
	MaxListedActivities = 1000
)

// States of an activity (KeyActivityState), xpc_activity's.
const (
	ActivityCheckIn  = "check-in"
	ActivityWait     = "wait"
	ActivityRun      = "run"
	ActivityDefer    = "defer"
	ActivityContinue = "continue"
	ActivityDone     = "done"
)

// UserNotificationPrefix begins the notification names that belong to a
// user: "user.uid.1000.com.example.changed" is user 1000's (as notifyd's
// names are). Every other name is the system's.
const UserNotificationPrefix = "user.uid."

// NotificationOwner says whose the notification name is: user true and the
// uid for a name "user.uid.UID.REST" (UID in decimal, no leading zeros,
// REST not empty); user false for the system's names.
func NotificationOwner(name string) (uid uint32, user bool) {
	rest, ok := strings.CutPrefix(name, UserNotificationPrefix)
	if !ok {
		return 0, false
	}
	num, tail, ok := strings.Cut(rest, ".")
	if !ok || tail == "" || num == "" || len(num) > 1 && num[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

// Launch-event streams, as the library names them to xpcd in
// OpEventHandler and xpcd in OpEvent: the same strings as launchd's
// StreamNotify, StreamUEvent, StreamIOKit and StreamActivity (the plist's
// words), which the library cannot import.
const (
	StreamNotify   = "com.apple.notifyd.matching"
	StreamUEvent   = "org.goxpc.uevent"
	StreamIOKit    = "com.apple.iokit.matching" // read as StreamUEvent
	StreamActivity = "com.apple.xpc.activity"
)

// EventStream returns the stream a service's handler for stream receives
// the events of (StreamIOKit is StreamUEvent), and false for a name that
// is not a stream of events delivered with OpEvent (activities have their
// own operations).
func EventStream(stream string) (string, bool) {
	switch stream {
	case StreamNotify, StreamUEvent:
		return stream, true
	case StreamIOKit:
		return StreamUEvent, true
	}
	return "", false
}

// Activity words added with xpcd's scheduler (docs/XPCD.md, "Activities").
const (
	// RuleActivityLimit: a job may have only so many activities, and a
	// user only so many over all the jobs of their domains (counted by
	// bucket, as RuleJobLimit; docs/SECURITY.md).
	RuleActivityLimit = "activity-limit"
	// ReasonBadCriteria: OpActivityRegister's KeyCriteria cannot be
	// honoured (xpc.ErrBadCriteria).
	ReasonBadCriteria = "bad-criteria"
	// ReasonActivityNotRunning: OpActivityState for an activity that is
	// not running (xpcd did not deliver it, or it has ended).
	ReasonActivityNotRunning = "activity-not-running"
)

// Rules of notifications (docs/SECURITY.md, "Notifications").
const (
	// RuleNotifyName: a user other than root may register for, get and
	// post only their own notification names (NotificationOwner) and,
	// for all but posting, the system's.
	RuleNotifyName = "notify-name"
	// RuleNotifyPost: a system notification name may be posted only by
	// root or by a process that meets a grant for it (Notifications →
	// NAME → PostRequirement in a system-domain job).
	RuleNotifyPost = "notify-post"
	// RuleNotifyLimit: a user other than root may have only so many
	// names with a state, and only so many registrations, on one
	// connection and in all.
	RuleNotifyLimit = "notify-limit"
)
