package appservice

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// Status is a service's registration status.
type Status int

const (
	// NotRegistered: the bundle is there; the service is not registered.
	NotRegistered Status = iota
	// Enabled: registered, and its job loaded.
	Enabled
	// RequiresApproval: a daemon registered by a user other than root,
	// loaded but not started until an administrator approves it.
	RequiresApproval
	// NotFound: the bundle, or the plist the service names in it, does
	// not exist (a registration whose bundle was deleted is NotFound).
	NotFound
)

var statusNames = [...]string{
	NotRegistered:    bootstrap.AppStatusNotRegistered,
	Enabled:          bootstrap.AppStatusEnabled,
	RequiresApproval: bootstrap.AppStatusRequiresApproval,
	NotFound:         bootstrap.AppStatusNotFound,
}

// String returns "not-registered", "enabled", "requires-approval" or
// "not-found".
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// ParseStatus is String's inverse.
func ParseStatus(s string) (Status, error) {
	for i, n := range statusNames {
		if n == s {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("appservice: unknown status %q", s)
}

// Errors, tested with errors.Is; each comes in an *Error.
var (
	// ErrNotFound: the bundle, or the plist named in it, does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNotRegistered: Unregister of a service that is not registered.
	ErrNotRegistered = errors.New("not registered")
	// ErrRequiresApproval: the daemon waits for an administrator's
	// approval. It is xpc.ErrNotApproved, what a client's connection to
	// one of the daemon's names fails with meanwhile; Register itself
	// succeeds, and Status says RequiresApproval.
	ErrRequiresApproval = xpc.ErrNotApproved
	// ErrDenied: a security rule of xpcd refused (Error.Rule names it).
	ErrDenied = xpc.ErrDenied
	// ErrBadBundle: the bundle does not read (a malformed Info.plist, a
	// program outside the bundle, ...).
	ErrBadBundle = errors.New("malformed application bundle")
	// ErrWrongInstance: the xpcd asked does not keep this kind of
	// registration (a Daemon given to an xpcd --user: use WithSystem).
	// It is xpc.ErrOtherDomain.
	ErrWrongInstance = xpc.ErrOtherDomain
)

// Error is a failed request: what was asked, of which bundle, and why.
type Error struct {
	Op          string // "register", "unregister", "status", "watch"
	Bundle      string // the bundle's directory
	Reason      string // xpcd's reason code ("not-found", "denied", ...)
	Rule        string // the security rule that refused, if one did
	Description string // for people
	kind        error  // ErrNotFound, ... ; nil for other failures
	err         error  // the cause: xpcd's error reply, or a connection's error
}

func (e *Error) Error() string {
	s := "appservice: " + e.Op + " " + e.Bundle + ": "
	if e.Description != "" {
		s += e.Description
	} else {
		s += e.err.Error()
	}
	return s
}

// Unwrap returns the error's kind (ErrNotFound, ErrNotRegistered,
// ErrRequiresApproval, ErrDenied, ErrBadBundle) and its cause.
func (e *Error) Unwrap() []error {
	var out []error
	if e.kind != nil {
		out = append(out, e.kind)
	}
	if e.err != nil {
		out = append(out, e.err)
	}
	return out
}

// Option configures a Service.
type Option func(*config)

type config struct {
	sockets []string
}

// WithBootstrapSocket makes the Service talk to the xpcd listening on
// path.
func WithBootstrapSocket(path string) Option {
	return func(c *config) { c.sockets = []string{path} }
}

// WithSystem makes the Service talk to the system instance of xpcd (with
// XPCD_ROOT set, that instance), which serves every user's domain as well
// as system's.
func WithSystem() Option {
	return func(c *config) {
		if root := os.Getenv(bootstrap.RootEnv); root != "" {
			c.sockets = []string{bootstrap.ForRoot(root, false).Socket}
			return
		}
		c.sockets = []string{bootstrap.System().Socket}
	}
}

// WithUser makes the Service talk to the caller's own xpcd --user (with
// XPCD_ROOT set, that instance), which serves the caller's domain only:
// a main app and agents, never daemons.
func WithUser() Option {
	return func(c *config) {
		if root := os.Getenv(bootstrap.RootEnv); root != "" {
			c.sockets = []string{bootstrap.ForRoot(root, true).Socket}
			return
		}
		c.sockets = []string{bootstrap.User().Socket}
	}
}

// Service is a main app, an agent or a daemon of a bundle. Its methods are
// safe for concurrent use; each talks to xpcd on a connection of its own.
type Service struct {
	root  string
	kind  string
	plist string
	cfg   config
	err   error // a bad argument, reported by every method
}

// MainApp is the application itself: registered, it is started at the
// user's login as an agent of the user's domain, labelled with the
// bundle's CFBundleIdentifier.
func MainApp(bundleDir string, opts ...Option) *Service {
	return newService(bundleDir, bootstrap.AppKindMain, "", opts)
}

// Agent is the bundle's Library/LaunchAgents/plistName
// (Contents/Library/LaunchAgents in the Contents layout), registered into
// the caller's user domain. plistName is the file's name, with .plist,
// as SMAppService's agent(plistName:).
func Agent(bundleDir, plistName string, opts ...Option) *Service {
	return newService(bundleDir, bootstrap.AppKindAgent, plistName, opts)
}

// Daemon is the bundle's Library/LaunchDaemons/plistName
// (Contents/Library/LaunchDaemons in the Contents layout), registered into
// the system domain of the system xpcd. plistName is the file's name, with
// .plist, as SMAppService's daemon(plistName:).
func Daemon(bundleDir, plistName string, opts ...Option) *Service {
	return newService(bundleDir, bootstrap.AppKindDaemon, plistName, opts)
}

func newService(dir, kind, plist string, opts []Option) *Service {
	s := &Service{kind: kind, plist: plist}
	for _, o := range opts {
		o(&s.cfg)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		s.err = err
	}
	s.root = abs
	if s.cfg.sockets == nil {
		s.cfg.sockets = bootstrap.ClientSockets()
		if kind == bootstrap.AppKindDaemon && os.Getenv(bootstrap.RootEnv) == "" {
			s.cfg.sockets = []string{bootstrap.System().Socket}
		}
	}
	return s
}

func (s *Service) request(op string) *xpc.Dictionary {
	req := xpc.Dict(bootstrap.KeyOp, op, bootstrap.KeyPath, s.root, bootstrap.KeyAppKind, s.kind)
	if s.plist != "" {
		req.Set(bootstrap.KeyAppPlist, xpc.String(s.plist))
	}
	return req
}

// dial connects to the first xpcd that answers.
func (s *Service) dial(ctx context.Context, h xpc.Handler) (*xpc.Connection, error) {
	var errs []error
	for _, path := range s.cfg.sockets {
		c, err := xpc.DialUnix(ctx, path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.SetHandler(h)
		c.Activate()
		return c, nil
	}
	return nil, fmt.Errorf("no xpcd answers: %w", errors.Join(errs...))
}

// call sends one request and returns its reply.
func (s *Service) call(ctx context.Context, op, name string) (*xpc.Dictionary, error) {
	if s.err != nil {
		return nil, &Error{Op: name, Bundle: s.root, err: s.err}
	}
	c, err := s.dial(ctx, xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	if err != nil {
		return nil, &Error{Op: name, Bundle: s.root, err: err}
	}
	defer c.Cancel()
	reply, err := c.SendWithReply(ctx, s.request(op))
	if err != nil {
		return nil, s.wrap(name, err)
	}
	return reply, nil
}

// wrap turns xpcd's error reply into an *Error.
func (s *Service) wrap(op string, err error) error {
	e := &Error{Op: op, Bundle: s.root, err: err}
	var re *xpc.RemoteError
	if !errors.As(err, &re) {
		return e
	}
	r := xpc.ReasonFromObject(re.Object)
	e.Reason, e.Rule, e.Description = r.Code, r.Rule, r.Description
	switch r.Code {
	case bootstrap.ReasonNotFound:
		e.kind = ErrNotFound
	case bootstrap.ReasonNotRegistered:
		e.kind = ErrNotRegistered
	case bootstrap.ReasonNotApproved:
		e.kind = ErrRequiresApproval
	case bootstrap.ReasonBadRequest:
		e.kind = ErrBadBundle
	case bootstrap.ReasonDenied:
		e.kind = ErrDenied
	case bootstrap.ReasonWrongDomain:
		e.kind = ErrWrongInstance
	}
	return e
}

// Register registers the service and loads its job; it returns once the
// registration is on disk. Registering again (the same bundle, from this
// path or another) updates it. A daemon a user other than root registers
// comes back with a nil error and Status RequiresApproval.
func (s *Service) Register(ctx context.Context) error {
	_, err := s.call(ctx, bootstrap.OpAppRegister, "register")
	return err
}

// Unregister unregisters the service and returns once its job has stopped
// and is unloaded (so that Register right after succeeds). A service that
// is not registered fails with ErrNotRegistered.
func (s *Service) Unregister(ctx context.Context) error {
	_, err := s.call(ctx, bootstrap.OpAppUnregister, "unregister")
	return err
}

// Status returns the service's status. A bundle that does not exist is
// NotFound, with no error.
func (s *Service) Status(ctx context.Context) (Status, error) {
	reply, err := s.call(ctx, bootstrap.OpAppStatus, "status")
	if err != nil {
		return NotRegistered, err
	}
	return statusOf(reply)
}

func statusOf(d *xpc.Dictionary) (Status, error) {
	v, err := d.String(bootstrap.KeyStatus)
	if err != nil {
		return NotRegistered, fmt.Errorf("appservice: xpcd's answer has no status")
	}
	return ParseStatus(v)
}

// watchBuffer is how many statuses Watch holds that its caller has not
// taken; xpcd holds more, and drops a watcher that falls far behind.
const watchBuffer = 16

// errOverflow: the caller fell too far behind and xpcd stopped sending.
var errOverflow = errors.New("fell too far behind; xpcd stopped sending")

// Watch yields the service's status now, then each change as xpcd pushes
// it (no polling), until ctx ends (the sequence then stops without an
// error) or the caller stops iterating. A failure ends it with one
// (NotRegistered, error) pair: xpcd refused, or closed the connection
// (it stopped or restarted: watch again).
//
// xpcd reads the bundle once, when the watch begins; what it says after
// is the registration's status. A bundle that is not there then is
// NotFound until one is registered from its path. Nothing is pushed when
// the bundle itself changes or is deleted, until something (a Status, a
// list, a repair) looks at it.
func (s *Service) Watch(ctx context.Context) iter.Seq2[Status, error] {
	return func(yield func(Status, error) bool) {
		if s.err != nil {
			yield(NotRegistered, &Error{Op: "watch", Bundle: s.root, err: s.err})
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		events := make(chan *xpc.Dictionary, watchBuffer)
		c, err := s.dial(ctx, statusHandler{events: events, done: ctx.Done()})
		if err != nil {
			yield(NotRegistered, &Error{Op: "watch", Bundle: s.root, err: err})
			return
		}
		defer c.Cancel()
		if _, err := c.SendWithReply(ctx, s.request(bootstrap.OpAppWatch)); err != nil {
			if ctx.Err() == nil {
				yield(NotRegistered, s.wrap("watch", err))
			}
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.Done():
				if ctx.Err() == nil {
					yield(NotRegistered, &Error{Op: "watch", Bundle: s.root, err: xpc.ErrInterrupted, Description: "xpcd closed the connection"})
				}
				return
			case ev := <-events:
				if ev == nil {
					yield(NotRegistered, &Error{Op: "watch", Bundle: s.root, err: errOverflow})
					return
				}
				st, err := statusOf(ev)
				if err != nil {
					continue // a newer xpcd's status: not ours to report
				}
				if !yield(st, nil) {
					return
				}
			}
		}
	}
}

// statusHandler passes xpcd's status messages to Watch.
type statusHandler struct {
	events chan *xpc.Dictionary
	done   <-chan struct{}
}

func (h statusHandler) HandleMessage(_ context.Context, m *xpc.Message) {
	var ev *xpc.Dictionary
	if over, _ := m.Body.Bool(bootstrap.KeyOverflow); !over {
		ev = m.Body
	}
	select {
	case h.events <- ev:
	case <-h.done:
	}
}

func (h statusHandler) HandleEvent(error) {}
