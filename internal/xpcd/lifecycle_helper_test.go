package xpcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
)

// The lifecycle and isolation tests run the test binary, re-executed, as a
// service written with the library's runtime (xpc.CheckIn, Service.Listen)
// as users write theirs. Unlike TestHelperProcess, it does not exit when
// its parent changes (xpcd may be killed and the service adopted by the
// next one); it exits when the test process itself has gone, which it
// watches through a pidfd.
//
// Environment (set through the plist's EnvironmentVariables):
//
//	XPCD_LC_SERVICE=1          be the service
//	XPCD_LC_PLAIN=1            be a plain daemon instead: no check-in, run
//	                           until SIGTERM (or until the test ends)
//	XPCD_TEST_NAMES=a,b        listen for these names
//	XPCD_LC_OWNER=PID          exit when this process (the test) ends
//	XPCD_LC_VALUE=V            returned by ping, to tell definitions apart
//	XPCD_LC_DFL_SEGV=1         die of a SIGSEGV sent to it, as a C program
//	                           would (not Go's exit status 2)
//	XPCD_LC_SIGTERM_ONLY=1     exit at SIGTERM only, not when Terminating's
//	                           channel closes
//
// Requests ({"cmd": ...}):
//
//	ping     -> {"pid", "name", "uid", "euid", "peer_uid", "value"}
//	hold     no reply until release: the request stays an open transaction
//	release  answers every held request, then -> {"released": N}
//	exit     {"status": N}: replies {}, then exits with status N
//	drop     {"status": N, "after_ms": M}: replies {}, ends every client's
//	         connection, and exits with status N M ms later
func TestLifecycleService(t *testing.T) {
	if os.Getenv("XPCD_LC_SERVICE") != "1" {
		t.Skip("not a test: the service the lifecycle and isolation tests run")
	}
	os.Exit(lifecycleServiceMain())
}

type lcService struct {
	terminating atomic.Bool
	mu          sync.Mutex
	held        []*xpc.Message
	listeners   []*xpc.Listener
}

func lifecycleServiceMain() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	ownerGone := watchOwner(os.Getenv("XPCD_LC_OWNER"))
	if os.Getenv("XPCD_LC_DFL_SEGV") == "1" {
		defaultSIGSEGV()
	}
	if os.Getenv("XPCD_LC_PLAIN") == "1" {
		select {
		case <-sigs:
			return 0
		case <-ownerGone:
			return 13
		}
	}
	ctx := context.Background()
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lifecycle service: CheckIn:", err)
		return 20
	}
	s := &lcService{}
	for _, name := range strings.Split(os.Getenv("XPCD_TEST_NAMES"), ",") {
		if name == "" {
			continue
		}
		l, err := svc.Listen(ctx, name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lifecycle service: Listen:", err)
			return 21
		}
		l.SetHandler(func(peer *xpc.Connection) {
			peer.SetHandler(xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) { s.serve(ctx, name, peer, m) }))
			peer.Activate()
		})
		l.Activate()
		s.mu.Lock()
		s.listeners = append(s.listeners, l)
		s.mu.Unlock()
	}
	terminating := svc.Terminating()
	if os.Getenv("XPCD_LC_SIGTERM_ONLY") == "1" {
		terminating = nil
	}
	select {
	case <-terminating:
	case <-sigs:
	case <-ownerGone:
		return 13
	}
	s.terminating.Store(true)
	return 0
}

func (s *lcService) serve(ctx context.Context, name string, peer *xpc.Connection, m *xpc.Message) {
	cmd, _ := m.Body.String("cmd")
	switch cmd {
	case "ping":
		if s.terminating.Load() {
			m.Defer() // never answered: the process exits first
			return
		}
		r := xpc.Dict("pid", os.Getpid(), "name", name, "uid", os.Getuid(), "euid", os.Geteuid(),
			"value", os.Getenv("XPCD_LC_VALUE"))
		if p := peer.Peer(); p != nil {
			r.Set("peer_uid", xpc.Int64(p.UID))
		}
		m.Reply(ctx, r)
	case "hold":
		m.Defer()
		s.mu.Lock()
		s.held = append(s.held, m)
		s.mu.Unlock()
	case "exit":
		status, _ := m.Body.Int64("status")
		m.Reply(ctx, xpc.Dict())
		os.Exit(int(status))
	case "drop":
		status, _ := m.Body.Int64("status")
		after, _ := m.Body.Int64("after_ms")
		m.Reply(ctx, xpc.Dict())
		s.mu.Lock()
		ls := s.listeners
		s.mu.Unlock()
		for _, l := range ls {
			for _, p := range l.Peers() {
				p.Cancel()
			}
		}
		time.Sleep(time.Duration(after) * time.Millisecond)
		os.Exit(int(status))
	case "release":
		s.mu.Lock()
		held := s.held
		s.held = nil
		s.mu.Unlock()
		for _, h := range held {
			h.Reply(ctx, xpc.Dict())
		}
		m.Reply(ctx, xpc.Dict("released", len(held)))
	}
}

// watchOwner returns a channel closed when the process pid ends.
func watchOwner(pidText string) <-chan struct{} {
	ch := make(chan struct{})
	pid, _ := strconv.Atoi(pidText)
	if pid <= 0 {
		return ch
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		close(ch)
		return ch
	}
	go func() {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(pfd, -1)
			if err == unix.EINTR {
				continue
			}
			if n > 0 || err != nil {
				close(ch)
				return
			}
		}
	}()
	return ch
}

// lcJob describes a job run by TestLifecycleService; program "" is the
// test binary.
func (h *harness) lcJob(label string, names []string, env map[string]string, extra map[string]any, program string) testJob {
	if program == "" {
		program = h.exe
	}
	e := map[string]string{"XPCD_LC_SERVICE": "1", "XPCD_LC_OWNER": strconv.Itoa(os.Getpid())}
	for k, v := range env {
		e[k] = v
	}
	x := map[string]any{"ProgramArguments": []any{program, "-test.run=^TestLifecycleService$"}}
	for k, v := range extra {
		x[k] = v
	}
	return testJob{label: label, names: names, env: e, extra: x, program: program}
}

// eventLog records the events a connection's handler receives.
type eventLog struct {
	mu   sync.Mutex
	errs []error
}

func (e *eventLog) HandleMessage(context.Context, *xpc.Message) {}

func (e *eventLog) HandleEvent(err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
}

// has reports whether an event matching target was received.
func (e *eventLog) has(target error) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, err := range e.errs {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func (e *eventLog) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.errs)
}

// serviceConn returns an activated library service connection
// (xpc.NewServiceConnection) to name through the harness's xpcd, and the
// log of its handler's events.
func (h *harness) serviceConn(name string) (*xpc.Connection, *eventLog) {
	h.t.Helper()
	c, err := xpc.NewServiceConnection(name, xpc.WithBootstrapSocket(h.paths.Socket))
	if err != nil {
		h.t.Fatal(err)
	}
	ev := &eventLog{}
	c.SetHandler(ev)
	c.Activate()
	h.t.Cleanup(c.Cancel)
	return c, ev
}

// cmdModule is the module of xpcd and xpcctl, which lives in cmd/.
const cmdModule = "github.com/goxpc/xpc/cmd"

// buildPackages builds the main packages with the go command into dir,
// each binary named after its package's directory, and returns dir. It
// builds with the race detector when the test binary has it, so that the
// packages compiled for the test are reused.
func buildPackages(t *testing.T, dir string, pkgs ...string) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil && os.Getenv("GOROOT") != "" {
		goCmd, err = exec.LookPath(filepath.Join(os.Getenv("GOROOT"), "bin", "go"))
	}
	if err != nil {
		t.Skip("skipped: the go command, needed to build the binaries this test runs, is not available: " + err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, goCmd, append(args, pkgs...)...)
	// The commands are a module of their own (cmd/go.mod): their packages
	// are built from there. A test builds from one module at a time.
	if strings.HasPrefix(pkgs[0], cmdModule+"/") {
		cmd.Dir = filepath.Join("..", "..", "cmd")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", pkgs, err, out)
	}
	return dir
}
