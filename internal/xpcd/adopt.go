package xpcd

import (
	"log/slog"
	"os"
	"syscall"
	"time"
)

// Adoption: at start, before the loop runs, xpcd takes over the processes
// a previous xpcd of the same instance started. processes.json records
// most of them; the others (xpcd was killed between the fork and the
// write, or the write failed) are found by the marker in their
// environment (marker.go). Either way a job ends up with at most one
// instance, and no job that has a live process is launched again.

// strayExitTimeout bounds how long a stray process (one of a job not
// loaded any more) has between SIGTERM and SIGKILL: launchd's default
// ExitTimeOut.
const strayExitTimeout = 20 * time.Second

// restoreUserDomains makes, in a system instance, the user domains whose
// processes a previous xpcd started and that still run: made on first use
// otherwise, they would not exist yet, their processes would be left
// unsupervised, and their RunAtLoad agents would start a second time when
// their user next came. A domain is made for a record (xpcd wrote it) or
// for a marked process running as the domain's own user, never for what
// any other process's environment says. It runs before the loop.
func (m *supervisor) restoreUserDomains(marked []markedProcess) {
	if m.userMode || m.agentsDir == "" || m.jobs == nil {
		return
	}
	want := map[string]uint32{}
	if m.store != nil {
		for _, rec := range m.store.loadedProcesses {
			if name, owner, err := ParseDomain(rec.Domain); err == nil && name != DomainSystem {
				want[name] = owner
			}
		}
	}
	for _, p := range marked {
		if name, owner, err := ParseDomain(p.mark.domain); err == nil && name != DomainSystem && owner == p.uid {
			want[name] = owner
		}
	}
	for _, name := range sortedKeys(want) {
		if m.domains[name] != nil {
			continue
		}
		jobs, errs := m.jobs.scan(source{domain: name, owner: want[name], dir: m.agentsDir})
		d := newDomain(name, want[name], m.buckets.of(want[name])) // the loop does not run yet
		m.addDomain(d)
		m.installJobs(d, jobs, errs, false)
		m.log.Info("user domain made at start for the processes it still has", "domain", name, "jobs", len(d.jobs))
	}
}

// adoptAll re-finds the processes recorded by a previous xpcd. It returns
// the output FIFOs they write to.
func (m *supervisor) adoptAll() map[string]bool {
	outputs := map[string]bool{}
	if m.store == nil {
		return outputs
	}
	for _, rec := range m.store.loadedProcesses {
		log := m.log.With("domain", rec.Domain, "label", rec.Label, "pid", rec.PID)
		if isAppDomain(rec.Domain) {
			m.stopOrphanApp(rec, log) // apps_domain.go
			continue
		}
		j := m.jobOf(rec.Domain, rec.Label)
		if j == nil || j.inst != nil {
			log.Warn("adopt: the job is not loaded any more; leaving its process alone")
			continue
		}
		sp, err := m.launcher.adopt(rec)
		if err != nil {
			log.Info("adopt: the process has gone", "err", err)
			continue
		}
		m.adoptInstance(j, rec, sp, outputs)
		log.Info("adopted a running service; waiting for it to check in again")
	}
	return outputs
}

// jobOf returns the loaded job label of domain dn, or nil.
func (m *supervisor) jobOf(dn, label string) *job {
	if d := m.domains[dn]; d != nil {
		return d.jobs[label]
	}
	return nil
}

// adoptInstance makes sp, described by rec, the running instance of j.
func (m *supervisor) adoptInstance(j *job, rec processRecord, sp *spawned, outputs map[string]bool) {
	inst := &instance{job: j, def: j.def, fp: rec.Fingerprint, reason: launchReason{why: rec.Reason, requester: rec.Requester},
		adopted: true, names: map[string]bool{}, started: rec.Since, idleFrom: time.Now()}
	inst.attach(sp)
	m.trackOutput(sp.output)
	j.inst = inst
	j.runs = max(j.runs, rec.Runs)
	j.lastLaunch = rec.Since
	j.lastReason = inst.reason
	m.byPID[inst.pid] = inst
	m.live++
	if rec.Fingerprint != j.fp {
		inst.upgrade = true // acted on once it reports it is clean
	}
	if sp.output != nil {
		for _, p := range sp.output.paths() {
			outputs[p] = true
		}
	}
	m.watchExit(inst)
}

// adoptMarked takes over the marked processes (oldest first) that no
// record led to. Of the processes of one launch (one nonce), only the
// oldest counts: the others are its descendants, which made process groups
// of their own, and are left alone, as are those of an instance already
// adopted.
func (m *supervisor) adoptMarked(found []markedProcess, outputs map[string]bool) {
	known := map[string]bool{} // launch nonces taken care of
	for _, inst := range m.byPID {
		if mk, ok := parseMarker(inst.marker); ok {
			known[mk.nonce] = true
		}
	}
	for _, p := range found {
		if inst := m.byPID[p.pid]; inst != nil && inst.startTime == p.startTime {
			known[p.mark.nonce] = true // recorded by a version that kept no marker
		}
	}
	for _, p := range found {
		if known[p.mark.nonce] {
			continue
		}
		known[p.mark.nonce] = true
		m.adoptOrStop(p, outputs)
	}
}

// adoptOrStop adopts p as its job's instance if the job is loaded and has
// none; stops it if the job is not loaded any more, or already has an
// instance (only one may run). p is left alone if its domain is not served
// (yet), or if its real uid is not the one its job runs as: xpcd cannot
// have started it, whatever its environment says.
func (m *supervisor) adoptOrStop(p markedProcess, outputs map[string]bool) {
	log := m.log.With("domain", p.mark.domain, "label", p.mark.label, "pid", p.pid)
	d := m.domains[p.mark.domain]
	if d == nil {
		log.Warn("adopt: an unrecorded process of a domain not served; leaving it alone")
		return
	}
	j := d.jobs[p.mark.label]
	id, ok := m.mayHaveStarted(d, j, p)
	if !ok {
		log.Warn("adopt: a process with this xpcd's marker that it cannot have started; leaving it alone", "uid", p.uid)
		return
	}
	rec := p.record()
	if j == nil || j.inst != nil {
		rec.Output = "" // not read: it is stopped
	}
	sp, err := m.launcher.adopt(rec)
	if err != nil {
		log.Info("adopt: the process has gone", "err", err)
		return
	}
	switch {
	case j == nil:
		log.Warn("adopt: an unrecorded process of a job not loaded any more; stopping it")
		m.stopStray(sp, strayExitTimeout, log)
	case j.inst != nil:
		log.Warn("adopt: an unrecorded second instance of the job; stopping it", "instance_pid", j.inst.pid)
		m.stopStray(sp, cmpOr(j.def.ExitTimeOut, strayExitTimeout), log)
	default:
		asUser(id, func() error {
			rec.Exe, _ = statID(j.def.Executable())
			return nil
		})
		m.adoptInstance(j, rec, sp, outputs)
		log.Info("adopted an unrecorded process found by its marker; waiting for it to check in again")
	}
}

// mayHaveStarted reports whether xpcd could have started p for job j of
// d (nil: a job not loaded any more), and as whom j runs.
func (m *supervisor) mayHaveStarted(d *domain, j *job, p markedProcess) (*ident, bool) {
	if j == nil {
		// Its user is unknown; a user domain's processes run as its owner.
		return nil, d.name == DomainSystem || p.uid == d.owner
	}
	id, err := jobIdent(m.root, d.name, d.owner, j.def, nil)
	if err != nil {
		return nil, false
	}
	uid := uint32(os.Geteuid())
	if id != nil {
		uid = id.uid
	}
	return id, p.uid == uid
}

// stopStray stops a process xpcd took over but does not keep: SIGTERM,
// then SIGKILL after timeout, through its pidfd, in the background. If
// xpcd stops first, the process is let go (the next xpcd finds it again).
func (m *supervisor) stopStray(sp *spawned, timeout time.Duration, log *slog.Logger) {
	if err := sp.proc.signal(syscall.SIGTERM); err != nil {
		log.Debug("SIGTERM", "err", err)
	}
	exited := make(chan struct{})
	m.bg.Add(2)
	go func() {
		defer m.bg.Done()
		defer close(exited)
		sp.proc.wait(true) // ends at exit, or when the handle is closed
	}()
	go func() {
		defer m.bg.Done()
		defer sp.proc.close()
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-exited:
			log.Info("stopped")
			return
		case <-m.quit:
			return
		case <-t.C:
		}
		log.Warn("did not exit in time: SIGKILL", "exit_timeout", timeout)
		sp.proc.signal(syscall.SIGKILL)
		select {
		case <-exited:
		case <-m.quit:
		}
	}()
}

// cmpOr returns d, or def if d is not positive.
func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
