package xpcd

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// With a user's xpcd and the system's both running, a lookup that names no
// domain reaches a system daemon through the user's instance, pipelined
// first message and all; a name in neither fails with not-found; a lookup
// naming the user's domain, and a name the user's domain has, end at the
// user's instance.
func TestLookupGoesOnToSystem(t *testing.T) {
	sys := newSystemHarness(t)
	sys.writePlist(sys.lcJob("test.fwd.sys", []string{"test.fwd.sys.svc", "test.fwd.both"}, map[string]string{"XPCD_LC_VALUE": "system"}, nil, ""), sys.paths.Daemons)
	sys.start()
	usr := newHarness(t)
	usr.cfg.SystemSocket = sys.paths.Socket
	usr.writePlist(usr.lcJob("test.fwd.user", []string{"test.fwd.both"}, map[string]string{"XPCD_LC_VALUE": "user"}, nil, ""))
	usr.start()

	connect := func(name string, opts ...xpc.Option) (*xpc.Dictionary, error) {
		c, err := xpc.NewServiceConnection(name, append([]xpc.Option{xpc.WithBootstrapSocket(usr.paths.Socket)}, opts...)...)
		if err != nil {
			return nil, err
		}
		c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
		c.Activate()
		defer c.Cancel()
		// The first message goes out pipelined with the lookup.
		return c.SendWithReply(testCtx(t), xpc.Dict("cmd", "ping"))
	}
	r, err := connect("test.fwd.sys.svc")
	if err != nil || strOf(r, "value") != "system" {
		t.Fatalf("a system daemon through the user's instance: %v %v", r, err)
	}
	if r, err := connect("test.fwd.both"); err != nil || strOf(r, "value") != "user" {
		t.Errorf("a name both have: %v %v, want the user's", r, err)
	}
	if _, err := connect("test.fwd.nowhere"); !errors.Is(err, xpc.ErrServiceNotFound) {
		t.Errorf("a name in neither: %v, want ErrServiceNotFound", err)
	}
	own := xpc.WithDomain(UserDomain(uint32(os.Geteuid())))
	if _, err := connect("test.fwd.sys.svc", own); !errors.Is(err, xpc.ErrServiceNotFound) {
		t.Errorf("naming the user's domain: %v, want ErrServiceNotFound", err)
	}

	// A lookup that wants a reply gets the system instance's.
	c, err := usr.lookup("test.fwd.sys.svc")
	if err != nil {
		t.Fatalf("lookup with a reply: %v", err)
	}
	if r, err := call(t, c, "ping"); err != nil || strOf(r, "value") != "system" {
		t.Errorf("after a lookup with a reply: %v %v", r, err)
	}
	if _, err := usr.lookup("test.fwd.nowhere"); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("lookup with a reply of a name in neither: %v", err)
	}

	// Without the system instance, the user's answer stands.
	sys.close(sys.d)
	if _, err := connect("test.fwd.sys.svc"); !errors.Is(err, xpc.ErrServiceNotFound) {
		t.Errorf("with no system instance: %v, want ErrServiceNotFound", err)
	}
}

// A user's instance passes an exit-reason question it cannot answer on to
// the system instance, as it passed the lookup: a client that reached a
// system daemon through it learns how the daemon ended.
func TestExitReasonGoesOnToSystem(t *testing.T) {
	sys := newSystemHarness(t)
	sys.writePlist(sys.lcJob("test.fwx.sys", []string{"test.fwx.sys.svc"}, nil, nil, ""), sys.paths.Daemons)
	sys.start()
	usr := newHarness(t)
	usr.cfg.SystemSocket = sys.paths.Socket
	usr.start()
	pid := sys.lookupPing("test.fwx.sys.svc")
	target := "system/test.fwx.sys"
	sys.mustAdmin(bootstrap.OpKill, bootstrap.KeyTarget, target, bootstrap.KeySignal, int64(9))
	waitFor(t, target+" to end", func() bool {
		return strOf(sys.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, target), "state") == "waiting"
	})
	r, err := usr.admin(bootstrap.OpExitReason, bootstrap.KeyName, "test.fwx.sys.svc", bootstrap.KeyPID, int64(pid))
	if err != nil || strOf(r, bootstrap.KeyReason) != bootstrap.ReasonKilled {
		t.Fatalf("exit-reason through the user's instance: %v %v, want killed", r, err)
	}
	// One neither instance knows is still not found.
	if _, err := usr.admin(bootstrap.OpExitReason, bootstrap.KeyName, "test.fwx.nowhere", bootstrap.KeyPID, int64(pid)); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Fatalf("exit-reason of a name neither has: %v, want not-found", err)
	}
}
