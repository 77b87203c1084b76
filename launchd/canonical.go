package launchd

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/goxpc/xpc"
)

// ToDictionary returns the job as a launchd.plist dictionary in canonical
// form: keys sorted; every setting goxpc acts on and nothing else (no
// unknown or unsupported keys); ThrottleInterval, ExitTimeOut and
// ProcessType always written, with their defaults when the file left them
// out; other keys only when set (false, 0 and empty are left out, except an
// empty ProgramArguments, which is invalid);
// KeepAlive as true when Always is set, else as its dictionary; a
// MachServices entry as true when it has no options. Durations are written
// in whole seconds, truncated.
//
// Written with xpc.ToPlist, the result parses (Parse, FromDictionary) to a
// job Equal to j, if j is valid. For an invalid job (built in code), the
// dictionary keeps the invalid values, so that validating it reports them.
func (j *Job) ToDictionary() *xpc.Dictionary {
	e := entries{}
	e.set("Label", xpc.String(j.Label))
	if j.Program != "" {
		e.set("Program", xpc.String(j.Program))
	}
	e.str("BundleProgram", j.BundleProgram)
	if j.ProgramArguments != nil {
		e.set("ProgramArguments", stringArray(j.ProgramArguments))
	}
	e.flag("Disabled", j.Disabled)
	e.str("UserName", j.UserName)
	e.str("GroupName", j.GroupName)
	if len(j.EnvironmentVariables) > 0 {
		env := entries{}
		for k, v := range j.EnvironmentVariables {
			env.set(k, xpc.String(v))
		}
		e.set("EnvironmentVariables", env.dict())
	}
	e.str("WorkingDirectory", j.WorkingDirectory)
	e.str("StandardInPath", j.StandardInPath)
	e.str("StandardOutPath", j.StandardOutPath)
	e.str("StandardErrorPath", j.StandardErrorPath)
	if j.Umask != nil {
		e.set("Umask", xpc.Int64(*j.Umask))
	}
	if j.Nice != 0 {
		e.set("Nice", xpc.Int64(j.Nice))
	}
	e.set("ProcessType", xpc.String(orDefault(j.ProcessType, DefaultProcessType)))
	e.flag("AbandonProcessGroup", j.AbandonProcessGroup)
	if len(j.MachServices) > 0 {
		ms := entries{}
		for name, s := range j.MachServices {
			if s.IsZero() {
				ms.set(name, xpc.Bool(true))
				continue
			}
			o := entries{}
			o.flag("HideUntilCheckIn", s.HideUntilCheckIn)
			o.flag("ResetAtClose", s.ResetAtClose)
			if !s.Requirement.IsZero() {
				o.set("Requirement", xpc.String(s.Requirement.String()))
			}
			ms.set(name, o.dict())
		}
		e.set("MachServices", ms.dict())
	}
	e.flag("RunAtLoad", j.RunAtLoad)
	if ka := j.KeepAlive.object(); ka != nil {
		e.set("KeepAlive", ka)
	}
	e.seconds("StartInterval", j.StartInterval, false)
	if len(j.StartCalendarInterval) > 0 {
		a := make(xpc.Array, len(j.StartCalendarInterval))
		for i, c := range j.StartCalendarInterval {
			a[i] = c.object()
		}
		e.set("StartCalendarInterval", a)
	}
	if len(j.WatchPaths) > 0 {
		e.set("WatchPaths", stringArray(j.WatchPaths))
	}
	if len(j.QueueDirectories) > 0 {
		e.set("QueueDirectories", stringArray(j.QueueDirectories))
	}
	e.seconds("ThrottleInterval", j.ThrottleInterval, true)
	e.seconds("ExitTimeOut", j.ExitTimeOut, true)
	e.flag("EnableTransactions", j.EnableTransactions)
	e.flag("EnablePressuredExit", j.EnablePressuredExit)
	e.seconds("XPCIdleExitTimeout", j.IdleExitTimeout, false)
	if ev := j.launchEventsObject(); ev != nil {
		e.set("LaunchEvents", ev)
	}
	if n := j.notificationsObject(); n != nil {
		e.set(NotificationsKey, n)
	}
	return e.dict()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// object is KeepAlive's plist value, or nil when it sets nothing.
func (k KeepAlive) object() xpc.Object {
	switch {
	case k.Always:
		return xpc.Bool(true)
	case k.IsZero():
		return nil
	}
	e := entries{}
	if k.SuccessfulExit != nil {
		e.set("SuccessfulExit", xpc.Bool(*k.SuccessfulExit))
	}
	if k.Crashed != nil {
		e.set("Crashed", xpc.Bool(*k.Crashed))
	}
	if len(k.PathState) > 0 {
		e.set("PathState", boolDict(k.PathState))
	}
	if len(k.OtherJobEnabled) > 0 {
		e.set("OtherJobEnabled", boolDict(k.OtherJobEnabled))
	}
	return e.dict()
}

func (c CalendarInterval) object() *xpc.Dictionary {
	e := entries{}
	for _, f := range []struct {
		key string
		p   *int
	}{{"Minute", c.Minute}, {"Hour", c.Hour}, {"Day", c.Day}, {"Weekday", c.Weekday}, {"Month", c.Month}} {
		if f.p != nil {
			e.set(f.key, xpc.Int64(*f.p))
		}
	}
	return e.dict()
}

// entries gathers a dictionary's entries, to build it with sorted keys.
type entries map[string]xpc.Object

func (e entries) set(k string, v xpc.Object) { e[k] = v }

func (e entries) flag(k string, b bool) {
	if b {
		e[k] = xpc.Bool(true)
	}
}

func (e entries) str(k, s string) {
	if s != "" {
		e[k] = xpc.String(s)
	}
}

// seconds writes a duration in whole seconds, when it is not zero or always.
func (e entries) seconds(k string, d time.Duration, always bool) {
	if d != 0 || always {
		e[k] = xpc.Int64(d / time.Second)
	}
}

func (e entries) dict() *xpc.Dictionary {
	d := xpc.NewDictionary(len(e))
	for _, k := range slices.Sorted(maps.Keys(e)) {
		d.Set(k, e[k])
	}
	return d
}

func stringArray(s []string) xpc.Array {
	a := make(xpc.Array, len(s))
	for i, v := range s {
		a[i] = xpc.String(v)
	}
	return a
}

func boolDict(m map[string]bool) *xpc.Dictionary {
	e := entries{}
	for k, v := range m {
		e.set(k, xpc.Bool(v))
	}
	return e.dict()
}

// Equal reports whether j and o define the same job: whether their
// canonical forms (ToDictionary) are equal. Path and Warnings do not count,
// nor do keys goxpc ignores, nor whether a default was written out. Two nil
// jobs are equal.
func (j *Job) Equal(o *Job) bool {
	if j == nil || o == nil {
		return j == o
	}
	return xpc.Equal(j.ToDictionary(), o.ToDictionary())
}

// Fingerprint returns a SHA-256 digest, in hex, of the job's canonical form
// (ToDictionary), so that xpcd can tell whether a plist bootstrapped again
// changed anything it acts on: equal jobs (Equal) have equal fingerprints,
// and a changed setting changes it. It does not depend on the file's
// format, key order, or Path.
func (j *Job) Fingerprint() string {
	h := sha256.New()
	hashObject(h, j.ToDictionary())
	return hex.EncodeToString(h.Sum(nil))
}

// hashObject writes an unambiguous encoding of o: a type byte, then
// lengths before contents, dictionary keys in sorted order.
func hashObject(h hash.Hash, o xpc.Object) {
	var buf [binary.MaxVarintLen64 + 1]byte
	num := func(tag byte, n uint64) {
		buf[0] = tag
		h.Write(buf[:1+binary.PutUvarint(buf[1:], n)])
	}
	str := func(s string) {
		num('s', uint64(len(s)))
		h.Write([]byte(s))
	}
	switch v := o.(type) {
	case xpc.Bool:
		if v {
			num('b', 1)
		} else {
			num('b', 0)
		}
	case xpc.Int64:
		num('i', uint64(v))
	case xpc.Uint64:
		num('u', uint64(v))
	case xpc.Double:
		num('f', math.Float64bits(float64(v)))
	case xpc.String:
		str(string(v))
	case xpc.Array:
		num('a', uint64(len(v)))
		for _, e := range v {
			hashObject(h, e)
		}
	case *xpc.Dictionary:
		keys := sortedKeys(v)
		num('d', uint64(len(keys)))
		for _, k := range keys {
			str(k)
			hashObject(h, v.Get(k))
		}
	default:
		// ToDictionary makes none of the other types.
		panic(fmt.Sprintf("launchd: cannot fingerprint %T", o))
	}
}

// Validate checks a job by the rules of Parse, for a Job built or changed in
// code: it validates ToDictionary and reports the same errors Parse would
// for the same settings, naming j.Path. It also rejects durations that are
// not whole seconds, which launchd.plist cannot express.
func (j *Job) Validate() error {
	var errs []error
	for _, f := range []struct {
		key string
		d   time.Duration
	}{
		{"StartInterval", j.StartInterval}, {"ThrottleInterval", j.ThrottleInterval},
		{"ExitTimeOut", j.ExitTimeOut}, {"XPCIdleExitTimeout", j.IdleExitTimeout},
	} {
		if f.d%time.Second != 0 {
			errs = append(errs, &Error{File: j.Path, Key: f.key, Reason: fmt.Sprintf("must be whole seconds, have %v", f.d), Err: ErrValueNotAllowed})
		}
	}
	_, err := FromDictionary(j.Path, j.ToDictionary())
	for _, e := range Errors(err) {
		errs = append(errs, e)
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}
