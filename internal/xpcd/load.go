package xpcd

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// Job definitions in a domain: loading one (bootstrap), replacing it, and
// removing a booted-out job. Labels and service names are unique in a
// domain.

// readPlist reads the plist a bootstrap request names, with the
// requester's rights, never xpcd's: from the descriptor the requester
// opened and sent ("plist", as xpcctl does, like launchctl handing launchd
// its plist), or else by opening path as the requester (its uid and gid
// from the kernel, its groups from the user database). Either way an error
// says only what the requester could have learnt by opening the file
// itself.
func (ss *session) readPlist(body *xpc.Dictionary, dom string, owner uint32, path string) (*launchd.Job, []loadError) {
	if fd, ok := body.Get(bootstrap.KeyPlist).(*xpc.FD); ok {
		return loadPlistFile(dom, owner, fd.File(), path)
	}
	var f *os.File
	err := asUser(callerIdent(ss.peer.UID, ss.peer.GID, true), func() error {
		var oerr error
		// O_NONBLOCK: opening a FIFO must not wait for a writer.
		f, oerr = openNamed(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) // openpath.go
		return oerr
	})
	if err != nil {
		return nil, []loadError{{Domain: dom, File: path, Reason: openReason(err)}}
	}
	defer f.Close()
	return loadPlistFile(dom, owner, f, path)
}

func (m *supervisor) bootstrap(dom string, owner, bucket uint32, def *launchd.Job) (*xpc.Dictionary, *opError) {
	if m.domains[dom] == nil && !m.userMode && dom != DomainSystem {
		m.addDomain(newDomain(dom, owner, bucket))
	}
	d, oe := m.served(dom, owner)
	if oe != nil {
		return nil, oe
	}
	status := func(s string) *xpc.Dictionary { return xpc.Dict(bootstrap.KeyStatus, s, bootstrap.KeyLabel, def.Label) }
	j := d.jobs[def.Label]
	if j == nil {
		if n := m.bucketJobs(d); m.root && d.name != DomainSystem && d.owner != 0 && n >= maxJobsPerUserDomain {
			re := refusedBy(bootstrap.RuleJobLimit, "%s has %d jobs loaded, the limit", bucketName(d.bucket), n)
			return nil, ruleOpError(re, "bootstrap %s: %s", def.Label, re.Detail)
		}
		if _, oe := m.addJob(d, def, true); oe != nil {
			return nil, oe
		}
		m.otherJobsChanged(d)
		m.log.Info("loaded", "target", dom+"/"+def.Label, "plist", def.Path)
		return status("loaded"), nil
	}
	if j.unloading {
		return nil, &opError{reason: bootstrap.ReasonDraining, desc: fmt.Sprintf("job %s is still draining after bootout; try again when it has exited", j.target())}
	}
	// A job whose plist was deleted (plistgone.go) is loaded again from
	// the plist given, as one put back would be.
	gone := j.gone
	j.gone = ""
	s, oe := m.redefine(j, def)
	if oe != nil {
		j.gone = gone
		return nil, oe
	}
	if gone != "" {
		m.syncSchedule(j)
		m.changed(j)
	}
	return status(s), nil
}

// redefine gives the loaded job j the definition def (bootstrap of its
// label again): the same settings (Fingerprint) change nothing; others
// replace the definition at once if it does not run, or once the running
// instance has drained. It returns the status bootstrap replies.
func (m *supervisor) redefine(j *job, def *launchd.Job) (string, *opError) {
	d := j.dom
	fp := def.Fingerprint()
	if fp == j.fp && j.next == nil {
		return "already loaded", nil
	}
	if j.next != nil && fp == j.next.Fingerprint() {
		return "upgrade pending", nil
	}
	if oe := m.checkNames(d, def, j); oe != nil {
		return "", oe
	}
	if j.inst == nil {
		m.replaceDef(j, def)
		if !j.disabled {
			m.atLoad(j)
		}
		m.changed(j)
		return "upgraded", nil
	}
	// Reserve the new names now; the old ones go when the instance does.
	j.next = def
	for name := range def.MachServices {
		d.names[name] = j
	}
	j.inst.upgrade = true
	m.upgradeIfClean(j.inst)
	m.changed(j)
	return "upgrade pending", nil
}

// addJob loads def into d. With replace, a job with the same label is an
// upgrade rather than a conflict (bootstrap does that itself). Names must
// be unique in the domain: a job whose label or one of whose names is
// taken is rejected whole.
func (m *supervisor) addJob(d *domain, def *launchd.Job, start bool) (*job, *opError) {
	if old := d.jobs[def.Label]; old != nil {
		return nil, &opError{reason: bootstrap.ReasonExists, key: "Label",
			desc: fmt.Sprintf("label %s is already loaded in %s from %s", def.Label, d.name, old.def.Path)}
	}
	if err := m.checkNames(d, def, nil); err != nil {
		return nil, err
	}
	j := &job{dom: d, def: def, fp: def.Fingerprint(), since: time.Now()}
	j.disabled = m.effectiveDisabled(d.name, def)
	m.restoreHistory(j)
	d.jobs[def.Label] = j
	m.addJobActivities(j)
	for name := range def.MachServices {
		d.names[name] = j
	}
	j.state = j.stateOf()
	m.syncEvents(j)
	if start {
		m.syncSchedule(j)
		m.atLoad(j)
		m.changed(j)
	}
	return j, nil
}

// checkNames reports a name of def that another job of d (not self)
// provides.
func (m *supervisor) checkNames(d *domain, def *launchd.Job, self *job) *opError {
	for _, name := range sortedKeys(def.MachServices) {
		if other := d.names[name]; other != nil && other != self && !m.yieldsName(other, d, def) {
			return &opError{reason: bootstrap.ReasonNameTaken, key: "MachServices." + name,
				desc: fmt.Sprintf("service name %s is already provided by job %s (%s) in %s", name, other.def.Label, other.def.Path, d.name)}
		}
	}
	return nil
}

// replaceDef switches a job that does not run to a new definition.
func (m *supervisor) replaceDef(j *job, def *launchd.Job) {
	d := j.dom
	for name := range j.def.MachServices {
		if d.names[name] == j {
			delete(d.names, name)
		}
	}
	m.disarm(j) // the new definition's schedule starts afresh
	j.def, j.fp = def, def.Fingerprint()
	j.refused = nil // a new definition is tried afresh
	j.early = nil   // and its clients wait for it (failfast.go)
	for name := range def.MachServices {
		d.names[name] = j
	}
	// Clients waiting for a name the job no longer has: let them go.
	kept := j.queue[:0]
	for _, p := range j.queue {
		if _, ok := def.MachServices[p.name]; ok {
			kept = append(kept, p)
		} else {
			p.fd.Close()
			m.release(p)
		}
	}
	j.queue = kept
	j.disabled = m.effectiveDisabled(d.name, def)
	m.syncSchedule(j)
	m.syncEvents(j)
	m.syncDeclared(j)
	m.log.Info("definition replaced", "target", j.target(), "plist", def.Path)
}

// finishUnload removes a booted-out job whose instance is gone.
func (m *supervisor) finishUnload(j *job) {
	d := j.dom
	if d.jobs[j.def.Label] == j {
		delete(d.jobs, j.def.Label)
	}
	for name, o := range d.names {
		if o == j {
			delete(d.names, name)
		}
	}
	m.dropQueue(j)
	j.cancelThrottle()
	m.disarm(j)
	m.dropEvents(j)
	m.removeJobActivities(j)
	m.dropMonitors(j)
	m.otherJobsChanged(d)
	for _, w := range j.unloadWaiters {
		close(w)
	}
	j.unloadWaiters = nil
	j.removed = true
	m.appJobGone(j)
	m.log.Info("unloaded", "target", j.target())
	if len(m.watchers) > 0 {
		dict := m.jobDict(j)
		dict.Set(bootstrap.KeyState, xpc.String("unloaded"))
		m.notify(j, dict)
	}
}
