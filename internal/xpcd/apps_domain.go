package xpcd

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// The pid domain. Every process has one: the XPC services of the bundle
// it was started from (none if it was not), which it looks up by name
// before its user domain and the system domain, as launchd searches pid,
// then user, then system. Another process asking for such a name is told
// not-in-bundle, if xpcd has seen a bundle of the caller's uid with that
// name, and not-found otherwise (another user's bundles stay unseen).
//
// Instances are jobs xpcd makes on the first lookup, launched on demand
// and stopped when idle (IdleExitTimeout, default defaultAppIdleExit),
// in a domain chosen by the service's type:
//
//	Application  "pid/PID": one per client application (its pid and
//	             start time), run as the application's user, stopped
//	             (app-exited) and removed when the application exits
//	User         "apps/UID": one per user, shared by all of that user's
//	             processes of the bundle, run as the user
//	System       "apps/system": one for the machine, only in a root
//	             xpcd, only from a bundle root alone can change (rule
//	             bundle-trust), run as Config.AppServiceUser (nobody)
//
// An XPC service calling a sibling service of its own bundle counts as
// the application it was launched for. These domains are not in
// m.domains: nobody bootstraps into them, and no name in them is seen
// by any other lookup.

// Domain names of app service instances.
const (
	pidDomainPrefix = "pid/"
	appsDomainUser  = "apps/"
	// DomainAppsSystem is the domain of the instances of System XPC
	// services of bundles.
	DomainAppsSystem = "apps/system"
)

// PIDDomain names pid's pid domain, "pid/PID".
func PIDDomain(pid int) string { return pidDomainPrefix + strconv.Itoa(pid) }

// AppsDomain names the domain of uid's instances of User XPC services of
// bundles, "apps/UID".
func AppsDomain(uid uint32) string { return appsDomainUser + strconv.FormatUint(uint64(uid), 10) }

// stopAppExited: the application an instance ran for exited.
const stopAppExited = "app-exited"

// Bounds of the pid domain, per user bucket (buckets.go).
const (
	// defaultAppIdleExit is how long an app's XPC service may be idle
	// before xpcd stops it, when its Info.plist sets no IdleExitTimeout.
	defaultAppIdleExit = 30 * time.Second
	// maxAppsPerUser is the most applications of one user with
	// Application instances at once (bootstrap.RuleAppInstanceLimit).
	maxAppsPerUser = 64
	// maxAppInstancesPerUser is the most app service jobs one user may
	// have, Application and User together (bootstrap.RuleAppInstanceLimit).
	maxAppInstancesPerUser = 256
	// maxKnownAppNames bounds the service names kept per user for
	// not-in-bundle; past it the oldest bundle's are forgotten.
	maxKnownAppNames = 1024
	// maxKnownAppUsers bounds the users whose names are kept; past it
	// the table starts afresh.
	maxKnownAppUsers = 4096
)

// apps is the supervisor's state of app services, owned by the loop.
type apps struct {
	pids   map[int]*pidDomain   // by the application's pid
	users  map[uint32]*domain   // "apps/UID", by uid
	system *domain              // "apps/system", nil until used
	jobs   map[*job]*appJob     // every app service job
	known  map[uint32]*appNames // by uid: names seen, for not-in-bundle
}

// pidDomain is an application's pid domain while it has instances.
type pidDomain struct {
	d      *domain
	app    *pidClient
	exited bool
	stop   *os.File // closing it ends the watcher of the application
}

// appJob is what xpcd keeps of an app service's job.
type appJob struct {
	pd  *pidDomain // its pid domain (Application), else nil
	typ bundle.ServiceType
}

// appNames are the service names of the bundles a user has run.
type appNames struct {
	names map[string]bool
	order []string
}

func newApps() *apps {
	return &apps{pids: map[int]*pidDomain{}, users: map[uint32]*domain{}, jobs: map[*job]*appJob{}, known: map[uint32]*appNames{}}
}

// remember notes app's bundle's service names under its uid.
func (a *apps) remember(app *pidClient) {
	if len(a.known) >= maxKnownAppUsers && a.known[app.uid] == nil {
		clear(a.known)
	}
	k := a.known[app.uid]
	if k == nil {
		k = &appNames{names: map[string]bool{}}
		a.known[app.uid] = k
	}
	for _, s := range app.b.Services {
		if k.names[s.Identifier] {
			continue
		}
		if len(k.order) >= maxKnownAppNames {
			delete(k.names, k.order[0])
			k.order = k.order[1:]
		}
		k.names[s.Identifier] = true
		k.order = append(k.order, s.Identifier)
	}
}

// knows reports whether name is a service of a bundle uid has run.
func (a *apps) knows(uid uint32, name string) bool {
	k := a.known[uid]
	return k != nil && k.names[name]
}

// notInBundle is the refusal of a lookup of another bundle's service.
func notInBundle(name string) *opError {
	return &opError{reason: bootstrap.ReasonNotInBundle,
		desc: fmt.Sprintf("%s is an XPC service of an application bundle that the caller was not started from: only that bundle's processes may look it up", name)}
}

// resolveWithApps resolves r's name: first in its client's pid domain,
// then as resolve does.
func (m *supervisor) resolveWithApps(r *lookupReq) (*job, *opError) {
	if r.dom == "" {
		if j, oe, ok := m.appJobFor(r); ok {
			return j, oe
		}
	}
	j, oe := m.resolve(r.uid, r.name, r.dom)
	if oe != nil && oe.reason == bootstrap.ReasonNotFound && r.dom == "" && m.apps.knows(r.uid, r.name) {
		return nil, notInBundle(r.name)
	}
	return j, oe
}

// appJobFor returns the job of the bundle service r names, made if need
// be; ok false if r's client has no service of that name.
func (m *supervisor) appJobFor(r *lookupReq) (_ *job, _ *opError, ok bool) {
	app := r.app
	if inst := m.byPID[r.pid]; inst != nil {
		// A service looking up a sibling counts as the application it
		// was launched for.
		if aj := m.apps.jobs[inst.job]; aj != nil && aj.pd != nil && !aj.pd.exited {
			app = aj.pd.app
		}
	}
	if app == nil || app.b == nil {
		return nil, nil, false
	}
	svc := app.b.Service(r.name)
	if svc == nil {
		return nil, nil, false
	}
	var d *domain
	var pd *pidDomain
	switch svc.Type {
	case bundle.Application:
		var oe *opError
		if pd, oe = m.pidDomainOf(app, r.name); oe != nil {
			return nil, oe, true
		}
		d = pd.d
	case bundle.User:
		d = m.apps.users[app.uid]
		if d == nil {
			d = newDomain(AppsDomain(app.uid), app.uid, app.bucket)
			m.apps.users[app.uid] = d
		}
	case bundle.System:
		if !m.root {
			re := refusedBy(bootstrap.RuleBundleTrust, "%s is a System XPC service: only a root xpcd runs those", r.name)
			return nil, ruleOpError(re, "%s", re.Detail), true
		}
		if err := app.untrusted[svc.Identifier]; err != nil {
			re := refusedBy(bootstrap.RuleBundleTrust, "%s is a System XPC service of bundle %s, whose path someone other than root could change: %v", r.name, app.b.Root, err)
			return nil, ruleOpError(re, "%s", re.Detail), true
		}
		if m.apps.system == nil {
			m.apps.system = newDomain(DomainAppsSystem, 0, 0)
		}
		d = m.apps.system
	default:
		return nil, badRequest("%s: unknown service type %v", r.name, svc.Type), true
	}
	def := m.appServiceDef(app, svc)
	j := d.jobs[def.Label]
	if j == nil {
		if oe := m.roomForAppJob(app.bucket, svc.Type, r.name); oe != nil {
			m.dropPIDDomainIfEmpty(pd)
			return nil, oe, true
		}
		var oe *opError
		if j, oe = m.addJob(d, def, false); oe != nil {
			m.dropPIDDomainIfEmpty(pd)
			return nil, oe, true
		}
		m.apps.jobs[j] = &appJob{pd: pd, typ: svc.Type}
		m.changed(j)
		m.log.Info("app service", "target", j.target(), "bundle", app.b.Root, "type", svc.Type.String(), "app_pid", app.pid)
		return j, nil, true
	}
	if def.Fingerprint() != j.fp && !j.unloading {
		// The bundle changed (or, in apps/UID and apps/system, another
		// bundle has a service of that name): its new definition, at
		// once or once the instance has stopped.
		if _, oe := m.redefine(j, def); oe != nil {
			return nil, oe, true
		}
	}
	return j, nil, true
}

// appServiceDef is the job of app's bundle's XPC service s: launched on
// demand only, stopped when idle. Its environment is the service's
// EnvironmentVariables over, if it joins it, app's session.
func (m *supervisor) appServiceDef(app *pidClient, s *bundle.Service) *launchd.Job {
	env := make(map[string]string, len(s.Environment))
	if joinsSession(s) {
		maps.Copy(env, app.session)
	}
	maps.Copy(env, s.Environment)
	idle := s.IdleExitTimeout
	if idle <= 0 {
		idle = defaultAppIdleExit
	}
	def := &launchd.Job{
		Path:                 s.Dir,
		Label:                s.Identifier,
		Program:              s.Executable,
		EnvironmentVariables: env,
		MachServices:         map[string]launchd.MachService{s.Identifier: {}},
		IdleExitTimeout:      idle,
		ExitTimeOut:          20 * time.Second,
		ThrottleInterval:     time.Second,
	}
	if s.Type == bundle.System {
		def.UserName = m.appServiceUser
		if def.UserName == "" {
			def.UserName = DefaultAppServiceUser
		}
	}
	return def
}

// DefaultAppServiceUser is whom a root xpcd runs the System XPC services
// of bundles as, unless Config.AppServiceUser names another.
const DefaultAppServiceUser = "nobody"

// pidDomainOf returns app's pid domain, made (and the application watched)
// if it has none.
func (m *supervisor) pidDomainOf(app *pidClient, name string) (*pidDomain, *opError) {
	if pd := m.apps.pids[app.pid]; pd != nil {
		if pd.app.start == app.start && !pd.exited {
			return pd, nil
		}
		if !pd.exited {
			// The pid was reused before its watcher said so.
			m.appExited(pd)
		}
		return nil, &opError{reason: bootstrap.ReasonBusy, desc: fmt.Sprintf("%s: the previous process of pid %d is still being cleaned up; try again", name, app.pid)}
	}
	n := 0
	for _, pd := range m.apps.pids {
		if pd.app.bucket == app.bucket {
			n++
		}
	}
	if app.bucket != 0 && n >= maxAppsPerUser {
		re := refusedBy(bootstrap.RuleAppInstanceLimit, "%s has %d applications with XPC service instances, the limit", bucketName(app.bucket), n)
		return nil, ruleOpError(re, "service %s: %s", name, re.Detail)
	}
	pd := &pidDomain{d: newDomain(PIDDomain(app.pid), app.uid, app.bucket), app: app}
	if err := m.watchApp(pd); err != nil {
		return nil, notFound("service %s: the application (pid %d) has exited: %v", name, app.pid, err)
	}
	m.apps.pids[app.pid] = pd
	return pd, nil
}

// roomForAppJob checks the per-user bound of app service jobs.
func (m *supervisor) roomForAppJob(bucket uint32, typ bundle.ServiceType, name string) *opError {
	if bucket == 0 || typ == bundle.System {
		return nil
	}
	n := 0
	for j := range m.apps.jobs {
		if j.dom.bucket == bucket && j.dom != m.apps.system {
			n++
		}
	}
	if n < maxAppInstancesPerUser {
		return nil
	}
	re := refusedBy(bootstrap.RuleAppInstanceLimit, "%s has %d XPC service jobs of applications, the limit", bucketName(bucket), n)
	return ruleOpError(re, "service %s: %s", name, re.Detail)
}

// watchApp opens a pidfd for pd's application, checked to be that
// process (its start time), and watches it in a goroutine that tells the
// loop when it exits (appExited) or ends when pd.stop is closed.
func (m *supervisor) watchApp(pd *pidDomain) error {
	fd, err := unix.PidfdOpen(pd.app.pid, 0)
	if err != nil {
		return err
	}
	if st, err := startTime(pd.app.pid); err != nil || st != pd.app.start {
		unix.Close(fd)
		return fmt.Errorf("pid %d is another process now", pd.app.pid)
	}
	r, w, err := os.Pipe()
	if err != nil {
		unix.Close(fd)
		return err
	}
	pd.stop = w
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		defer unix.Close(fd)
		defer r.Close()
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(r.Fd()), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil || fds[1].Revents != 0 {
				return
			}
			if fds[0].Revents != 0 {
				m.post(func() { m.appExited(pd) })
				return
			}
		}
	}()
	return nil
}

// appExited: pd's application has exited. Its instances stop
// (app-exited), its jobs go, and its pid domain with them.
func (m *supervisor) appExited(pd *pidDomain) {
	if pd.exited {
		return
	}
	pd.exited = true
	m.log.Info("application exited", "domain", pd.d.name, "instances", len(pd.d.jobs))
	for _, j := range sortedJobs(pd.d) {
		m.bootout(j, stopAppExited)
	}
	m.dropPIDDomainIfEmpty(pd)
}

// appJobGone: j, unloaded, is gone (finishUnload). An exited
// application's pid domain goes with its last job.
func (m *supervisor) appJobGone(j *job) {
	aj := m.apps.jobs[j]
	if aj == nil {
		return
	}
	delete(m.apps.jobs, j)
	if aj.pd != nil && aj.pd.exited {
		m.dropPIDDomainIfEmpty(aj.pd)
	}
}

// dropPIDDomainIfEmpty removes pd when it has no job left, and ends its
// watcher. nil does nothing.
func (m *supervisor) dropPIDDomainIfEmpty(pd *pidDomain) {
	if pd == nil || len(pd.d.jobs) > 0 {
		return
	}
	if m.apps.pids[pd.app.pid] == pd {
		delete(m.apps.pids, pd.app.pid)
	}
	pd.exited = true
	if pd.stop != nil {
		pd.stop.Close()
		pd.stop = nil
	}
}

// closeApps ends every application watcher (detachAll).
func (m *supervisor) closeApps() {
	for _, pd := range m.apps.pids {
		if pd.stop != nil {
			pd.stop.Close()
			pd.stop = nil
		}
	}
}

// appDomains are the domains of app service instances, by name.
func (m *supervisor) appDomains() []*domain {
	var out []*domain
	for _, pid := range slices.Sorted(maps.Keys(m.apps.pids)) {
		out = append(out, m.apps.pids[pid].d)
	}
	for _, uid := range slices.Sorted(maps.Keys(m.apps.users)) {
		out = append(out, m.apps.users[uid])
	}
	if m.apps.system != nil {
		out = append(out, m.apps.system)
	}
	return out
}

// mayReadApps reports whether uid may read the app domain d: root and its
// owner; apps/system everyone.
func mayReadApps(uid uint32, d *domain) bool { return mayRead(uid, d.name, d.owner) }

// errRootAppUser: Config.AppServiceUser names root.
var errRootAppUser = errors.New("the System XPC services of bundles must not run as root")

// checkAppServiceUser refuses a Config.AppServiceUser that is root; an
// unknown account is refused when a service would run (rule
// unknown-account), as a job's UserName is.
func checkAppServiceUser(name string) error {
	if name == "" {
		return nil
	}
	if u, err := user.Lookup(name); name == "root" || (err == nil && u.Uid == "0") {
		return fmt.Errorf("xpcd: AppServiceUser %s: %w", name, errRootAppUser)
	}
	return nil
}

// jobDomains are every domain with jobs: m.domains, then the app domains.
func (m *supervisor) jobDomains() []*domain {
	out := make([]*domain, 0, len(m.domains)+len(m.apps.pids)+len(m.apps.users)+1)
	for _, d := range m.domains {
		out = append(out, d)
	}
	return append(out, m.appDomains()...)
}

// logDomain is the domain a job's log is kept under (joblog.go), owner
// being dom's owner: an Application instance's is its user's apps domain
// ("apps/UID"), so that the instances of a service for all of a user's
// applications write one log, and no directory is made for every
// application's pid. Other domains keep their own.
func logDomain(dom string, owner uint32) string {
	if strings.HasPrefix(dom, pidDomainPrefix) {
		return AppsDomain(owner)
	}
	return dom
}

// isAppDomain reports whether dom names a pid or apps domain.
func isAppDomain(dom string) bool {
	return strings.HasPrefix(dom, pidDomainPrefix) || strings.HasPrefix(dom, appsDomainUser)
}

// stopOrphanApp stops an app service instance a previous xpcd started
// (rec, from processes.json): its pid domain went with that xpcd, so it
// cannot be adopted, and a service that retries its adoption would run
// for ever. If it is still that process (launcher.adopt checks its start
// time and marker) it is stopped as a stray is: SIGTERM, then SIGKILL.
// The next lookup starts a new instance.
func (m *supervisor) stopOrphanApp(rec processRecord, log *slog.Logger) {
	rec.Output = "" // its output is not read again
	sp, err := m.launcher.adopt(rec)
	if err != nil {
		log.Info("adopt: the process has gone", "err", err)
		return
	}
	log.Warn("adopt: an app service instance, whose application's pid domain went with the previous xpcd; stopping it")
	m.stopStray(sp, strayExitTimeout, log)
}

// isAppDomainName reports whether s is the canonical name of a pid or
// apps domain: "pid/PID", "apps/UID" or "apps/system".
func isAppDomainName(s string) bool {
	kind, id, ok := strings.Cut(s, "/")
	if !ok || (kind+"/" != pidDomainPrefix && kind+"/" != appsDomainUser) {
		return false
	}
	if kind+"/" == appsDomainUser && id == "system" {
		return true
	}
	n, err := strconv.ParseUint(id, 10, 32)
	return err == nil && strconv.FormatUint(n, 10) == id && (n > 0 || kind+"/" == appsDomainUser)
}
