package xpctest

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/xpcd"
)

// In-process services: a Handler served under a name by the server's
// xpcd, inside the test's own process.

// stopWait bounds how long an in-process service waits for its peers'
// handlers to return when it stops.
const stopWait = 10 * time.Second

// WithHandler serves h under name in process: the server gets a job, with
// the label name and name as its one MachServices entry, that xpcd
// launches on demand as it launches any job, except that its instance
// runs inside the test's process instead of a process of its own (see
// Server.Serve).
func WithHandler(name string, h xpc.Handler) Option {
	return func(c *config) {
		c.plists[name+".plist"] = inProcessPlist(name)
		c.handlers[name] = h
	}
}

// Serve serves h under name in process, as WithHandler does, on a server
// already running: the job's plist is written to LaunchAgents and loaded
// at once (as xpcctl bootstrap would). It fails the test if the name is
// served in process already (WithHandler, or an earlier Serve) or xpcd
// refuses the job.
//
// h runs in the test's process: a panic in it is not recovered (as in a
// real service, whose process it would end) and ends the test binary.
//
// Every peer connection of name gets h as its handler. The job is
// launched on demand, by the first client of name; xpcctl print shows it
// running, with no pid (an in-process instance has no process of its own:
// xpcd's log names it by a pseudo pid below zero); xpcctl kill and bootout stop it and the next client launches
// it again; the test's cleanup stops it, with its peers, and waits for
// their handlers to return. An in-process service is never left running
// by Close, KeepServicesOnClose or not.
func (s *Server) Serve(t testing.TB, name string, h xpc.Handler) {
	t.Helper()
	if !s.inproc.Add(name, serveInProcess(name, h)) {
		t.Fatalf("xpctest: serve %s: the name is served already", name)
	}
	path := s.AddPlist(name+".plist", inProcessPlist(name))
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("xpctest: %v", err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = s.Admin(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpBootstrap,
		bootstrap.KeyDomain, "user/"+strconv.Itoa(os.Geteuid()), bootstrap.KeyPath, path, bootstrap.KeyPlist, xpc.NewFD(f)))
	if err != nil {
		t.Fatalf("xpctest: serve %s: %v", name, err)
	}
}

// inProcessPlist is the plist of the in-process job serving name. Its
// program is the test binary, which is never run for it: xpcd's
// in-process launcher starts the job (xpcd.InProcess).
func inProcessPlist(name string) []byte {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return AgentPlist(name, []string{exe}, []string{name}, map[string]any{"ThrottleInterval": 1})
}

// serveInProcess is the body of an in-process instance serving name with
// h: it checks in over the socket xpcd gave it, listens for name, and
// serves until xpcd stops it (or says it is about to). Then it cancels
// its peers and waits for their handlers.
func serveInProcess(name string, h xpc.Handler) xpcd.InProcessFunc {
	return func(ctx context.Context, checkin *os.File, label string) error {
		svc, err := xpc.CheckInFile(ctx, checkin, label)
		if err != nil {
			return err
		}
		l, err := svc.Listen(ctx, name)
		if err != nil {
			svc.Close()
			return err
		}
		l.SetHandler(func(peer *xpc.Connection) {
			peer.SetHandler(h)
			peer.Activate()
		})
		l.Activate()
		select {
		case <-ctx.Done():
		case <-svc.Terminating():
		}
		svc.Close()
		timeout := time.NewTimer(stopWait)
		defer timeout.Stop()
		for _, c := range l.Peers() {
			c.Cancel()
			select {
			case <-c.Done():
			case <-timeout.C:
				return nil
			}
		}
		return nil
	}
}
