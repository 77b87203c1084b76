package xpcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/codesign"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/criteria"
)

// Config configures a Daemon. The zero value of each optional field is
// documented beside it.
type Config struct {
	// Paths are the instance's socket, state and job directories
	// (bootstrap.FromEnv, bootstrap.ForRoot). Required.
	Paths bootstrap.Paths
	// User makes a --user instance: one domain, user/<xpcd's uid>, and a
	// socket only that user (and root) may use. Paths.UserScope means the
	// same.
	User bool
	// Logger receives xpcd's log, services' output included. nil:
	// slog.Default().
	Logger *slog.Logger
	// Pressure tells whether memory is short. nil: PSIMemory{} (Linux's
	// /proc/pressure/memory, some avg10 above 10%).
	Pressure PressureSource
	// PressureInterval is how often Pressure is asked (a
	// PressureNotifier only around its notifications). 0: 5 s; negative:
	// never.
	PressureInterval time.Duration
	// UpgradeInterval is how often running services' executables that
	// cannot be watched with inotify are checked for replacement (the
	// others are looked at when they change). 0: 1 s; negative: never.
	UpgradeInterval time.Duration
	// StopServicesOnClose makes Close stop every service (terminate,
	// SIGTERM, then SIGKILL when Close's context ends), as a test wants.
	// By default Close leaves them running, to be adopted by the next xpcd.
	StopServicesOnClose bool
	// MaxWatchesPerUser is the most jobs of one user domain that may
	// watch paths (WatchPaths, QueueDirectories, PathState) at once, each
	// with an inotify instance and a thread of xpcd's; a job past it is
	// not watched, and print and blame say so (rule watch-limit). 0:
	// DefaultMaxWatchesPerUser; negative: no limit. System jobs are not
	// counted.
	MaxWatchesPerUser int
	// SystemSocket is, for a --user instance, the system instance's
	// bootstrap socket: a lookup that names no domain, or the system
	// domain, and that this instance answers with not-found is passed
	// on to it, with the
	// client's socket, so that a user's clients reach system daemons too
	// (forward.go). "": lookups end here. cmd/xpcd sets it to the system
	// instance's socket for a --user instance outside XPCD_ROOT.
	SystemSocket string
	// MaxConnections caps the bootstrap connections of all users but root
	// together, so that descriptors are left for root however many uids
	// the others connect as (a user with subordinate uids has thousands).
	// 0: a quarter of xpcd's descriptor limit less 1024 (each connection
	// holds two, a waiting client one); negative: no cap.
	MaxConnections int
	// MaxConnectionsPerUser caps the bootstrap connections one uid may
	// have open at once; the next is turned away with reason
	// too-many-connections until one closes. Root (uid 0) has no cap.
	// 0: DefaultMaxConnectionsPerUser; negative: no cap.
	MaxConnectionsPerUser int
	// Criteria answers the conditions activities' criteria ask about
	// (battery, network, idle, pressure). nil: the machine's own sources
	// (sysfs, the kernel's routes, logind and NetworkManager on the
	// system bus, /proc/pressure), which xpcd opens at Start and closes
	// at Close. One given here is the caller's to close, after Close.
	Criteria criteria.Sources
	// ActivityRecheck is how often the criteria of an activity waiting on
	// a condition that cannot signal a change (pressure, power) are read
	// again. 0: 30 s.
	ActivityRecheck time.Duration
	// PolkitBus is the bus on which polkit's authority is asked to approve
	// the daemons users register (polkit.go): "" none, the default; "system"
	// (PolkitSystemBus) the system bus; otherwise a bus address
	// ("unix:path=..."). Where no authority answers, approval waits for an
	// administrator, as with "".
	PolkitBus string
	// LoginBus is the bus on which systemd-logind is followed (login.go),
	// so that a user's domain is made when they log in (their agents with
	// RunAtLoad and registered applications start then): "" none, the
	// default; "system" (LoginSystemBus) the system bus; otherwise a bus
	// address. A --user instance ignores it. Without logind, a user's
	// domain is made when first used, as with "".
	LoginBus string
	// JobLogMaxBytes caps each job's log file in the state directory
	// (joblog.go); at the cap it is rotated, keeping one older file, so a
	// job's log takes at most twice this. 0: DefaultJobLogMaxBytes.
	JobLogMaxBytes int64
	// JournalSocket is the journal's native socket, to which each line of
	// a job's log is also sent when the socket exists (journal.go). "":
	// DefaultJournalSocket; "-": none.
	JournalSocket string
	// AdminGroups are the groups whose members may approve the daemons
	// users register from application bundles (xpcctl approval approve);
	// root always may. nil: DefaultAdminGroups (sudo, wheel, admin);
	// empty: root alone.
	AdminGroups []string
	// AppServiceUser is the account a root xpcd runs the System XPC
	// services of application bundles as (docs/APPS.md). "":
	// DefaultAppServiceUser, nobody. Never root's code: a bundle's
	// services never run as root.
	AppServiceUser string

	// Listener, if set, is the bootstrap socket, already bound and
	// listening, as systemd's socket activation passes it: it must be an
	// AF_UNIX SOCK_SEQPACKET socket listening on Paths.Socket, with no
	// wider mode than xpcd gives its own (listen.go); xpcd serves a
	// duplicate and never removes the socket's path. The caller closes
	// its own. nil: xpcd creates the socket, and removes it at Close.
	Listener *os.File

	// InProcess, if set, runs the jobs it names inside this process
	// instead of exec'ing them (inprocess.go). Only xpctest sets it, for
	// the xpcd a test runs in its own process; cmd/xpcd never does. nil:
	// every job is exec'd.
	InProcess *InProcess
}

// DefaultMaxConnectionsPerUser is Config.MaxConnectionsPerUser's default.
// Each bootstrap connection costs xpcd two descriptors (the socket and the
// peer's pidfd); a user's clients, services and xpcctl hold a few each.
const DefaultMaxConnectionsPerUser = 256

// defaultMaxConnections is Config.MaxConnections's default, from
// RLIMIT_NOFILE.
func defaultMaxConnections() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1 << 16
	}
	return max(64, (int(rl.Cur)-1024)/4)
}

// DefaultMaxWatchesPerUser is Config.MaxWatchesPerUser's default: a
// quarter of Linux's default inotify instances per user (128).
const DefaultMaxWatchesPerUser = 32

// maxRequestSize is the largest message xpcd accepts on a bootstrap
// connection or a check-in channel. Every request of the protocol is a
// few hundred bytes (the largest, bootstrap, carries a path); what xpcd
// sends (a long list, say) is not limited by it.
const maxRequestSize = 64 << 10

// connOptions are the options of every connection xpcd reads requests
// from: requests of at most maxRequestSize; at most the smallest queue the
// library allows (1 MiB) held for one connection; and at most 1 MiB of
// out-of-line replies (a long list or print) left unread by the client
// (one larger reply alone excepted), and replies of at most maxReplySize,
// so that a client that stops reading holds at most a few MiB of xpcd's
// memory per connection.
func connOptions() []xpc.Option {
	return []xpc.Option{xpc.WithMaxReceiveSize(maxRequestSize), xpc.WithMaxMessageSize(maxReplySize),
		xpc.WithMaxQueuedBytes(1 << 20), xpc.WithMaxUnreadBytes(1 << 20)}
}

// maxReplySize is the largest reply xpcd sends: a list of a thousand jobs
// or so. A larger one fails with xpc.ErrReplyFailed at the client (ask
// for one domain, or one job).
const maxReplySize = 1 << 20

// component is one part of the daemon. Components start in order and
// close in reverse; each close is bounded by the context given.
type component interface {
	name() string
	start(ctx context.Context) error
	close(ctx context.Context) error
}

// Daemon is xpcd: the bootstrap socket (bound first, so that a second xpcd
// on the same paths stops before touching anything), the state store, the
// job store, the supervisor, the monitors and the bootstrap server (which
// starts accepting last), started in that order.
type Daemon struct {
	cfg  Config
	log  *slog.Logger
	sup  *supervisor
	comp []component

	mu      sync.Mutex
	started int // components started
	closed  bool
}

// New checks cfg and returns a daemon ready to Start.
func New(cfg Config) (*Daemon, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := cfg.Paths
	user := cfg.User || p.UserScope
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	uid := uint32(os.Geteuid())
	if err := checkAppServiceUser(cfg.AppServiceUser); err != nil {
		return nil, err
	}
	domains, sources := initialDomains(p, user, uid)
	store := newStateStore(p.StateDir, log.With("component", "state"))
	jobs := newJobStore(sources, log.With("component", "jobs"))
	outDir := outputDirFor(p.RunDir)
	instance := instanceID(p.StateDir)
	var machine *machineCriteria
	if cfg.Criteria == nil {
		machine = newMachineCriteria(log.With("component", "criteria"))
		cfg.Criteria = machine
	}
	logs := newJobLogs(filepath.Join(p.StateDir, "logs"), cfg.JobLogMaxBytes, cfg.JournalSocket, log.With("component", "logs"))
	var launch launcher = &execLauncher{log: log.With("component", "service"), root: uid == 0, outputDir: outDir, instance: instance, logs: logs}
	if cfg.InProcess != nil {
		launch = inProcessLauncher{launcher: launch, p: cfg.InProcess, log: log.With("component", "service")}
	}
	pk := newPolkitLink(cfg.PolkitBus, log.With("component", "polkit"))
	sup := newSupervisor(supervisorConfig{
		log:         log.With("component", "supervisor"),
		launcher:    launch,
		store:       store,
		jobs:        jobs,
		domains:     domains,
		userMode:    user,
		agentsDir:   agentsFor(p, user),
		baseEnv:     baseEnvironment(p, user),
		outputDir:   outDir,
		stopOnClose: cfg.StopServicesOnClose,
		root:        uid == 0,
		maxWatches:  cfg.MaxWatchesPerUser,
		trust:       trustOf(p),
		instance:    instance,
		criteria:    cfg.Criteria,
		recheck:     cfg.ActivityRecheck,
		logs:        logs,
		adminGroups: cfg.AdminGroups,
		authority:   pk.approvalAuthority(), // polkit.go; nil when none is configured

		appServiceUser: cfg.AppServiceUser,
	})
	srv := newServer(sup, p, user, log.With("component", "bootstrap"))
	srv.passed = cfg.Listener
	if user {
		srv.systemSocket = cfg.SystemSocket
	}
	srv.maxPerUser = cfg.MaxConnectionsPerUser
	srv.maxTotal = cfg.MaxConnections
	if srv.maxTotal == 0 {
		srv.maxTotal = defaultMaxConnections()
	}
	d := &Daemon{cfg: cfg, log: log, sup: sup}
	d.comp = []component{binder{srv}, store, jobs, logsComponent{logs, store}}
	if machine != nil {
		d.comp = append(d.comp, machine)
	}
	d.comp = append(d.comp, sup)
	if pk != nil {
		// After the supervisor, so that it closes first (polkit.go).
		d.comp = append(d.comp, pk)
	}
	if ll := newLoginLink(cfg.LoginBus, sup, user, log.With("component", "login")); ll != nil {
		// After the supervisor, so that it stops first.
		d.comp = append(d.comp, ll)
	}
	if cfg.PressureInterval > 0 {
		d.comp = append(d.comp, pressureMonitor(sup, cfg.Pressure, cfg.PressureInterval, log.With("component", "pressure")))
	}
	if cfg.UpgradeInterval > 0 {
		d.comp = append(d.comp, exeMonitor(sup, cfg.UpgradeInterval))
	}
	// A post is offered to the launch events of the jobs (events.go),
	// which live on the loop, if some job has a descriptor for its name:
	// others never reach the loop.
	srv.notes = newNotifyRegistry(notifyConfig{onPost: func(name string, state uint64) {
		if sup.notificationWatched(name) {
			sup.post(func() { sup.notificationPosted(name, state) })
		}
	}})
	d.comp = append(d.comp, srv.notes, srv)
	return d, nil
}

// withDefaults checks cfg and returns it with the defaults of its zero
// fields filled in (Logger excepted: New takes slog.Default itself).
func (cfg Config) withDefaults() (Config, error) {
	p := cfg.Paths
	if p.Socket == "" || p.RunDir == "" || p.StateDir == "" {
		return cfg, errors.New("xpcd: Config.Paths needs Socket, RunDir and StateDir")
	}
	if (cfg.User || p.UserScope) && p.Agents == "" {
		return cfg, errors.New("xpcd: a --user instance needs Paths.Agents")
	}
	if cfg.PressureInterval == 0 {
		cfg.PressureInterval = 5 * time.Second
	}
	if cfg.UpgradeInterval == 0 {
		cfg.UpgradeInterval = time.Second
	}
	if cfg.Pressure == nil {
		cfg.Pressure = PSIMemory{}
	}
	switch {
	case cfg.MaxWatchesPerUser == 0:
		cfg.MaxWatchesPerUser = DefaultMaxWatchesPerUser
	case cfg.MaxWatchesPerUser < 0:
		cfg.MaxWatchesPerUser = 0
	}
	if cfg.MaxConnectionsPerUser == 0 {
		cfg.MaxConnectionsPerUser = DefaultMaxConnectionsPerUser
	}
	return cfg, nil
}

// initialDomains returns the domains an instance serves from the start and
// where their jobs come from. A --user instance, and any instance under
// XPCD_ROOT, loads LaunchAgents into the domain of the user xpcd runs as
// (uid); a system instance loads LaunchDaemons into system, and
// LaunchAgents into each other user's domain when that domain is first
// used (a lookup by the user, or an administrative request naming it).
func initialDomains(p bootstrap.Paths, user bool, uid uint32) (map[string]uint32, []source) {
	domains := map[string]uint32{}
	var sources []source
	if user || p.Root != "" {
		dn := UserDomain(uid)
		domains[dn] = uid
		sources = append(sources, source{domain: dn, owner: uid, dir: p.Agents})
	}
	if !user && p.Daemons != "" {
		domains[DomainSystem] = 0
		sources = append(sources, source{domain: DomainSystem, owner: 0, dir: p.Daemons})
	}
	return domains, sources
}

// agentsFor returns the LaunchAgents directory a system instance loads into
// user domains on demand.
func agentsFor(p bootstrap.Paths, user bool) string {
	if user {
		return ""
	}
	return p.Agents
}

// baseEnvironment is what every service's environment starts from: a
// standard PATH, the locale and time zone, and what a service needs to
// reach this same xpcd (XPCD_ROOT; for a --user instance, the XDG
// directories).
func baseEnvironment(p bootstrap.Paths, user bool) []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	pass := []string{"LANG", "LC_ALL", "TZ"}
	if user {
		pass = append(pass, "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")
	}
	for _, k := range pass {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if p.Root != "" {
		env = append(env, bootstrap.RootEnv+"="+p.Root)
	}
	return env
}

// Start starts the components in order: when it returns nil, the bootstrap
// socket accepts connections. If one fails, those already started are
// closed again.
func (d *Daemon) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started > 0 || d.closed {
		return errors.New("xpcd: Start called twice")
	}
	for _, c := range d.comp {
		if err := c.start(ctx); err != nil {
			d.closeLocked(ctx)
			return fmt.Errorf("xpcd: start %s: %w", c.name(), err)
		}
		d.started++
	}
	d.log.Info("xpcd started", "socket", d.cfg.Paths.Socket, "state", d.cfg.Paths.StateDir, "user", d.cfg.User || d.cfg.Paths.UserScope)
	return nil
}

// Close stops the daemon: the components close in reverse order, each
// bounded by ctx. Services keep running unless Config.StopServicesOnClose.
func (d *Daemon) Close(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closeLocked(ctx)
}

func (d *Daemon) closeLocked(ctx context.Context) error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for i := d.started - 1; i >= 0; i-- {
		c := d.comp[i]
		if err := c.close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", c.name(), err))
		}
	}
	d.started = 0
	d.log.Info("xpcd stopped")
	return errors.Join(errs...)
}

// Paths returns the daemon's paths.
func (d *Daemon) Paths() bootstrap.Paths { return d.cfg.Paths }

// trustOf is the verifier of the instance laid out as p: a private
// instance trusts its own ROOT/trust.d only, whether it was given XPCD_ROOT
// or --root; the system's, /etc/xpc/trust.d (codesign.Default).
func trustOf(p bootstrap.Paths) *codesign.Verifier {
	if p.Root != "" {
		return codesign.NewVerifier(filepath.Join(p.Root, "trust.d"))
	}
	return codesign.Default()
}
