package xpcd

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// The registry of application services (docs/APPS.md): the main apps,
// agents and daemons users registered from their bundles, and the
// approvals of daemons. One registry, keyed by the bundle's identity
// (CFBundleIdentifier, and the team when signed) and never by path: the
// same bundle registered from a new path updates its registration. Each
// registration is a job: a main app or an agent in the user domain of the
// user who registered it, a daemon in the system domain. A daemon
// registered by a user other than root is loaded but never started (its
// names refused with ReasonNotApproved) until an administrator approves
// it; the approval is bound to the bundle's team when it is signed, and to
// the program's digest when it is not.
//
// The registry lives on the loop (supervisor.reg). Registrations are read
// from their bundles off the loop, with the registering user's rights, and
// persisted in registrationsFile, written atomically off the loop, one
// write at a time.

// Limits.
const (
	// maxRegistrationsPerUser is the most registrations one user other
	// than root may have (bootstrap.RuleAppLimit); each holds a job
	// definition in xpcd's memory.
	maxRegistrationsPerUser = 64
	// maxRegistrations is the most registrations of all users together.
	maxRegistrations = 4096
	// maxRegistryFile bounds what xpcd reads of registrationsFile:
	// maxRegistrations of at most maxBundlePath and two PATH_MAX paths
	// each, and the rest, fit.
	maxRegistryFile = 64 << 20
	// maxBundlePath is the longest bundle path a registration takes.
	maxBundlePath = 1024
	// registrationsFile is the registry's file in the state directory.
	registrationsFile = "registrations.json"
)

// registration is one registered service, as registrationsFile keeps it.
type registration struct {
	Kind string `json:"kind"` // bootstrap.AppKind*
	UID  uint32 `json:"uid"`  // who registered it: a main app's or agent's domain is theirs
	// GID is the registering process's kernel-attested gid: the group a
	// uid without an account reads its bundle with later (readIdent).
	GID        uint32 `json:"gid,omitempty"`
	Identifier string `json:"identifier"`
	Team       string `json:"team,omitempty"`
	Signed     bool   `json:"signed,omitempty"`
	Plist      string `json:"plist,omitempty"` // an agent's or daemon's plist file name
	Root       string `json:"root"`            // the bundle's directory, as last registered or seen
	Domain     string `json:"domain"`
	Label      string `json:"label"`
	Program    string `json:"program"`
	Digest     string `json:"digest,omitempty"` // the program's SHA-256, for a daemon of an unsigned bundle
	// JobDigest is the rest of such a daemon's job (bundleRead.jobDigest):
	// its approval holds for this program run this way only.
	JobDigest string    `json:"job_digest,omitempty"`
	Since     time.Time `json:"since"`
	// ApprovalID names a daemon registered by a user other than root in
	// approval list, approve and deny; Approved says it was approved.
	ApprovalID string `json:"approval_id,omitempty"`
	Approved   bool   `json:"approved,omitempty"`
	ApprovedBy uint32 `json:"approved_by,omitempty"`

	def    *launchd.Job // the job, as last read from the bundle; nil if it could not be
	bucket uint32       // what its user counts under (buckets.go)
	stale  bool         // its bundle was found gone
	// following is the path bundleSeen is reading the bundle at, so
	// that one move is followed once.
	following string
	asking    bool // the approval authority is being asked
}

// regKey identifies a registration: no two have the same.
type regKey struct {
	kind       string
	scope      uint32 // the user domain's owner; 0 for a daemon
	identifier string
	plist      string
}

func (r *registration) key() regKey {
	k := regKey{kind: r.Kind, scope: r.UID, identifier: r.Identifier, plist: r.Plist}
	if r.Kind == bootstrap.AppKindDaemon {
		k.scope = 0
	}
	return k
}

func (r *registration) target() string { return r.Domain + "/" + r.Label }

// nogroup is the gid a registration of a uid without an account that
// recorded none is read with.
const nogroup = 65534

// readIdent is the identity r's bundle is read with after it was
// registered (at start, app list's stale check, a move followed): its
// user's account, or for a uid without one, that uid with the gid it
// registered with, never root's group. Off the loop: it reads the user
// database.
func (r *registration) readIdent() *ident { return readIdentOf(r.UID, r.GID) }

func readIdentOf(uid, gid uint32) *ident {
	if gid == 0 && uid != 0 {
		gid = nogroup
	}
	return callerIdent(uid, gid, false)
}

// needsApproval: a daemon a user other than root registered and no
// administrator has approved (for what it now is).
func (r *registration) needsApproval() bool {
	return r.Kind == bootstrap.AppKindDaemon && r.UID != 0 && !r.Approved
}

// status is the registration's status, as Status and Watch give it.
func (r *registration) status() string {
	switch {
	case r == nil:
		return bootstrap.AppStatusNotRegistered
	case r.stale:
		return bootstrap.AppStatusNotFound
	case r.needsApproval():
		return bootstrap.AppStatusRequiresApproval
	}
	return bootstrap.AppStatusEnabled
}

// registry is the supervisor's registry; owned by the loop.
type registry struct {
	regs map[regKey]*registration
	// gate holds the targets (DOMAIN/LABEL) of the jobs that wait for an
	// approval: never started, their names refused.
	gate map[string]string
	// Writes of registrationsFile: one at a time (writing), another
	// wanted meanwhile (again); waiters are told when theirs is on disk.
	writing bool
	again   bool
	waiters []func(error)
	wmu     sync.Mutex // serializes the writers' goroutines
	// gen numbers the snapshots written (owned by the loop); wrote is
	// the newest on disk (guarded by wmu): an older one is never written
	// over it.
	gen   uint64
	wrote uint64
	// readOnly says why registrationsFile may not be written (a newer
	// xpcd's), "" if it may.
	readOnly string
	// changed: the registry changed since xpcd started (flushRegistry).
	changed bool
	// asking counts the questions to the approval authority under way,
	// by bucket; askingTotal all of them (approval.go, mayAsk).
	asking      map[uint32]int
	askingTotal int
}

// regReadOnly says why the registry may not change, "" if it may.
func (m *supervisor) regReadOnly() string {
	if m.store == nil {
		return ""
	}
	return joinWhy(m.store.readOnly, m.reg.readOnly)
}

func (g *registry) init() {
	if g.regs == nil {
		g.regs = map[regKey]*registration{}
		g.gate = map[string]string{}
	}
}

// unapproved reports whether j waits for an approval (want, lookupFor,
// kickstart consult it).
func (m *supervisor) unapproved(j *job) bool {
	if len(m.reg.gate) == 0 {
		return false
	}
	_, ok := m.reg.gate[j.target()]
	return ok
}

// notApproved is the refusal of a name or a kickstart of a daemon that
// waits for its approval.
func notApproved(what string, j *job, id string) *opError {
	return &opError{reason: bootstrap.ReasonNotApproved,
		desc: fmt.Sprintf("%s: job %s waits for an administrator's approval (xpcctl approval approve %s)", what, j.target(), id)}
}

// yieldsName reports whether other, which holds a name def also wants in
// d, gives it up: a daemon waiting for approval holds its names only
// until a job that does not wait is loaded with one of them, so that a
// user cannot keep a name from the system's own daemons by registering
// one (load.go's checkNames asks).
func (m *supervisor) yieldsName(other *job, d *domain, def *launchd.Job) bool {
	if !m.unapproved(other) {
		return false
	}
	_, waits := m.reg.gate[d.name+"/"+def.Label]
	if !waits {
		m.log.Warn("registry: a daemon waiting for approval gives up a name to a job loaded with it",
			"waiting", other.target(), "job", d.name+"/"+def.Label)
	}
	return !waits
}

// regJob is r's loaded job: the job with its label in its domain, if it
// is defined (or is to be, once an upgrade is done) from r's bundle; nil
// if there is none, or the label is held by a job loaded from elsewhere
// (a LaunchDaemons plist, root's bootstrap), which r must never unload,
// start, stop or redefine.
func (m *supervisor) regJob(r *registration) *job {
	d := m.domains[r.Domain]
	if d == nil {
		return nil
	}
	j := d.jobs[r.Label]
	if j == nil {
		return nil
	}
	def := j.def
	if j.next != nil {
		def = j.next
	}
	if def.Path != r.Root && !strings.HasPrefix(def.Path, r.Root+"/") {
		return nil
	}
	return j
}

// labelClaimed is told (on the loop) that a job that waits for no
// approval is being loaded as dom/label by bootstrap: a daemon waiting for
// approval that holds the label gives it up, as it gives up its names
// (yieldsName), and its registration is removed as a deny would remove
// it. So a user cannot keep a label from the system's own daemons by
// registering a daemon that claims it.
func (m *supervisor) labelClaimed(dom, label string) {
	r := m.regOwns(dom, label)
	if r == nil || !r.needsApproval() {
		return
	}
	m.log.Warn("registry: a daemon waiting for approval gives up its label to a job loaded with it; its registration is removed",
		"target", r.target(), "bundle", r.Root, "uid", r.UID)
	m.removeReg(r, nil)
}

// regOwns is the registration of the job dom/label, nil if none.
func (m *supervisor) regOwns(dom, label string) *registration {
	for _, r := range m.reg.regs {
		if r.Domain == dom && r.Label == label {
			return r
		}
	}
	return nil
}

// sortedRegs returns the registrations in a stable order.
func (m *supervisor) sortedRegs() []*registration {
	out := make([]*registration, 0, len(m.reg.regs))
	for _, r := range m.reg.regs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *registration) int {
		if c := cmpStr(a.Domain, b.Domain); c != 0 {
			return c
		}
		return cmpStr(a.Label, b.Label)
	})
	return out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// countRegs counts the registrations of bucket's users.
func (m *supervisor) countRegs(bucket uint32) int {
	n := 0
	for _, r := range m.reg.regs {
		if r.bucket == bucket && r.UID != 0 {
			n++
		}
	}
	return n
}

// newApprovalID makes an identifier for approve and deny.
func (m *supervisor) newApprovalID() string {
	for {
		var b [4]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		taken := false
		for _, r := range m.reg.regs {
			if r.ApprovalID == id {
				taken = true
			}
		}
		if !taken {
			return id
		}
	}
}

// setGate brings the gate of r's job in line with its approval; a job
// approved now is started as loading would, one that lost its approval is
// stopped.
func (m *supervisor) setGate(r *registration) {
	t := r.target()
	_, was := m.reg.gate[t]
	now := r.needsApproval()
	if now {
		m.reg.gate[t] = r.ApprovalID
	} else {
		delete(m.reg.gate, t)
	}
	j := m.regJob(r)
	if j == nil || was == now {
		return
	}
	if now {
		j.cancelThrottle()
		m.syncSchedule(j)
		if j.inst != nil && j.inst.stopWhy == "" {
			m.stop(j.inst, stopBootout)
		}
	} else {
		m.syncSchedule(j)
		m.atLoad(j)
	}
	m.changed(j)
}

// installRegistered loads the registered jobs of d that are not loaded
// (when d is made, and at start); start as installJobs has it.
func (m *supervisor) installRegistered(d *domain, start bool) {
	for _, r := range m.sortedRegs() {
		if r.Domain != d.name || r.def == nil || r.stale || d.jobs[r.Label] != nil {
			continue
		}
		if r.needsApproval() {
			m.reg.gate[r.target()] = r.ApprovalID
		}
		if _, oe := m.addJob(d, r.def, start); oe != nil {
			m.log.Error("registration: not loaded", "target", r.target(), "bundle", r.Root, "err", oe.desc)
		}
	}
}

// installRegisteredAll loads the registered jobs of every domain there is.
func (m *supervisor) installRegisteredAll(start bool) {
	for _, d := range m.sortedDomains() {
		m.installRegistered(d, start)
	}
}

// registryDoc is the format of registrationsFile.
type registryDoc struct {
	Version       int             `json:"version"`
	Registrations []*registration `json:"registrations"`
}

// saveRegistry writes the registry (on the loop: the contents are taken
// now, written off it); done, if not nil, is told on the loop when the
// write that has them has ended.
func (m *supervisor) saveRegistry(done func(error)) {
	m.reg.changed = true
	if done != nil {
		m.reg.waiters = append(m.reg.waiters, done)
	}
	if m.store == nil {
		ws := m.reg.waiters
		m.reg.waiters = nil
		for _, w := range ws {
			w(nil)
		}
		return
	}
	if m.reg.writing {
		m.reg.again = true
		return
	}
	if why := m.regReadOnly(); why != "" {
		ws := m.reg.waiters
		m.reg.waiters = nil
		for _, w := range ws {
			w(fmt.Errorf("%s: %w", why, ErrStateReadOnly))
		}
		return
	}
	b, err := json.MarshalIndent(registryDoc{Version: stateVersion, Registrations: m.sortedRegs()}, "", "\t")
	ws := m.reg.waiters
	m.reg.waiters = nil
	if err != nil {
		for _, w := range ws {
			w(err)
		}
		return
	}
	m.reg.writing = true
	dir := m.store.dir
	m.reg.gen++
	gen := m.reg.gen
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		err := m.writeRegistry(dir, b, gen)
		if err != nil {
			m.log.Error("registry: write failed", "err", err)
		}
		m.post(func() {
			m.reg.writing = false
			for _, w := range ws {
				w(err)
			}
			if m.reg.again {
				m.reg.again = false
				m.saveRegistry(nil)
			}
		})
	}()
}

// flushRegistry writes the registry once more, at once, as xpcd stops
// (on the loop, which stops after it): a write asked for while another was
// under way would otherwise be lost with the loop.
func (m *supervisor) flushRegistry() {
	if m.store == nil || !m.reg.changed || m.regReadOnly() != "" {
		return
	}
	b, err := json.MarshalIndent(registryDoc{Version: stateVersion, Registrations: m.sortedRegs()}, "", "\t")
	if err == nil {
		m.reg.gen++
		err = m.writeRegistry(m.store.dir, b, m.reg.gen)
	}
	if err != nil {
		m.log.Error("registry: the last write failed", "err", err)
	}
}

// writeRegistry writes snapshot gen, b, unless a newer one is on disk.
func (m *supervisor) writeRegistry(dir string, b []byte, gen uint64) error {
	m.reg.wmu.Lock()
	defer m.reg.wmu.Unlock()
	if gen < m.reg.wrote {
		return nil
	}
	if err := writeFileAtomic(dir, registrationsFile, b); err != nil {
		return err
	}
	m.reg.wrote = gen
	return nil
}

// restoreRegistry reads registrationsFile and each registration's bundle
// (with its user's rights), at start, before the loop runs. A bundle that
// is gone leaves its registration stale; an unsigned daemon whose program
// changed loses its approval.
func (m *supervisor) restoreRegistry() {
	m.reg.init()
	if m.store == nil {
		return
	}
	path := filepath.Join(m.store.dir, registrationsFile)
	f, err := os.Open(path)
	if err != nil {
		if !os.IsNotExist(err) {
			m.log.Error("registry: unreadable; starting without registrations", "file", path, "err", err)
		}
		return
	}
	b, err := io.ReadAll(io.LimitReader(f, maxRegistryFile+1))
	f.Close()
	if err == nil && len(b) > maxRegistryFile {
		err = fmt.Errorf("larger than %d bytes", maxRegistryFile)
	}
	var doc registryDoc
	if err == nil {
		err = json.Unmarshal(b, &doc)
	}
	if err == nil && doc.Version > stateVersion {
		// A newer xpcd's: used as far as it reads, never written.
		m.reg.readOnly = (&newerStateError{path: path, version: doc.Version}).Error()
		m.log.Error("registry: a newer xpcd's file; using what this version can read, and changing nothing", "file", path)
	}
	if err != nil {
		m.log.Error("registry: corrupt; starting without registrations", "file", path, "err", err)
		if m.store.readOnly == "" {
			// Kept for whoever wants to look, and not overwritten by
			// the next registration.
			if rerr := os.Rename(path, path+".corrupt"); rerr == nil {
				m.log.Info("registry: corrupt file moved aside", "file", path, "to", path+".corrupt")
			}
		}
		return
	}
	for _, r := range doc.Registrations {
		if r == nil || len(m.reg.regs) >= maxRegistrations || r.Identifier == "" || r.Label == "" || r.Domain == "" {
			continue
		}
		if _, ok := m.reg.regs[r.key()]; ok {
			continue
		}
		if dn, _, err := ParseDomain(r.Domain); err != nil || dn != r.Domain {
			continue
		}
		if why := m.restoredWrong(r); why != "" {
			m.log.Error("registry: a registration that does not hold together; left out", "target", r.target(), "uid", r.UID, "kind", r.Kind, "why", why)
			continue
		}
		r.bucket = m.buckets.of(r.UID)
		rd, oe := readRegistration(r.readIdent(), m.trust, r.Root, r.Kind, r.Plist)
		switch {
		case oe != nil && oe.reason == bootstrap.ReasonNotFound:
			r.stale = true
			m.log.Warn("registry: the bundle is gone; the registration is stale (xpcctl app repair)", "target", r.target(), "bundle", r.Root)
		case oe != nil:
			m.log.Error("registry: the bundle does not read; its job is not loaded", "target", r.target(), "bundle", r.Root, "err", oe.desc)
		case rd.id.Identifier != r.Identifier || rd.id.Team != r.Team:
			m.log.Error("registry: the bundle at the registered path is another bundle now; its job is not loaded", "target", r.target(), "bundle", r.Root, "identity", rd.id.String())
		case rd.def.Label != r.Label:
			m.log.Error("registry: the bundle's job has another label now; register it again", "target", r.target(), "bundle", r.Root)
		default:
			r.def, r.Program = rd.def, rd.program
			if r.Kind == bootstrap.AppKindDaemon && !r.Signed && (r.Digest != rd.digest || r.JobDigest != rd.jobDigest) {
				r.Digest, r.JobDigest, r.Approved = rd.digest, rd.jobDigest, false
				if r.UID != 0 {
					r.ApprovalID = m.newApprovalID() // as register gives another program
				}
			}
		}
		m.reg.regs[r.key()] = r
	}
}

// restoredWrong says why a registration read from registrationsFile
// cannot be one register would have made, "" if it can: its kind, plist
// name and bundle path as parseAppArgs takes them, and its domain the one
// appDomain gives (a daemon's system; a main app's or an agent's the
// user domain of its user, never system), so that a damaged or edited
// file never runs a user's app as root or in another user's domain.
func (m *supervisor) restoredWrong(r *registration) string {
	if !filepath.IsAbs(r.Root) || filepath.Clean(r.Root) != r.Root || len(r.Root) > maxBundlePath {
		return "bundle path " + r.Root
	}
	switch r.Kind {
	case bootstrap.AppKindMain:
		if r.Plist != "" {
			return "a main app with a plist"
		}
	case bootstrap.AppKindAgent, bootstrap.AppKindDaemon:
		if checkPlistName(r.Plist) != nil {
			return "plist name " + r.Plist
		}
	default:
		return "unknown kind " + r.Kind
	}
	switch {
	case r.Kind == bootstrap.AppKindDaemon:
		if m.userMode || r.Domain != DomainSystem {
			return "a daemon outside the system domain of a system xpcd"
		}
	case r.Domain == DomainSystem:
		return "a " + r.Kind + " in the system domain"
	case !m.userMode && r.Domain != UserDomain(r.UID):
		return "in another user's domain"
	}
	return ""
}

// regDict is a registration as app list and approval list give it.
func regDict(r *registration) *xpc.Dictionary {
	d := xpc.Dict(
		bootstrap.KeyAppKind, r.Kind,
		bootstrap.KeyAppIdentifier, r.Identifier,
		bootstrap.KeyAppTeam, r.Team,
		bootstrap.KeyAppSigned, r.Signed,
		bootstrap.KeyAppBundle, r.Root,
		bootstrap.KeyAppUID, int64(r.UID),
		bootstrap.KeyDomain, r.Domain,
		bootstrap.KeyLabel, r.Label,
		bootstrap.KeyAppProgram, r.Program,
		bootstrap.KeyStatus, r.status(),
		bootstrap.KeyStale, r.stale,
	)
	if r.Plist != "" {
		d.Set(bootstrap.KeyAppPlist, xpc.String(r.Plist))
	}
	if r.Kind == bootstrap.AppKindDaemon && r.UID != 0 {
		d.Set(bootstrap.KeyApprovalID, xpc.String(r.ApprovalID))
		d.Set(bootstrap.KeyAppApproved, xpc.Bool(r.Approved))
		if r.def != nil {
			// All that the approval covers (the job digest) and an
			// administrator must see to judge it: what runs, as whom,
			// with what environment.
			d.Set(bootstrap.KeyAppArguments, strArray(r.def.Argv()))
			d.Set(bootstrap.KeyAppUserName, xpc.String(r.def.UserName))
			env := xpc.NewDictionary(len(r.def.EnvironmentVariables))
			for _, k := range sortedKeys(r.def.EnvironmentVariables) {
				env.Set(k, xpc.String(r.def.EnvironmentVariables[k]))
			}
			d.Set(bootstrap.KeyAppEnvironment, env)
		}
	}
	return d
}
