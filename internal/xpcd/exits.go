package xpcd

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// Why instances ended, for the clients that lost them (docs/XPCD.md,
// "exit-reason"). At each exit xpcd works out the reason (exitWhyOf) and
// keeps it in a ring of the last maxExitRecords exits. A service
// connection that loses its service without having been told why (the
// terminating frame a stopped service sends its peers says it) asks, by
// the service's name and the pid the service's hello gave it; if that
// process has not been reaped yet, the answer waits for it, at most
// exitAnswerWait.

const (
	// maxExitRecords is how many exits xpcd remembers the reason of.
	maxExitRecords = 256
	// exitAnswerWait bounds how long exit-reason waits for a process that
	// has not ended (or not been reaped) yet. The library gives up
	// sooner.
	exitAnswerWait = 500 * time.Millisecond
	// maxExitWaiters is the most exit-reason requests that may wait for
	// one process; more are answered at once that it has not ended.
	maxExitWaiters = 64
)

// exitWhy is why an instance ended: a reason code (bootstrap.Reason*),
// with the exit status or the signal, and a sentence.
type exitWhy struct {
	code   string
	status int            // for ReasonExited
	signal syscall.Signal // for ReasonSignaled
	desc   string
}

// dict is exit-reason's answer.
func (w exitWhy) dict() *xpc.Dictionary {
	d := xpc.Dict(bootstrap.KeyReason, w.code, bootstrap.KeyDescription, w.desc)
	switch w.code {
	case bootstrap.ReasonExited:
		d.Set(bootstrap.KeyExitStatus, xpc.Int64(w.status))
	case bootstrap.ReasonSignaled:
		d.Set(bootstrap.KeySignal, xpc.Int64(w.signal))
	}
	return d
}

// stopCode is the reason code of a stop xpcd asked for (stop*), as
// terminate carries it and exit-reason answers it.
func stopCode(why string) string {
	switch why {
	case stopIdle:
		return bootstrap.ReasonIdleExit
	case stopPressure:
		return bootstrap.ReasonMemoryPressure
	case stopUpgrade:
		return bootstrap.ReasonUpgrade
	case stopShutdown:
		return bootstrap.ReasonShuttingDown
	}
	// bootout, kickstart -k: an administrator's.
	return bootstrap.ReasonKilled
}

// exitWhyOf says why inst ended as st says: the stop xpcd asked for, if it
// did; an administrator's signal (kill) that ended it; a signal it did
// not expect (a crash); or its own exit.
func exitWhyOf(inst *instance, st exitStatus) exitWhy {
	who := fmt.Sprintf("%s (pid %d)", inst.def.Label, inst.pid)
	switch {
	case inst.stopWhy != "":
		return exitWhy{code: stopCode(inst.stopWhy), desc: fmt.Sprintf("xpcd stopped %s: %s", who, stopText(inst.stopWhy))}
	case adminEnded(inst.adminSignal, st):
		return exitWhy{code: bootstrap.ReasonKilled,
			desc: fmt.Sprintf("%s ended after an administrator sent it %s", who, unix.SignalName(inst.adminSignal))}
	case !st.known:
		return exitWhy{code: bootstrap.ReasonUnknown, desc: who + " ended; how is unknown (xpcd adopted it, and is not its parent)"}
	case st.signal != 0:
		return exitWhy{code: bootstrap.ReasonSignaled, signal: st.signal, desc: fmt.Sprintf("%s was killed by %s", who, unix.SignalName(st.signal))}
	}
	return exitWhy{code: bootstrap.ReasonExited, status: st.code, desc: fmt.Sprintf("%s exited with status %d", who, st.code)}
}

// adminEnded reports whether a process an administrator sent sig (0:
// none) ended because of it: killed by that signal, or exiting (as asked)
// after a signal that asks a process to end.
func adminEnded(sig syscall.Signal, st exitStatus) bool {
	if sig == 0 || st.signal == sig {
		return sig != 0
	}
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGKILL:
		return st.signal == 0
	}
	return false
}

// pastExit is one remembered exit.
type pastExit struct {
	pid      int
	dom      string
	owner    uint32                         // the domain's
	services map[string]launchd.MachService // the names it provided
	why      exitWhy
}

// exitRing holds the last maxExitRecords exits, oldest overwritten first.
type exitRing struct {
	recs []pastExit
	next int
}

func (r *exitRing) add(e pastExit) {
	if len(r.recs) < maxExitRecords {
		r.recs = append(r.recs, e)
		return
	}
	r.recs[r.next] = e
	r.next = (r.next + 1) % maxExitRecords
}

// find returns the latest exit of pid.
func (r *exitRing) find(pid int) (pastExit, bool) {
	for i := range r.recs {
		// From the newest back.
		e := r.recs[(r.next-1-i+2*len(r.recs))%len(r.recs)]
		if e.pid == pid {
			return e, true
		}
	}
	return pastExit{}, false
}

// recordExit remembers why inst ended, and tells those waiting to know.
func (m *supervisor) recordExit(inst *instance, st exitStatus) {
	why := exitWhyOf(inst, st)
	m.noteCrash(inst, why) // crash.go
	m.exits.add(pastExit{pid: inst.pid, dom: inst.job.dom.name, owner: inst.job.dom.owner, services: inst.def.MachServices, why: why})
	for _, w := range inst.exitWaiters {
		w <- why // buffered: never waits
	}
	inst.exitWaiters = nil
}

// mayKnowExit reports whether a caller with uid may be told why an
// instance of domain dom, providing services, ended, when it asks by
// name: only a caller that may look name up there. (The lookup policy of
// the name, where one applies, is the same question.)
func mayKnowExit(uid uint32, dom string, owner uint32, services map[string]launchd.MachService, name string) bool {
	_, provided := services[name]
	return provided && mayRead(uid, dom, owner)
}

// exit-reason: {"op":"exit-reason","name":NAME,"pid":PID} ->
// {"reason":CODE,"description":S,"exit_status"?:N,"signal"?:N}: why the
// process PID, an instance of the service NAME, ended. A process of that
// service still running (or not reaped yet) is waited for, at most
// exitAnswerWait; the answer is then an error, as it is for a process
// xpcd does not know, or whose service the caller may not look up.
func opExitReason(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	name, err := body.String(bootstrap.KeyName)
	if err != nil {
		return nil, nil, badRequest("exit-reason: no name")
	}
	if err := launchd.CheckServiceName(name); err != nil {
		// Not echoed: the name is the caller's, of any length.
		return nil, nil, badRequest("exit-reason: not a valid service name")
	}
	pid64, err := body.Int64(bootstrap.KeyPID)
	if err != nil || pid64 <= 0 || pid64 > 1<<22 {
		return nil, nil, badRequest("exit-reason: no pid, or not a process id")
	}
	pid, uid := int(pid64), ss.peer.UID
	unknown := notFound("exit-reason: no process %d of a service %s you may look up has ended", pid, name)
	var known *exitWhy
	var wait chan exitWhy
	var inst *instance
	var need xpc.Requirement // the name's lookup requirement, if it has one
	if e := ss.do(func() {
		// The running process first: a pid in the ring may since have
		// been given to it.
		if inst = ss.m.byPID[pid]; inst != nil {
			dom := inst.job.dom
			if !inst.spawning && len(inst.exitWaiters) < maxExitWaiters && mayKnowExit(uid, dom.name, dom.owner, inst.def.MachServices, name) {
				wait = make(chan exitWhy, 1)
				inst.exitWaiters = append(inst.exitWaiters, wait)
				need = inst.def.MachServices[name].Requirement
			}
			return
		}
		if e, ok := ss.m.exits.find(pid); ok && mayKnowExit(uid, e.dom, e.owner, e.services, name) {
			known = &e.why
			need = e.services[name].Requirement
		}
	}); e != nil {
		return nil, nil, e
	}
	// Only a caller that may look the name up learns how its process
	// ended: one that meets the name's requirement too (checked off the
	// loop, as a lookup's is).
	if !need.IsZero() && need.CheckWith(ss.peer, ss.m.trust) != nil {
		if wait != nil {
			ss.m.post(func() {
				inst.exitWaiters = slices.DeleteFunc(inst.exitWaiters, func(w chan exitWhy) bool { return w == wait })
			})
		}
		return nil, nil, unknown
	}
	switch {
	case known != nil:
		return known.dict(), nil, nil
	case wait == nil && ss.s.systemSocket != "":
		// A user's instance passes lookups it cannot serve on to the
		// system instance, so the process may be one of its services:
		// ask it, as the lookup was passed on.
		return nil, func(ctx context.Context) (*xpc.Dictionary, *opError) {
			return ss.s.forwardExitReason(ctx, name, pid, unknown)
		}, nil
	case wait == nil:
		return nil, nil, unknown
	}
	return nil, func(ctx context.Context) (*xpc.Dictionary, *opError) {
		t := time.NewTimer(exitAnswerWait)
		defer t.Stop()
		select {
		case why := <-wait:
			return why.dict(), nil
		case <-t.C:
		case <-ctx.Done():
		}
		ss.m.post(func() {
			inst.exitWaiters = slices.DeleteFunc(inst.exitWaiters, func(w chan exitWhy) bool { return w == wait })
		})
		return nil, notFound("exit-reason: process %d of %s has not ended", pid, name)
	}, nil
}
