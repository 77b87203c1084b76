package xpcd

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// Administrative requests that act on one job: kickstart, kill,
// bootstrap, bootout.

// jobRef is the job a kickstart or kill names: DOMAIN/LABEL, or a job of
// a pid or apps domain (pid/PID/LABEL, apps/UID/LABEL, apps/system/LABEL),
// which xpcd made from a bundle but root and the domain's owner may still
// restart or signal, as launchctl does a pid domain's services.
type jobRef struct {
	t                Target
	appDom, appLabel string // an app domain's job
}

func (r jobRef) String() string {
	if r.appDom != "" {
		return r.appDom + "/" + r.appLabel
	}
	return r.t.String()
}

// jobArg reads the "target" key of a request that acts on one job.
func (ss *session) jobArg(op string, body *xpc.Dictionary) (jobRef, *opError) {
	if s, _ := body.String(bootstrap.KeyTarget); isAppTarget(s) {
		dom, _, label, oe := parseAppJobTarget(op, s) // apps_print.go
		return jobRef{appDom: dom, appLabel: label}, oe
	}
	t, oe := ss.targetArg(body, true)
	return jobRef{t: t}, oe
}

// findRef returns the job r names for a change by uid (on the loop).
func (m *supervisor) findRef(r jobRef, uid uint32) (*job, *opError) {
	if r.appDom != "" {
		return m.findAppJob(r.appDom, r.appLabel, uid, true)
	}
	return m.findJob(r.t, uid, true)
}

// kickstart: {"op":"kickstart","target":DOMAIN/LABEL,"kill":bool} ->
// {"status":"started"|"already running"|"restarting","pid":N}. It starts
// the job now, throttle or not; with kill, a running instance is stopped
// first and the job started again as soon as it has exited.
func opKickstart(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	t, oe := ss.jobArg("kickstart", body)
	if oe != nil {
		return nil, nil, oe
	}
	kill, _ := body.Bool(bootstrap.KeyKill)
	var reply *xpc.Dictionary
	res := make(chan error, 1)
	var inst *instance
	if e := ss.do(func() {
		m := ss.m
		var j *job
		if j, oe = m.findRef(t, ss.peer.UID); oe != nil {
			return
		}
		switch {
		case j.unloading:
			oe = &opError{reason: bootstrap.ReasonDraining, desc: fmt.Sprintf("job %s is being unloaded", t)}
		case j.gone != "":
			oe = &opError{reason: bootstrap.ReasonDraining, desc: plistDeletedText(j)}
		case m.unapproved(j):
			oe = notApproved("kickstart", j, m.reg.gate[j.target()])
		case j.disabled:
			oe = &opError{reason: bootstrap.ReasonDisabled, desc: fmt.Sprintf("job %s is disabled (xpcctl enable %s)", t, t)}
		case j.inst != nil && !kill:
			reply = xpc.Dict(bootstrap.KeyStatus, "already running", bootstrap.KeyPID, j.inst.pid)
		case j.inst != nil:
			j.inst.restart = launchReason{why: reasonKickstart}
			reply = xpc.Dict(bootstrap.KeyStatus, "restarting", bootstrap.KeyPID, j.inst.pid)
			m.stop(j.inst, stopKickstart)
		default:
			j.notBefore = time.Time{}
			j.refused = nil // an administrator's explicit start is tried
			inst = m.spawn(j, launchReason{why: reasonKickstart})
			inst.spawnErrW = append(inst.spawnErrW, func(err error) { res <- err })
			m.changed(j)
		}
	}); e != nil {
		return nil, nil, e
	}
	if oe != nil || reply != nil {
		return reply, nil, oe
	}
	return nil, func(ctx context.Context) (*xpc.Dictionary, *opError) {
		select {
		case err := <-res:
			if err != nil {
				return nil, &opError{reason: bootstrap.ReasonLaunchFailed, desc: fmt.Sprintf("kickstart %s: %v", t, err)}
			}
			// pid was set on the loop before res was written.
			return xpc.Dict(bootstrap.KeyStatus, "started", bootstrap.KeyPID, inst.pid), nil
		case <-ctx.Done():
			return nil, &opError{reason: bootstrap.ReasonShuttingDown, desc: ctx.Err().Error()}
		}
	}, nil
}

// kill: {"op":"kill","target":DOMAIN/LABEL,"signal":N (default 15)} ->
// {"status":"signaled","pid":N}. The signal goes to the process through its
// pidfd.
func opKill(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	t, oe := ss.jobArg("kill", body)
	if oe != nil {
		return nil, nil, oe
	}
	sig := int64(syscall.SIGTERM)
	if v, err := body.Int64(bootstrap.KeySignal); err == nil {
		sig = v
	}
	if sig < 1 || sig > 64 {
		return nil, nil, badRequest("signal %d out of range", sig)
	}
	var reply *xpc.Dictionary
	if e := ss.do(func() {
		var j *job
		if j, oe = ss.m.findRef(t, ss.peer.UID); oe != nil {
			return
		}
		if j.inst == nil || j.inst.spawning {
			oe = &opError{reason: bootstrap.ReasonNotRunning, desc: fmt.Sprintf("job %s is not running", t)}
			return
		}
		if err := j.inst.proc.signal(syscall.Signal(sig)); err != nil {
			oe = &opError{reason: bootstrap.ReasonNotRunning, desc: fmt.Sprintf("signal %s: %v", t, err)}
			return
		}
		// If it ends of it, an administrator ended it (exitWhyOf).
		j.inst.adminSignal = syscall.Signal(sig)
		reply = xpc.Dict(bootstrap.KeyStatus, "signaled", bootstrap.KeyPID, j.inst.pid)
	}); e != nil {
		return nil, nil, e
	}
	return reply, nil, oe
}

// bootstrap: {"op":"bootstrap","domain":D,"path":PLIST} ->
// {"status":S,"label":L}. S is "loaded"; "already loaded" for the same
// label with the same settings (Fingerprint), from any path; "upgraded"
// for changed settings of a job not running (the new definition is
// used at once); "upgrade pending" for changed settings of a running job
// (it is stopped once clean and its next launch uses the new definition).
// A plist that does not load fails with reason bad-plist and "errors":
// [{file,key,reason,error}]. Keys that have no effect (a misspelled
// Requirement, say) are in the reply's "warnings", and logged.
func opBootstrap(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	dom, owner, oe := ss.domainArg(body)
	if oe != nil {
		return nil, nil, oe
	}
	path, err := body.String(bootstrap.KeyPath)
	if err != nil || !filepath.IsAbs(path) {
		return nil, nil, badRequest("bootstrap: want an absolute path")
	}
	if !mayModify(ss.peer.UID, dom, owner) {
		return nil, nil, domainDenied(ss.peer.UID, "change", dom)
	}
	def, lerrs := ss.readPlist(body, dom, owner, filepath.Clean(path))
	if lerrs != nil {
		var descs []string
		errs := xpc.Array{}
		for _, le := range lerrs {
			descs = append(descs, le.String())
			errs = append(errs, loadErrorDict(le))
		}
		return nil, nil, &opError{reason: bootstrap.ReasonBadPlist, desc: strings.Join(descs, "; "), extra: xpc.Dict(bootstrap.KeyErrors, errs)}
	}
	var reply *xpc.Dictionary
	bucket := ss.bucket // what the domain counts under, if made now: looked up off the loop
	if owner != ss.peer.UID {
		bucket = ss.m.buckets.of(owner)
	}
	if e := ss.do(func() {
		ss.m.labelClaimed(dom, def.Label) // registry.go
		reply, oe = ss.m.bootstrap(dom, owner, bucket, def)
	}); e != nil {
		return nil, nil, e
	}
	if oe == nil && len(def.Warnings) > 0 {
		ws := make([]string, len(def.Warnings))
		for i, w := range def.Warnings {
			ws[i] = w.String()
			ss.log.Warn("bootstrap: ignored key", "domain", dom, "file", path, "key", w.Key, "reason", w.Reason)
		}
		reply.Set(bootstrap.KeyWarnings, strArray(ws))
	}
	ss.warnProgram(reply, &programJob{def: def, dom: dom, owner: owner}) // failfast_program.go
	return reply, nil, oe
}

// bootout: {"op":"bootout","target":DOMAIN/LABEL,"wait":bool} ->
// {"status":"not loaded"|"unloaded"|"stopping"}. The job's names go at
// once; a running instance is stopped (terminate, SIGTERM, SIGKILL after
// ExitTimeOut) and the job removed when it has exited. With wait, the
// reply comes then, with status "unloaded".
func opBootout(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	t, oe := ss.targetArg(body, true)
	if oe != nil {
		return nil, nil, oe
	}
	wait, _ := body.Bool(bootstrap.KeyWait)
	if !mayModify(ss.peer.UID, t.Domain, t.UID) {
		return nil, nil, domainDenied(ss.peer.UID, "change", t.Domain)
	}
	var status string
	var gone chan struct{}
	if e := ss.do(func() {
		m := ss.m
		d := m.domains[t.Domain]
		if d == nil || d.jobs[t.Label] == nil {
			status = "not loaded"
			return
		}
		j := d.jobs[t.Label]
		if m.bootout(j, stopBootout) {
			status = "unloaded"
			return
		}
		status = "stopping"
		gone = make(chan struct{})
		j.unloadWaiters = append(j.unloadWaiters, gone)
		m.changed(j)
	}); e != nil {
		return nil, nil, e
	}
	if !wait || gone == nil {
		return xpc.Dict(bootstrap.KeyStatus, status), nil, nil
	}
	return nil, func(ctx context.Context) (*xpc.Dictionary, *opError) {
		select {
		case <-gone:
			return xpc.Dict(bootstrap.KeyStatus, "unloaded"), nil
		case <-ctx.Done():
			return nil, &opError{reason: bootstrap.ReasonShuttingDown, desc: ctx.Err().Error()}
		}
	}, nil
}

// bootout unloads j, as the bootout verb does: its names go at once, its
// instance (if any) is stopped, for why (stopBootout, stopAppExited), and
// j is removed once that has exited (finishUnload, which also closes j's
// unloadWaiters). It reports whether j is gone already; a job already
// being unloaded is left as it is.
func (m *supervisor) bootout(j *job, why string) (gone bool) {
	if j.unloading {
		return false
	}
	j.unloading = true
	for name, o := range j.dom.names {
		if o == j {
			delete(j.dom.names, name)
		}
	}
	j.next = nil
	m.unloadedWhile(j, false)
	j.cancelThrottle()
	m.syncSchedule(j)
	if j.inst == nil {
		m.finishUnload(j)
		return true
	}
	m.stop(j.inst, why)
	return false
}
