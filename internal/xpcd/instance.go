package xpcd

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// An instance's life on the supervisor's loop: spawn (fork and exec happen
// off the loop; the outcome comes back in spawned), the end of its process
// (exited; what follows is afterExit's, job.go), and the stops xpcd asks
// for: terminate, SIGTERM, then SIGKILL after ExitTimeOut.

// spawn starts an instance. The fork and exec happen in another goroutine;
// the loop learns the outcome in spawned.
func (m *supervisor) spawn(j *job, r launchReason) *instance {
	j.cancelThrottle()
	inst := &instance{job: j, def: j.def, fp: j.fp, reason: r, spawning: true, names: map[string]bool{}}
	j.inst = inst
	j.lastLaunch = time.Now()
	j.lastReason = r
	m.live++
	m.inflight++
	mk := marker{instance: m.instance, nonce: newNonce(), fingerprint: j.fp, reason: r.why, domain: j.dom.name, label: j.def.Label}
	spec := &spawnSpec{domain: j.dom.name, owner: j.dom.owner, def: j.def, env: m.baseEnv, marker: mk.String()}
	m.log.Info("launching", "target", j.target(), "reason", r.why, "requester_pid", r.requester)
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		sp, conn, probe, err := m.startProcess(spec)
		if !m.post(func() { m.spawned(inst, sp, conn, probe, err) }) {
			// The loop has stopped (a shutdown that did not wait for
			// us): let the process be.
			if conn != nil {
				conn.Cancel()
				probe.Close()
			}
			if sp != nil {
				sp.proc.close()
			}
		}
	}()
	return inst
}

// startProcess launches a process and opens xpcd's end of its check-in
// channel, outside the loop. probe is a duplicate of that end (see
// channel.probe).
func (m *supervisor) startProcess(spec *spawnSpec) (_ *spawned, _ *xpc.Connection, probe *os.File, _ error) {
	sp, err := m.launcher.launch(spec)
	if err != nil {
		return nil, nil, nil, err
	}
	if sp.checkin == nil {
		return sp, nil, nil, nil // a fake launcher's process, in tests
	}
	probe, sp.checkin = sp.checkin, nil
	conn, err := xpc.NewConnectionFromFile(probe, connOptions()...)
	if err != nil {
		// Without its channel the service could never check in.
		probe.Close()
		sp.proc.killGroup(syscall.SIGKILL)
		sp.proc.wait(false)
		sp.proc.close()
		if sp.output != nil {
			sp.output.stop(true)
		}
		return nil, nil, nil, fmt.Errorf("check-in channel: %w", err)
	}
	return sp, conn, probe, nil
}

// spawned is the outcome of spawn.
func (m *supervisor) spawned(inst *instance, sp *spawned, conn *xpc.Connection, probe *os.File, err error) {
	j := inst.job
	inst.spawning = false
	m.inflight--
	if m.closing && m.inflight == 0 && m.settled != nil {
		close(m.settled)
		m.settled = nil
	}
	waiters := inst.spawnErrW
	inst.spawnErrW = nil
	defer func() {
		for _, w := range waiters {
			w(err)
		}
	}()
	if err != nil {
		m.log.Error("launch failed", "target", j.target(), "err", err)
		j.err = "launch failed: " + err.Error()
		m.launchFailed(j, err)
		j.inst = nil
		m.instanceGone()
		j.notBefore = j.lastLaunch.Add(m.throttleOf(j, inst.def))
		var re *RuleError
		if errors.As(err, &re) && inst.def == j.def {
			m.refuseJob(j, re)
		}
		m.afterExit(j, inst, false)
		return
	}
	j.err = ""
	inst.attach(sp)
	m.trackOutput(sp.output)
	inst.started = time.Now()
	inst.idleFrom = inst.started
	j.runs++
	m.byPID[inst.pid] = inst
	m.exesChanged()
	m.log.Info("launched", "target", j.target(), "pid", inst.pid)
	if m.detached {
		// Shutdown gave up waiting for this launch and has let go of
		// everything: let go of this one too, leaving its record.
		m.saveProcesses()
		if conn != nil {
			conn.Cancel()
			probe.Close()
		}
		sp.proc.close()
		m.trackOutput(nil)
		if sp.output != nil {
			go sp.output.stop(false)
		}
		return
	}
	if conn != nil {
		ch := newChannel(conn, 0)
		ch.probe = probe
		conn.SetHandler(&checkinHandler{m: m, inst: inst, ch: ch})
		inst.ch = ch
		conn.Activate()
	}
	m.watchExit(inst)
	m.saveProcesses()
	if inst.stopWhy != "" {
		m.beginStop(inst)
	} else {
		m.armIdle(inst)
	}
	m.changed(j)
}

// watchExit waits for the instance's process to end, in a goroutine.
func (m *supervisor) watchExit(inst *instance) {
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		st, err := inst.proc.wait(inst.def.AbandonProcessGroup)
		if err != nil {
			return // released: xpcd is shutting down
		}
		m.post(func() { m.exited(inst, st) })
	}()
}

func (m *supervisor) instanceGone() {
	m.live--
	if m.closing && m.live == 0 && m.allGone != nil {
		close(m.allGone)
		m.allGone = nil
	}
}

// exited: the instance's process has ended.
func (m *supervisor) exited(inst *instance, st exitStatus) {
	j := inst.job
	if j.inst != inst {
		return
	}
	inst.stopTimers()
	if inst.ch != nil {
		inst.ch.close()
		inst.ch.conn.Cancel()
		inst.ch = nil
	}
	inst.proc.close()
	m.recordExit(inst, st)
	delete(m.byPID, inst.pid)
	m.exesChanged()
	j.inst = nil
	m.instanceGone()
	j.lastExit = &st
	j.lastExitAt = time.Now()
	j.lastStop = inst.stopWhy
	m.log.Info("exited", "target", j.target(), "pid", inst.pid, "status", st.String(), "stop_reason", inst.stopWhy)
	m.saveProcesses()
	if inst.stopWhy == "" {
		j.notBefore = inst.started.Add(m.throttleOf(j, inst.def))
	} else {
		j.notBefore = time.Time{}
	}
	m.instanceEnded(inst, exitWhyOf(inst, st))
	m.afterExit(j, inst, true)
}

// stop asks an instance to exit, for why (stop*): terminate on its
// channel, SIGTERM once the service has answered, and SIGKILL to its group
// ExitTimeOut after the stop began (never, if ExitTimeOut is 0).
func (m *supervisor) stop(inst *instance, why string) {
	if inst.stopWhy != "" {
		return
	}
	inst.stopWhy = why
	if inst.idleTimer != nil {
		inst.idleTimer.Stop()
		inst.idleTimer = nil
	}
	if !inst.spawning {
		m.beginStop(inst)
	}
	m.changed(inst.job)
}

// beginStop stops inst: SIGKILL to its group is set for ExitTimeOut from
// now, and SIGTERM goes once the service has told its peers why it is
// about to go (beginTerminate), at once to a process that does not speak
// the check-in protocol.
func (m *supervisor) beginStop(inst *instance) {
	j := inst.job
	inst.stopAt = time.Now()
	m.log.Info("stopping", "target", j.target(), "pid", inst.pid, "stop_reason", inst.stopWhy)
	if t := inst.def.ExitTimeOut; t > 0 {
		var timer *time.Timer
		timer = time.AfterFunc(t, func() {
			m.post(func() {
				if j.inst != inst || inst.killTimer != timer {
					return
				}
				m.log.Warn("did not exit in time: SIGKILL", "target", j.target(), "pid", inst.pid, "exit_timeout", t)
				inst.proc.killGroup(syscall.SIGKILL)
			})
		})
		inst.killTimer = timer
	}
	if !m.beginTerminate(inst) {
		m.sigterm(inst)
	}
}

// termAnswerWait is how long xpcd waits for a service's answer to
// terminate before it sends SIGTERM all the same: a service that does
// not answer (it hangs, or speaks the protocol without the library and
// ignores the request) is stopped that much later, never later than
// ExitTimeOut allows (termWait). The library tells its peers within half
// of it, and a library of before the answer answers too: its handler
// returns without replying, which sends the no-reply frame.
const termAnswerWait = time.Second

// termWait is how long SIGTERM waits for the answer to terminate, for a
// job whose ExitTimeOut is exitTimeOut: termAnswerWait, and at most half
// of ExitTimeOut, so that SIGTERM still comes well before SIGKILL.
func termWait(exitTimeOut time.Duration) time.Duration {
	if exitTimeOut > 0 {
		return min(termAnswerWait, exitTimeOut/2)
	}
	return termAnswerWait
}

// beginTerminate sends terminate on the instance's check-in channel, with
// why xpcd stops it: the library then tells the service's peers, and
// answers. It reports whether SIGTERM is to wait for that answer (or
// termWait): it is not for a process that has never spoken on its
// channel, which has no clients (they are handed over after a check-in),
// nor for one without a channel.
func (m *supervisor) beginTerminate(inst *instance) bool {
	if inst.ch == nil {
		return false
	}
	msg := xpc.Dict(bootstrap.KeyOp, bootstrap.OpTerminate, bootstrap.KeyReason, stopCode(inst.stopWhy))
	if !inst.spoke {
		inst.ch.send(outItem{msg: msg})
		return false
	}
	it := outItem{msg: msg, answered: func(error) {
		// Any answer will do: an error, or the no-reply of a library
		// that does not answer.
		m.post(func() { m.terminated(inst, nil) })
	}}
	if !inst.ch.send(it) {
		return false
	}
	var t *time.Timer
	t = time.AfterFunc(termWait(inst.def.ExitTimeOut), func() {
		m.post(func() { m.terminated(inst, t) })
	})
	inst.termTimer = t
	return true
}

// terminated: the instance answered terminate, or (timer set, as its
// termTimer) it did not in time. SIGTERM follows, once.
func (m *supervisor) terminated(inst *instance, timer *time.Timer) {
	if inst.job.inst != inst || inst.termSent || (timer != nil && inst.termTimer != timer) {
		return
	}
	if inst.termTimer != nil {
		inst.termTimer.Stop()
		inst.termTimer = nil
	}
	m.sigterm(inst)
}

func (m *supervisor) sigterm(inst *instance) {
	inst.termSent = true
	if err := inst.proc.signal(syscall.SIGTERM); err != nil {
		m.log.Debug("SIGTERM", "target", inst.job.target(), "err", err)
	}
}

// --- idle exit, pressure, upgrade ---

// armIdle (re)starts the idle timer of an instance that may be idle:
// XPCIdleExitTimeout set, no open transactions, no clients waiting.
func (m *supervisor) armIdle(inst *instance) {
	if inst.idleTimer != nil {
		inst.idleTimer.Stop()
		inst.idleTimer = nil
	}
	if !inst.idleCandidate() {
		return
	}
	deadline := inst.idleFrom.Add(inst.def.IdleExitTimeout)
	var t *time.Timer
	t = time.AfterFunc(time.Until(deadline), func() {
		m.post(func() {
			if inst.idleTimer != t {
				return
			}
			inst.idleTimer = nil
			m.idleCheck(inst)
		})
	})
	inst.idleTimer = t
}

func (inst *instance) idleCandidate() bool {
	return inst.def.IdleExitTimeout > 0 && inst.job.inst == inst && !inst.spawning &&
		inst.stopWhy == "" && inst.txKnown && inst.tx == 0 && len(inst.job.queue) == 0
}

func (m *supervisor) idleCheck(inst *instance) {
	if !inst.idleCandidate() {
		return
	}
	if time.Since(inst.idleFrom) < inst.def.IdleExitTimeout {
		m.armIdle(inst)
		return
	}
	m.stop(inst, stopIdle)
}

// pressure: memory is short. Clean services that enable pressured exit are
// stopped.
func (m *supervisor) pressure() {
	for _, pid := range slices.Sorted(maps.Keys(m.byPID)) {
		inst := m.byPID[pid]
		if inst.def.EnablePressuredExit && inst.stopWhy == "" && inst.txKnown && inst.tx == 0 {
			m.stop(inst, stopPressure)
		}
	}
}

// upgradeDetected: the instance's executable changed on disk.
func (m *supervisor) upgradeDetected(inst *instance) {
	if inst.job.inst != inst || inst.upgrade {
		return
	}
	inst.upgrade = true
	m.log.Info("executable changed; restarting when clean", "target", inst.job.target(), "pid", inst.pid)
	m.upgradeIfClean(inst)
	m.changed(inst.job)
}
