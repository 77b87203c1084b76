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
