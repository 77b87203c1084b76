package criteria

import (
	"context"
	"sync"
	"time"

	"github.com/goxpc/xpc"
)

// Condition is one thing the criteria ask about.
type Condition string

// Conditions.
const (
	OnBattery          Condition = "on-battery"          // the machine runs on battery
	Network            Condition = "network"             // a usable network
	InexpensiveNetwork Condition = "inexpensive-network" // a network that is not metered
	ScreenLocked       Condition = "screen-locked"       // the session is locked
	UserIdle           Condition = "user-idle"           // the session is idle
	CPUPressure        Condition = "cpu-pressure"        // the machine is under CPU pressure
	MemoryPressure     Condition = "memory-pressure"     // ... memory pressure
	IOPressure         Condition = "io-pressure"         // ... I/O pressure
)

// AnyUser asks a session condition (ScreenLocked, UserIdle) of the machine
// as a whole: every session, for activities of the system domain.
const AnyUser = ^uint32(0)

// Fact is what a source says of one condition.
type Fact struct {
	// Known: the source answered. false: it is absent on this machine
	// or failed; Why says which.
	Known bool
	// Value is the answer, when Known.
	Value bool
	// Source names where the answer came from ("/sys/class/power_supply",
	// "logind", "NetworkManager", "kernel routes", "/proc/pressure/cpu").
	Source string
	// Why explains the answer for people: "no default route", "logind is
	// not on the system bus", "some avg10 23.5% over 10%".
	Why string
}

// Sources answers conditions.
type Sources interface {
	// Read answers c now, for the sessions of uid (AnyUser: of the
	// machine). It returns within ctx's deadline, an unknown Fact if
	// the source could not answer in time.
	Read(ctx context.Context, c Condition, uid uint32) Fact
	// Changed is sent on, without blocking (a buffer of one), when a
	// condition may have changed, by sources that can tell (D-Bus
	// signals, netlink); a caller re-reads what it waits for. Conditions
	// whose source cannot tell (pressure) are re-read by the caller from
	// time to time while something waits on them.
	Changed() <-chan struct{}
	// Close releases the sources (D-Bus connections, netlink sockets).
	Close() error
}

// Unmet is a criterion that does not hold.
type Unmet struct {
	// Key is the criterion's key (xpc.CriteriaAllowBattery, ...).
	Key string
	// Condition is the condition that was read.
	Condition Condition
	// Fact is its answer; Fact.Known false: its source is absent.
	Fact Fact
}

// String describes u for people: "AllowBattery: on battery
// (/sys/class/power_supply: BAT0 discharging)".
func (u Unmet) String() string {
	s := u.Key + ": "
	switch {
	case !u.Fact.Known:
		s += "unknown, no source"
	case u.Fact.Value:
		s += string(u.Condition)
	default:
		s += "no " + string(u.Condition)
	}
	if u.Fact.Source != "" || u.Fact.Why != "" {
		s += " (" + u.Fact.Source
		if u.Fact.Source != "" && u.Fact.Why != "" {
			s += ": "
		}
		s += u.Fact.Why + ")"
	}
	return s
}

// Evaluate reads the conditions c asks about and returns the criteria that
// do not hold, in key order; none: the activity may run. held says whether
// the pressure criteria of a maintenance activity apply even without the
// intensive keys (it is within its grace period; past it, pass false).
func Evaluate(ctx context.Context, s Sources, c xpc.ActivityCriteria, uid uint32, held bool) []Unmet {
	c = c.Normalized()
	type want struct {
		key  string
		cond Condition
		need bool // the value the criterion needs
	}
	var ws []want
	if !c.AllowBattery {
		ws = append(ws, want{xpc.CriteriaAllowBattery, OnBattery, false})
	}
	if c.RequireNetwork || c.RequireInexpensiveNetwork {
		ws = append(ws, want{xpc.CriteriaRequireNetwork, Network, true})
	}
	if c.RequireInexpensiveNetwork {
		ws = append(ws, want{xpc.CriteriaRequireInexpensiveNetwork, InexpensiveNetwork, true})
	}
	if c.RequireScreenSleep {
		ws = append(ws, want{xpc.CriteriaRequireScreenSleep, ScreenLocked, true})
	}
	if c.RequireUserIdle {
		ws = append(ws, want{xpc.CriteriaRequireUserIdle, UserIdle, true})
	}
	maint := held && c.Priority == xpc.PriorityMaintenance
	if c.CPUIntensive || maint {
		ws = append(ws, want{xpc.CriteriaCPUIntensive, CPUPressure, false})
	}
	if c.MemoryIntensive || maint {
		ws = append(ws, want{xpc.CriteriaMemoryIntensive, MemoryPressure, false})
	}
	if c.DiskIntensive || maint {
		ws = append(ws, want{xpc.CriteriaDiskIntensive, IOPressure, false})
	}
	var out []Unmet
	for _, w := range ws {
		f := s.Read(ctx, w.cond, uid)
		if !f.Known || f.Value != w.need {
			key := w.key
			if maint && !c.CPUIntensive && w.cond == CPUPressure ||
				maint && !c.MemoryIntensive && w.cond == MemoryPressure ||
				maint && !c.DiskIntensive && w.cond == IOPressure {
				key = xpc.CriteriaPriority
			}
			out = append(out, Unmet{Key: key, Condition: w.cond, Fact: f})
		}
	}
	return out
}

// Fake is a Sources whose answers a test sets. Conditions never set are
// unknown ("fake: not set"). It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	facts   map[Condition]Fact
	reads   map[Condition]int
	changed chan struct{}
	// Delay, if set, is how long each Read takes (bounded by its ctx).
	Delay time.Duration
}

// NewFake returns a Fake with nothing set.
func NewFake() *Fake {
	return &Fake{facts: map[Condition]Fact{}, reads: map[Condition]int{}, changed: make(chan struct{}, 1)}
}

// Set makes c known with value v, and signals Changed.
func (f *Fake) Set(c Condition, v bool) {
	f.SetFact(c, Fact{Known: true, Value: v, Source: "fake"})
}

// SetFact makes c answer fact, and signals Changed.
func (f *Fake) SetFact(c Condition, fact Fact) {
	f.mu.Lock()
	f.facts[c] = fact
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Reads says how often c was read.
func (f *Fake) Reads(c Condition) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads[c]
}

// Read implements Sources.
func (f *Fake) Read(ctx context.Context, c Condition, uid uint32) Fact {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return Fact{Source: "fake", Why: ctx.Err().Error()}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads[c]++
	if fact, ok := f.facts[c]; ok {
		return fact
	}
	return Fact{Source: "fake", Why: "not set"}
}

// Changed implements Sources.
func (f *Fake) Changed() <-chan struct{} { return f.changed }

// Close implements Sources.
func (f *Fake) Close() error { return nil }
