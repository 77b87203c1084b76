package xpc

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrBadCriteria is the kind of error an activity's criteria that cannot be
// honoured give: a key of the wrong type, a negative interval, an unknown
// priority.
var ErrBadCriteria = errors.New("bad activity criteria")

// ActivityPriority is an activity's priority (XPC_ACTIVITY_PRIORITY).
type ActivityPriority string

// Priorities.
const (
	// PriorityMaintenance (the default): the activity is held back while
	// the machine is under pressure (/proc/pressure), for up to its grace
	// period past due.
	PriorityMaintenance ActivityPriority = "Maintenance"
	// PriorityUtility: the activity runs as soon as it is due and its
	// criteria hold.
	PriorityUtility ActivityPriority = "Utility"
)

// The keys of an activity's criteria, as a dictionary (xpc_activity's
// XPC_ACTIVITY_* keys, and in a plist's LaunchEvents →
// com.apple.xpc.activity → NAME). Times are whole seconds.
// CriteriaRequireUserIdle is goxpc's: macOS has no such key.
const (
	CriteriaInterval                    = "Interval"
	CriteriaDelay                       = "Delay"
	CriteriaGracePeriod                 = "GracePeriod"
	CriteriaRepeating                   = "Repeating"
	CriteriaPriority                    = "Priority"
	CriteriaAllowBattery                = "AllowBattery"
	CriteriaRequireNetwork              = "RequireNetworkConnectivity"
	CriteriaRequireInexpensiveNetwork   = "RequireInexpensiveNetworkConnectivity"
	CriteriaRequireScreenSleep          = "RequireScreenSleep"
	CriteriaRequireUserIdle             = "RequireUserIdle"
	CriteriaCPUIntensive                = "CPUIntensive"
	CriteriaMemoryIntensive             = "MemoryIntensive"
	CriteriaDiskIntensive               = "DiskIntensive"
	maxCriteriaSeconds                  = 10 * 365 * 24 * 3600 // ten years
	criteriaDefaultGraceOfIntervalShare = 2                    // GracePeriod defaults to Interval / 2
)

// ActivityCriteria says when an activity may run (xpc_activity's
// criteria). Scheduling, as xpcd does it (docs/XPCD.md, "Activities"):
//
//   - An activity is due Delay after its base: the time it was
//     registered (or its criteria changed), or, for a repeating one, the
//     start of its last completed run (one the service said was done; a
//     run deferred, or cut short by its process ending, leaves the base
//     where it was). It runs when it is due and every criterion holds;
//     until then it waits, and `xpcctl activity print` names each
//     criterion not met.
//   - A run the service defers is retried once it is eligible again,
//     after a backoff (1 s, doubling, at most 5 minutes) that done
//     resets.
//   - Interval makes an activity repeating, every Interval. Unless set,
//     Delay is then Interval (so that Interval is kept as given) and
//     GracePeriod half of it, in whole seconds (rounded down). (macOS's
//     scheduler may run such an activity anywhere from Interval/2 on;
//     xpcd does not run it early.)
//   - GracePeriod is how long past due a PriorityMaintenance activity may
//     be held back while the machine is under pressure; past it only the
//     other criteria hold it.
//   - Runs missed while xpcd was stopped, or while criteria did not hold,
//     coalesce into one.
//
// The zero value is a one-shot activity due at once, at maintenance
// priority, that does not run on battery.
type ActivityCriteria struct {
	Interval    time.Duration
	Delay       time.Duration
	GracePeriod time.Duration
	Repeating   bool
	Priority    ActivityPriority // "" is PriorityMaintenance

	// AllowBattery: the activity may run while the machine runs on
	// battery. (A machine with no battery is on mains power.)
	AllowBattery bool
	// RequireNetwork: a default route exists (or the network manager
	// reports connectivity); RequireInexpensiveNetwork: and it is not
	// metered.
	RequireNetwork            bool
	RequireInexpensiveNetwork bool
	// RequireScreenSleep: the user's session is locked (logind's lock
	// hint). RequireUserIdle: it is idle (logind's idle hint).
	RequireScreenSleep bool
	RequireUserIdle    bool
	// CPUIntensive, MemoryIntensive, DiskIntensive: the activity waits
	// while the machine is under that pressure (/proc/pressure/cpu,
	// memory, io).
	CPUIntensive    bool
	MemoryIntensive bool
	DiskIntensive   bool
}

// Normalized returns c with the defaults filled in: Repeating when
// Interval is set, Delay and GracePeriod from Interval, and the priority.
func (c ActivityCriteria) Normalized() ActivityCriteria {
	if c.Interval > 0 {
		c.Repeating = true
		if c.Delay == 0 {
			c.Delay = c.Interval
		}
		if c.GracePeriod == 0 {
			c.GracePeriod = (c.Interval / criteriaDefaultGraceOfIntervalShare).Truncate(time.Second)
		}
	}
	if c.Priority == "" {
		c.Priority = PriorityMaintenance
	}
	return c
}

// Check reports whether c can be honoured: durations in whole seconds from
// 0 to ten years, a known priority, and a repeating activity with an
// interval.
func (c ActivityCriteria) Check() error {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{CriteriaInterval, c.Interval}, {CriteriaDelay, c.Delay}, {CriteriaGracePeriod, c.GracePeriod}} {
		if d.v < 0 || d.v > maxCriteriaSeconds*time.Second || d.v%time.Second != 0 {
			return fmt.Errorf("xpc: %w: %s: want whole seconds from 0 to %d, have %v", ErrBadCriteria, d.key, maxCriteriaSeconds, d.v)
		}
	}
	switch c.Priority {
	case "", PriorityMaintenance, PriorityUtility:
	default:
		return fmt.Errorf("xpc: %w: %s: want %s or %s, have %q", ErrBadCriteria, CriteriaPriority, PriorityMaintenance, PriorityUtility, c.Priority)
	}
	if c.Repeating && c.Interval == 0 {
		return fmt.Errorf("xpc: %w: %s without %s", ErrBadCriteria, CriteriaRepeating, CriteriaInterval)
	}
	return nil
}

// bools lists the boolean criteria, in key order, for reading and writing.
func (c *ActivityCriteria) bools() []struct {
	key string
	v   *bool
} {
	return []struct {
		key string
		v   *bool
	}{
		{CriteriaRepeating, &c.Repeating},
		{CriteriaAllowBattery, &c.AllowBattery},
		{CriteriaRequireNetwork, &c.RequireNetwork},
		{CriteriaRequireInexpensiveNetwork, &c.RequireInexpensiveNetwork},
		{CriteriaRequireScreenSleep, &c.RequireScreenSleep},
		{CriteriaRequireUserIdle, &c.RequireUserIdle},
		{CriteriaCPUIntensive, &c.CPUIntensive},
		{CriteriaMemoryIntensive, &c.MemoryIntensive},
		{CriteriaDiskIntensive, &c.DiskIntensive},
	}
}

// Dictionary returns c as a dictionary of its keys; false booleans and
// zero durations are left out.
func (c ActivityCriteria) Dictionary() *Dictionary {
	d := &Dictionary{}
	for _, t := range []struct {
		key string
		v   time.Duration
	}{{CriteriaInterval, c.Interval}, {CriteriaDelay, c.Delay}, {CriteriaGracePeriod, c.GracePeriod}} {
		if t.v != 0 {
			d.Set(t.key, Int64(t.v/time.Second))
		}
	}
	if c.Priority != "" {
		d.Set(CriteriaPriority, String(c.Priority))
	}
	for _, b := range c.bools() {
		if *b.v {
			d.Set(b.key, Bool(true))
		}
	}
	return d
}

// ParseActivityCriteria reads criteria from a dictionary of their keys
// (as Dictionary writes them, or a plist's). Integers may be signed or
// unsigned; booleans are booleans. A key of the wrong type or a value
// Check refuses is an error wrapping ErrBadCriteria. unknown lists the
// keys that are not criteria, for a caller to warn of.
func ParseActivityCriteria(d *Dictionary) (c ActivityCriteria, unknown []string, err error) {
	if d == nil {
		return c, nil, nil
	}
	bools := map[string]*bool{}
	for _, b := range c.bools() {
		bools[b.key] = b.v
	}
	for key, v := range d.All() {
		switch key {
		case CriteriaInterval, CriteriaDelay, CriteriaGracePeriod:
			n, ok := criteriaSeconds(v)
			if !ok {
				return c, nil, fmt.Errorf("xpc: %w: %s: want whole seconds from 0 to %d, have %s", ErrBadCriteria, key, maxCriteriaSeconds, describeObject(v))
			}
			*map[string]*time.Duration{CriteriaInterval: &c.Interval, CriteriaDelay: &c.Delay, CriteriaGracePeriod: &c.GracePeriod}[key] = n
		case CriteriaPriority:
			s, ok := v.(String)
			if !ok {
				return c, nil, fmt.Errorf("xpc: %w: %s: want a string, have %s", ErrBadCriteria, key, describeObject(v))
			}
			c.Priority = ActivityPriority(s)
		default:
			p, known := bools[key]
			if !known {
				unknown = append(unknown, key)
				continue
			}
			b, ok := v.(Bool)
			if !ok {
				return c, nil, fmt.Errorf("xpc: %w: %s: want a boolean, have %s", ErrBadCriteria, key, describeObject(v))
			}
			*p = bool(b)
		}
	}
	return c, unknown, c.Check()
}

// criteriaSeconds reads whole seconds from 0 to ten years.
func criteriaSeconds(v Object) (time.Duration, bool) {
	var n int64
	switch x := v.(type) {
	case Int64:
		n = int64(x)
	case Uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		n = int64(x)
	default:
		return 0, false
	}
	if n < 0 || n > maxCriteriaSeconds {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// describeObject names v's type, and its value when short, for errors.
func describeObject(v Object) string {
	switch x := v.(type) {
	case Int64, Uint64, Bool, Double:
		return fmt.Sprintf("%T %v", v, x)
	case String:
		if len(x) <= 32 {
			return fmt.Sprintf("%q", string(x))
		}
	}
	return fmt.Sprintf("%T", v)
}
