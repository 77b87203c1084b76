package xpcd

import (
	"errors"
	"fmt"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// Clients fail fast (docs/XPCD.md, "Clients that fail fast"). When xpcd
// knows that a launch cannot happen, the clients waiting for the job are
// told why at once, with a refusal (refuse) that ends their wait, not the
// name: it carries bootstrap.KeyRetry, and the library makes it an
// interruption. That is when the launch fails; when the instance ends on
// its own before it has checked in the name a client waits for; while the
// job is throttled after such an end (a crash loop: a client arriving then
// is refused at once, not queued); and when the job is disabled or booted
// out. A client waiting for a name that the instance that ended had
// checked in (it ran and served) keeps waiting for the relaunch, which
// is what lets a crashed service's clients reconnect.

// earlyEnd is how a job's last instance ended, when it ended on its own or
// did not launch: what a client refused during the throttle that follows
// is told.
type earlyEnd struct {
	code string // the reason code: bootstrap.ReasonLaunchFailed, or exitWhy's
	desc string // how it ended, for people
	// names are the names it had checked in; a client waiting for one of
	// them is not refused (it served, and may again).
	names map[string]bool
	// undeclared is a name whose check-in xpcd refused as not declared
	// in its MachServices, if it tried one.
	undeclared string
}

// checkins are the names an instance ever checked in, on any channel
// (its names are those of its current channel), and the last it tried
// that its MachServices do not declare.
type checkins struct {
	names      map[string]bool // nil until the first
	undeclared string
}

func (c *checkins) add(name string) {
	if c.names == nil {
		c.names = map[string]bool{}
	}
	c.names[name] = true
}

// launchFailed: j's launch failed with err (j.err says so already). Every
// client waiting for j is refused at once, with that reason.
func (m *supervisor) launchFailed(j *job, err error) {
	j.early = &earlyEnd{code: bootstrap.ReasonLaunchFailed, desc: "launch failed: " + err.Error()}
	var re *RuleError
	errors.As(err, &re)
	m.refuseWaiting(j, func(p *pending) *opError {
		oe := retryRefusal(bootstrap.ReasonLaunchFailed, "service %s: job %s: %s", p.name, j.target(), j.early.desc)
		if re != nil {
			oe.extra.Set(bootstrap.KeyRule, xpc.String(re.Rule))
		}
		return oe
	})
}

// instanceEnded: inst, j's instance, has ended as why says. If it ended on
// its own, the clients waiting for a name it had not checked in are
// refused with why, and j remembers how it ended for the throttle
// (throttledFor). A stop xpcd asked for leaves its clients waiting.
func (m *supervisor) instanceEnded(inst *instance, why exitWhy) {
	j := inst.job
	if inst.stopWhy != "" {
		j.early = nil
		return
	}
	e := &earlyEnd{code: why.code, desc: why.desc, names: inst.checkins.names, undeclared: inst.checkins.undeclared}
	j.early = e
	m.refuseWaiting(j, func(p *pending) *opError {
		if e.names[p.name] {
			return nil
		}
		oe := retryRefusal(why.code, "service %s: %s, before checking in %s%s", p.name, why.desc, p.name, e.undeclaredText())
		switch why.code {
		case bootstrap.ReasonExited:
			oe.extra.Set(bootstrap.KeyExitStatus, xpc.Int64(why.status))
		case bootstrap.ReasonSignaled:
			oe.extra.Set(bootstrap.KeySignal, xpc.Int64(why.signal))
		}
		return oe
	})
}

// undeclaredText says, after a sentence, that the instance checked in a
// name its MachServices do not declare, if it did.
func (e *earlyEnd) undeclaredText() string {
	if e.undeclared == "" {
		return ""
	}
	return fmt.Sprintf(" (it checked in %s, which its MachServices do not declare)", e.undeclared)
}

// throttledFor is the refusal of a client that looks name up while j is
// throttled because its last instance ended before checking name in, or
// did not launch; nil if j is not, and the client is to wait.
func (m *supervisor) throttledFor(j *job, name string) *opError {
	e := j.early
	now := time.Now()
	if j.inst != nil || e == nil || e.names[name] || !now.Before(j.notBefore) {
		return nil
	}
	last := e.desc
	if e.code != bootstrap.ReasonLaunchFailed {
		last = fmt.Sprintf("%s, before checking in %s%s", e.desc, name, e.undeclaredText())
	}
	at := j.notBefore
	if j.throttle != nil {
		at = j.throttleAt
	}
	return retryRefusal(bootstrap.ReasonThrottled, "service %s: job %s is throttled: %s; xpcd tries again at %s (in %s)",
		name, j.target(), last, at.Format("15:04:05.000"), at.Sub(now).Round(time.Millisecond))
}

// unloadedWhile refuses the clients waiting for j, which was disabled
// (disabled true) or booted out while they waited.
func (m *supervisor) unloadedWhile(j *job, disabled bool) {
	code, what := bootstrap.ReasonNotFound, "was booted out"
	if disabled {
		code, what = bootstrap.ReasonDisabled, "was disabled"
	}
	m.refuseWaiting(j, func(p *pending) *opError {
		return retryRefusal(code, "service %s: job %s %s while the client waited", p.name, j.target(), what)
	})
}

// refuseWaiting refuses each client waiting for j that why gives a
// refusal for; the others keep waiting.
func (m *supervisor) refuseWaiting(j *job, why func(*pending) *opError) {
	kept := j.queue[:0]
	for _, p := range j.queue {
		oe := why(p)
		if oe == nil {
			kept = append(kept, p)
			continue
		}
		m.release(p)
		m.refusePending(p, oe)
	}
	clear(j.queue[len(kept):])
	j.queue = kept
}

// refusePending refuses one client, whose socket is no longer counted.
func (m *supervisor) refusePending(p *pending, oe *opError) {
	m.log.Debug("lookup refused while waiting", "name", p.name, "reason", oe.reason, "err", oe.desc)
	if err := refuse(p.fd, oe); err != nil {
		m.log.Debug("lookup: the client did not get its refusal", "name", p.name, "err", err)
	}
}

// retryRefusal is a refusal that ends a client's wait, not the name
// (bootstrap.KeyRetry).
func retryRefusal(code, format string, args ...any) *opError {
	return &opError{reason: code, desc: fmt.Sprintf(format, args...), extra: xpc.Dict(bootstrap.KeyRetry, true)}
}
