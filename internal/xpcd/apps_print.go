package xpcd

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// print pid/PID (and the app domains' jobs in print and list). A pid
// domain is read, never changed: its jobs are xpcd's, made on demand.

// ErrAppDomain is why a request that changes a domain (bootstrap,
// bootout, enable, disable...) refuses a pid domain ("pid/PID") or an
// apps domain ("apps/UID", "apps/system"): xpcd makes their jobs from
// bundles. print, list and log read them; kill and kickstart act on their
// jobs (for root and the domain's owner).
var ErrAppDomain = errors.New("a pid or apps domain: xpcd makes its jobs from application bundles; print, list and log read it, kill and kickstart act on its jobs")

// isAppTarget reports whether a print target names a pid or apps domain.
func isAppTarget(s string) bool {
	return strings.HasPrefix(s, pidDomainPrefix) || strings.HasPrefix(s, appsDomainUser)
}

// opPrintApps answers print of "pid/PID", or of a job of a pid or apps
// domain ("pid/PID/LABEL", "apps/UID/LABEL", "apps/system/LABEL").
func opPrintApps(ss *session, target string) (*xpc.Dictionary, waitFunc, *opError) {
	dom, pid, label, oe := parseAppTarget("print", target)
	if oe != nil {
		return nil, nil, oe
	}
	if label != "" {
		return ss.printAppJob(dom, label)
	}
	if pid == 0 {
		return ss.printAppsDomain(dom)
	}
	return ss.printPID(pid)
}

// parseAppTarget parses target, a pid or apps domain or one of its jobs,
// for op: the domain's name, the pid of a pid domain (else 0) and the
// label ("" for the domain).
func parseAppTarget(op, target string) (dom string, pid int, label string, oe *opError) {
	kind, rest, _ := strings.Cut(target, "/")
	id, label, _ := strings.Cut(rest, "/")
	switch kind + "/" {
	case pidDomainPrefix:
		n, err := strconv.Atoi(id)
		if err != nil || n <= 0 || strconv.Itoa(n) != id {
			return "", 0, "", badRequest("%s %s: %q is not a pid", op, target, id)
		}
		return PIDDomain(n), n, label, nil
	}
	if id == "system" {
		return DomainAppsSystem, 0, label, nil
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil || strconv.FormatUint(n, 10) != id {
		return "", 0, "", badRequest("%s %s: want apps/UID or apps/system", op, target)
	}
	return AppsDomain(uint32(n)), 0, label, nil
}

// parseAppJobTarget is parseAppTarget for a request that names a job: a
// target without a label is a bad request.
func parseAppJobTarget(op, target string) (dom string, pid int, label string, oe *opError) {
	dom, pid, label, oe = parseAppTarget(op, target)
	if oe == nil && label == "" {
		oe = badRequest("target %s: want DOMAIN/LABEL", target)
	}
	return dom, pid, label, oe
}

// findAppJob is findJob for a job of a pid or apps domain (on the loop):
// not found unless uid may read the domain, denied a change unless uid is
// root or the domain's owner (apps/system's is root).
func (m *supervisor) findAppJob(dom, label string, uid uint32, modify bool) (*job, *opError) {
	d := m.appDomainNamed(dom)
	if d == nil || !mayReadApps(uid, d) || d.jobs[label] == nil {
		return nil, notFound("job %s/%s is not loaded", dom, label)
	}
	if modify && !mayModify(uid, d.name, d.owner) {
		return nil, domainDenied(uid, "change", d.name)
	}
	return d.jobs[label], nil
}

// printAppJob answers print of one job of an app domain.
func (ss *session) printAppJob(dom, label string) (*xpc.Dictionary, waitFunc, *opError) {
	var reply *xpc.Dictionary
	var oe *opError
	var proc *procQuery // the running instance's numbers, read off the loop as opPrint does
	if e := ss.do(func() {
		var j *job
		if j, oe = ss.m.findAppJob(dom, label, ss.peer.UID, false); oe != nil {
			return
		}
		reply = ss.m.jobDict(j)
		proc = setStatusKeys(reply, j, ss.peer.UID)
		ss.setLogKeys(reply, logDomain(j.dom.name, j.dom.owner), j.dom.owner, j.def.Label) // admin_log.go
	}); e != nil {
		return nil, nil, e
	}
	if proc != nil {
		addProcKeys(reply, proc, callerIdent(ss.peer.UID, ss.peer.GID, true))
	}
	return reply, nil, oe
}

// printAppsDomain answers print of apps/UID or apps/system.
func (ss *session) printAppsDomain(dom string) (*xpc.Dictionary, waitFunc, *opError) {
	var reply *xpc.Dictionary
	var oe *opError
	if e := ss.do(func() {
		d := ss.m.appDomainNamed(dom)
		if d == nil || !mayReadApps(ss.peer.UID, d) {
			oe = notFound("domain %s has no jobs", dom)
			return
		}
		reply = xpc.Dict(bootstrap.KeyDomain, dom, bootstrap.KeyJobs, ss.m.jobDicts(d))
	}); e != nil {
		return nil, nil, e
	}
	return reply, nil, oe
}

// appDomainNamed returns the app domain named dom, nil if none.
func (m *supervisor) appDomainNamed(dom string) *domain {
	for _, d := range m.appDomains() {
		if d.name == dom {
			return d
		}
	}
	return nil
}

func (m *supervisor) jobDicts(d *domain) xpc.Array {
	a := xpc.Array{}
	for _, j := range sortedJobs(d) {
		a = append(a, m.jobDict(j))
	}
	return a
}

// appJobDicts are the jobs of the app domains uid may read, for list (none
// when list names a domain).
func (m *supervisor) appJobDicts(uid uint32, only string) xpc.Array {
	if only != "" {
		return nil
	}
	var a xpc.Array
	for _, d := range m.appDomains() {
		if mayReadApps(uid, d) {
			a = append(a, m.jobDicts(d)...)
		}
	}
	return a
}

// printPID answers print pid/PID: the process, the bundle it was started
// from (root, identifier, identity from its signature), that bundle's
// services with their type and domain, and the instances running for it.
// Root may print any process's pid domain, a user their own processes'
// (rule pid-domain-access). The bundle is read with the process's user's
// rights, off the loop.
func (ss *session) printPID(pid int) (*xpc.Dictionary, waitFunc, *opError) {
	p, oe := readProcess(pid)
	if oe != nil {
		return nil, nil, oe
	}
	if ss.peer.UID != 0 && ss.peer.UID != p.uid {
		re := refusedBy(bootstrap.RulePIDDomainAccess, "pid %d is uid %d's process: only root and uid %d may print its pid domain", pid, p.uid, p.uid)
		return nil, nil, ruleOpError(re, "print %s: %s", PIDDomain(pid), re.Detail)
	}
	reply := xpc.Dict(bootstrap.KeyDomain, PIDDomain(pid), bootstrap.KeyPID, pid, bootstrap.KeyExecutable, p.exe)
	var b *bundle.Bundle
	var idt bundle.Identity
	var idErr error
	asUser(callerIdent(p.uid, p.gid, true), func() error {
		if b, _ = readAppBundle(pid, p.exe); b != nil {
			idt, idErr = b.Identify(ss.m.trust)
		}
		return nil
	})
	if b != nil {
		reply.Set(bootstrap.KeyBundle, xpc.String(b.Root))
		reply.Set(bootstrap.KeyBundleID, xpc.String(b.Identifier))
		if idErr != nil {
			reply.Set(bootstrap.KeyBundleError, xpc.String(idErr.Error()))
		} else {
			reply.Set(bootstrap.KeyBundleIdentity, xpc.String(idt.String()))
			reply.Set(bootstrap.KeyBundleSigned, xpc.Bool(idt.Signed))
		}
	}
	if e := ss.do(func() {
		services := xpc.Array{}
		var instances xpc.Array
		var pd *pidDomain
		if x := ss.m.apps.pids[pid]; x != nil && x.app.start == p.start {
			pd = x
		}
		if b != nil {
			for _, s := range b.Services {
				var d *domain
				dom := PIDDomain(pid)
				switch s.Type {
				case bundle.Application:
					if pd != nil {
						d = pd.d
					}
				case bundle.User:
					d, dom = ss.m.apps.users[p.uid], AppsDomain(p.uid)
				case bundle.System:
					d, dom = ss.m.apps.system, DomainAppsSystem
				}
				sd := xpc.Dict(bootstrap.KeyName, s.Identifier, bootstrap.KeyServiceType, s.Type.String(),
					bootstrap.KeyExecutable, s.Executable, bootstrap.KeyDomain, dom)
				if joinsSession(s) {
					sd.Set(bootstrap.KeyJoinsSession, xpc.Bool(true))
				}
				if d != nil && d.jobs[s.Identifier] != nil {
					j := d.jobs[s.Identifier]
					sd.Set(bootstrap.KeyState, xpc.String(j.stateOf()))
					if j.inst != nil && j.inst.pid > 0 {
						sd.Set(bootstrap.KeyPID, xpc.Int64(j.inst.pid))
					}
				}
				services = append(services, sd)
			}
		}
		if pd != nil {
			instances = ss.m.jobDicts(pd.d)
		}
		if instances == nil {
			instances = xpc.Array{}
		}
		reply.Set(bootstrap.KeyServices, services)
		reply.Set(bootstrap.KeyInstances, instances)
	}); e != nil {
		return nil, nil, e
	}
	return reply, nil, nil
}

// procFacts is what print pid/PID reads of a process.
type procFacts struct {
	uid, gid uint32
	exe      string
	start    uint64
}

// readProcess reads pid's owner, executable and start time through a
// pidfd that shows the same process alive after the reads.
func readProcess(pid int) (procFacts, *opError) {
	gone := notFound("no process %d", pid)
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return procFacts{}, gone
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	var p procFacts
	dir := "/proc/" + strconv.Itoa(pid)
	if unix.Stat(dir, &st) != nil {
		return p, gone
	}
	p.uid, p.gid = st.Uid, st.Gid
	p.exe, err = os.Readlink(dir + "/exe")
	if err != nil {
		// A kernel thread, or a process whose executable xpcd may not
		// read: no bundle.
		p.exe = ""
	}
	if p.start, err = startTime(pid); err != nil {
		return p, gone
	}
	if unix.PidfdSendSignal(fd, 0, nil, 0) != nil {
		return p, gone
	}
	return p, nil
}

// appDomainError is ParseDomain's error for a pid or apps domain.
func appDomainError(s string) error {
	return fmt.Errorf("domain %q: %w", s, ErrAppDomain)
}
