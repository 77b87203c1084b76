package xpctest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/xpctest"
)

// Peer requirements on named services, through a private xpcd: a client
// requiring of the service, and a service requiring of its clients.

const guardedName = "org.goxpc.xpctest.guarded"

// otherUID is a uid neither the tests nor their services run as.
const otherUID = 12345

func otherUIDRequirement() xpc.Requirement {
	return xpc.MustParseRequirement(fmt.Sprintf("uid %d", otherUID))
}

// TestHelperGuardedService is a service, run by xpcd with
// XPCTEST_SERVE=guarded, whose listener requires of its clients a uid
// none of them has; it exits with status 4 if a client reaches its
// handler.
func TestHelperGuardedService(t *testing.T) {
	if os.Getenv("XPCTEST_SERVE") != "guarded" {
		t.Skip("run by xpcd as a service")
	}
	ctx := context.Background()
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l, err := svc.Listen(ctx, guardedName, xpc.WithPeerRequirement(otherUIDRequirement()))
	if err != nil {
		t.Fatal(err)
	}
	l.SetHandler(func(*xpc.Connection) { os.Exit(4) })
	l.Activate()
	<-svc.Terminating()
	os.Exit(0)
}

// wantRequirementFailed checks that err says the peer failed rule, and
// that the reason's Peer says each of peer.
func wantRequirementFailed(t *testing.T, err error, rule string, peer ...string) {
	t.Helper()
	var ce *xpc.ConnError
	if !errors.Is(err, xpc.ErrInvalid) || !errors.Is(err, xpc.ErrPeerRequirement) || !errors.As(err, &ce) {
		t.Fatalf("got %v, want ErrInvalid and ErrPeerRequirement", err)
	}
	if errors.Is(err, xpc.ErrInterrupted) {
		t.Errorf("%v is an interruption", err)
	}
	r := ce.Reason
	if r == nil || r.Code != xpc.ReasonRequirementFailed || r.Rule != rule {
		t.Fatalf("reason %+v, want code %q and rule %q", r, xpc.ReasonRequirementFailed, rule)
	}
	for _, p := range peer {
		if !strings.Contains(r.Peer+" ", p) {
			t.Errorf("reason's peer %q does not say %q", r.Peer, p)
		}
	}
}

// TestServiceRequiresOfClient: a service's listener (Service.Listen with
// WithPeerRequirement) turns away a client that fails its requirement
// before its handler sees it; the client's call fails, from the refused
// frame the service sent in place of its hello, with ErrInvalid and
// ErrPeerRequirement naming the clause and the client as the service saw
// it.
func TestServiceRequiresOfClient(t *testing.T) {
	plist := xpctest.AgentPlist(guardedName,
		[]string{os.Args[0], "-test.run=^TestHelperGuardedService$"},
		[]string{guardedName},
		map[string]any{"EnvironmentVariables": map[string]string{"XPCTEST_SERVE": "guarded"}})
	srv := xpctest.NewServer(t, xpctest.WithPlist("guarded.plist", plist))
	conn := srv.Connect(t, guardedName)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := conn.SendWithReply(ctx, xpc.Dict("op", "x"))
	wantRequirementFailed(t, err, fmt.Sprintf("uid %d", otherUID),
		fmt.Sprintf("pid %d ", os.Getpid()), fmt.Sprintf("uid %d ", os.Getuid()))
	select {
	case <-conn.Done():
	case <-ctx.Done():
		t.Fatal("the refused connection did not end")
	}
	if err := conn.Send(ctx, xpc.Dict("op", "y")); !errors.Is(err, xpc.ErrPeerRequirement) {
		t.Errorf("send after the refusal: %v", err)
	}
}

// TestClientRequiresOfService: a client requiring of its named service a
// uid the service does not run as fails when the service's hello names
// it (a one-way message, which nothing answers, is enough), before
// anything of the service's is delivered, with ErrInvalid (final, not an
// interruption) and ErrPeerRequirement naming the service's identity.
func TestClientRequiresOfService(t *testing.T) {
	srv := xpctest.NewServer(t, xpctest.WithPlist("echo.plist", echoPlist()))
	conn := srv.Connect(t, echoName, xpc.WithPeerRequirement(otherUIDRequirement()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Send(ctx, xpc.NewDictionary(0)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Done():
	case <-ctx.Done():
		t.Fatal("the connection did not end at the service's hello")
	}
	wantRequirementFailed(t, conn.Err(), fmt.Sprintf("uid %d", otherUID), fmt.Sprintf("uid %d ", os.Getuid()))
	if _, err := conn.SendWithReply(ctx, xpc.NewDictionary(0)); !errors.Is(err, xpc.ErrPeerRequirement) {
		t.Errorf("call after the failure: %v, want the same failure (final), not a new lookup", err)
	}

	// Met, the same service is reached.
	ok := srv.Connect(t, echoName, xpc.WithPeerRequirement(xpc.MustParseRequirement(fmt.Sprintf("uid %d", os.Getuid()))))
	r, err := ok.SendWithReply(ctx, xpc.NewDictionary(0))
	if err != nil {
		t.Fatal(err)
	}
	if pid, _ := r.Int64("pid"); ok.Peer() == nil || int64(ok.Peer().PID) != pid {
		t.Errorf("reply from pid %d, Peer() %v", pid, ok.Peer())
	}
}
