package xpctest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/xpcd"
)

// Server is a running private xpcd.
type Server struct {
	// Root is the instance's directory (XPCD_ROOT).
	Root string
	// Socket is the bootstrap socket's path.
	Socket string

	t      testing.TB // nil for a server made by Start
	log    *slog.Logger
	cfg    config
	daemon *xpcd.Daemon
	inproc *xpcd.InProcess // the in-process services (serve.go)
	output *outputLog      // what services wrote (output.go)
	quiet  atomic.Bool     // set once the test's log may no longer be written
}

// Option configures NewServer.
type Option func(*config)

type config struct {
	plists   map[string][]byte
	handlers map[string]xpc.Handler // WithHandler's, by name
	logger   *slog.Logger
	keep     bool
}

// WithPlist adds a job plist, written as LaunchAgents/name before xpcd
// starts.
func WithPlist(name string, data []byte) Option {
	return func(c *config) { c.plists[name] = data }
}

// WithLogger sends xpcd's log (services' output included) to l instead of
// the test log.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// KeepServicesOnClose leaves services running when the server closes, as a
// real xpcd does when it restarts; by default the test's cleanup stops them.
func KeepServicesOnClose() Option { return func(c *config) { c.keep = true } }

// NewServer starts a private xpcd in a new temporary directory and
// registers its shutdown with t.Cleanup. It fails the test if xpcd cannot
// start.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := newServer(t, opts)
	if err != nil {
		t.Fatalf("xpctest: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		s.quiet.Store(true)
	})
	return s
}

// Start starts a private xpcd as NewServer does, for code that has no
// testing.TB (an Example, a TestMain). xpcd's log goes to WithLogger's
// logger, or nowhere. The caller stops the server with Close, which also
// removes its directory; until then, Restart and AddPlist panic where
// NewServer's would fail the test.
func Start(opts ...Option) (*Server, error) { return newServer(nil, opts) }

// newServer makes the server's directory and starts xpcd; t, if not nil,
// removes the directory at its cleanup (Close does otherwise).
func newServer(t testing.TB, opts []Option) (_ *Server, err error) {
	cfg := config{plists: make(map[string][]byte), handlers: make(map[string]xpc.Handler)}
	for _, o := range opts {
		o(&cfg)
	}
	// sun_path is 108 bytes: t.TempDir() can be longer than that allows.
	root, err := os.MkdirTemp("", "xpctest-")
	if err != nil {
		return nil, err
	}
	if t != nil {
		t.Cleanup(func() { os.RemoveAll(root) })
	} else {
		defer func() {
			if err != nil {
				os.RemoveAll(root)
			}
		}()
	}
	s := &Server{Root: root, t: t, cfg: cfg, inproc: xpcd.NewInProcess(), output: newOutputLog()}
	paths := bootstrap.ForRoot(root, true)
	s.Socket = paths.Socket
	for name, h := range cfg.handlers {
		s.inproc.Add(name, serveInProcess(name, h))
	}
	if err := os.MkdirAll(paths.Agents, 0o755); err != nil {
		return nil, err
	}
	for name, data := range cfg.plists {
		if err := os.WriteFile(filepath.Join(paths.Agents, name), data, 0o644); err != nil {
			return nil, err
		}
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	logger := s.cfg.logger
	switch {
	case logger != nil:
	case s.t != nil:
		logger = slog.New(slog.NewTextHandler(testWriter{s.t, &s.quiet}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	default:
		logger = slog.New(slog.DiscardHandler)
	}
	logger = slog.New(outputHandler{next: logger.Handler(), log: s.output})
	s.log = logger
	d, err := xpcd.New(xpcd.Config{
		Paths:               bootstrap.ForRoot(s.Root, true),
		User:                true,
		Logger:              logger,
		StopServicesOnClose: !s.cfg.keep,
		InProcess:           s.inproc,
		// A test's services write to the test's log, never to the
		// machine's journal.
		JournalSocket: "-",
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		return fmt.Errorf("start xpcd: %w", err)
	}
	s.daemon = d
	return nil
}

// Close stops xpcd (and, unless KeepServicesOnClose was given, its
// services; its in-process services always). It is called by the test's
// cleanup; calling it earlier is fine. A server made by Start also loses
// its directory.
func (s *Server) Close() {
	s.stop()
	if s.t == nil {
		os.RemoveAll(s.Root)
	}
}

func (s *Server) stop() {
	if s.daemon == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.daemon.Close(ctx); err != nil {
		s.errorf("stop xpcd: %v", err)
	}
	// In-process services end with their xpcd: the next could not
	// adopt them.
	if err := s.inproc.Stop(ctx); err != nil {
		s.errorf("%v", err)
	}
	s.daemon = nil
}

// errorf reports a failure of the server: to the test, or to the log of
// a server without one.
func (s *Server) errorf(format string, args ...any) {
	if s.t != nil {
		s.t.Errorf("xpctest: "+format, args...)
		return
	}
	s.log.Error(fmt.Sprintf("xpctest: "+format, args...))
}

// fatalf fails the test, or panics for a server without one (Start).
func (s *Server) fatalf(format string, args ...any) {
	if s.t != nil {
		s.t.Helper()
		s.t.Fatalf("xpctest: "+format, args...)
	}
	panic(fmt.Sprintf("xpctest: "+format, args...))
}

// Restart stops xpcd and starts a new one on the same directory, as a
// restart of the real daemon would; services keep running if
// KeepServicesOnClose was given.
func (s *Server) Restart() {
	if s.t != nil {
		s.t.Helper()
	}
	s.stop()
	if err := s.start(); err != nil {
		s.fatalf("%v", err)
	}
}

// AddPlist writes a plist into LaunchAgents; it is loaded at the next
// Restart (or by an xpcctl bootstrap).
func (s *Server) AddPlist(name string, data []byte) string {
	if s.t != nil {
		s.t.Helper()
	}
	path := filepath.Join(s.Root, "LaunchAgents", name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		s.fatalf("%v", err)
	}
	return path
}

// Env returns XPCD_ROOT=Root, to add to a command's environment so that it
// talks to this server.
func (s *Server) Env() string { return bootstrap.RootEnv + "=" + s.Root }

// Connect returns an activated connection to the named service through this
// server; the test's cleanup cancels it.
func (s *Server) Connect(t testing.TB, name string, opts ...xpc.Option) *xpc.Connection {
	t.Helper()
	opts = append([]xpc.Option{xpc.WithBootstrapSocket(s.Socket)}, opts...)
	c, err := xpc.NewServiceConnection(name, opts...)
	if err != nil {
		t.Fatalf("xpctest: connect %s: %v", name, err)
	}
	c.Activate()
	t.Cleanup(c.Cancel)
	return c
}

// Admin sends one administration request ({"op": ...}) to the server and
// returns the reply, as xpcctl does.
func (s *Server) Admin(ctx context.Context, req *xpc.Dictionary) (*xpc.Dictionary, error) {
	c, err := xpc.DialUnix(ctx, s.Socket)
	if err != nil {
		return nil, err
	}
	c.Activate()
	defer c.Cancel()
	return c.SendWithReply(ctx, req)
}

// AgentPlist returns an XML launchd.plist for a job with the given label,
// program arguments and MachServices names, plus any further keys (values
// converted with xpc.ValueOf: int for integers, bool, string, map, slice).
func AgentPlist(label string, args []string, services []string, extra map[string]any) []byte {
	d := xpc.NewDictionary(4 + len(extra))
	d.Set("Label", xpc.String(label))
	argv := make(xpc.Array, len(args))
	for i, a := range args {
		argv[i] = xpc.String(a)
	}
	d.Set("ProgramArguments", argv)
	if len(services) > 0 {
		ms := xpc.NewDictionary(len(services))
		for _, n := range services {
			ms.Set(n, xpc.Bool(true))
		}
		d.Set("MachServices", ms)
	}
	for k, v := range extra {
		obj, err := xpc.ValueOf(v)
		if err != nil {
			panic(fmt.Sprintf("xpctest.AgentPlist: key %s: %v", k, err))
		}
		d.Set(k, obj)
	}
	b, err := xpc.ToPlist(d, xpc.PlistXML)
	if err != nil {
		panic(fmt.Sprintf("xpctest.AgentPlist: %v", err))
	}
	return b
}

// testWriter sends log lines to the test's log until the test is over
// (testing panics on a Log after that).
type testWriter struct {
	t    testing.TB
	done *atomic.Bool
}

func (w testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
