package xpctest_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/xpctest"
)

const echoName = "org.goxpc.xpctest.echo"

// TestHelperService is the service: the test binary, run by xpcd with
// XPCTEST_SERVE=1. It echoes each message with its pid, and exits with
// status 3 on {"crash": true}.
func TestHelperService(t *testing.T) {
	if os.Getenv("XPCTEST_SERVE") != "1" {
		t.Skip("run by xpcd as a service")
	}
	ctx := context.Background()
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l, err := svc.Listen(ctx, echoName)
	if err != nil {
		t.Fatal(err)
	}
	l.SetHandler(func(peer *xpc.Connection) {
		peer.SetHandler(xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
			if crash, _ := m.Body.Bool("crash"); crash {
				os.Exit(3)
			}
			m.Reply(ctx, xpc.Dict("pid", os.Getpid(), "peer_pid", peer.Peer().PID))
		}))
		peer.Activate()
	})
	l.Activate()
	<-svc.Terminating()
	os.Exit(0)
}

func echoPlist() []byte {
	return xpctest.AgentPlist("org.goxpc.xpctest.echo",
		[]string{os.Args[0], "-test.run=^TestHelperService$"},
		[]string{echoName},
		map[string]any{"EnvironmentVariables": map[string]string{"XPCTEST_SERVE": "1"}, "ThrottleInterval": 1})
}

func TestServerLaunchOnDemandAndCrash(t *testing.T) {
	srv := xpctest.NewServer(t, xpctest.WithPlist("echo.plist", echoPlist()))
	conn := srv.Connect(t, echoName)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	first, err := conn.SendWithReply(ctx, xpc.NewDictionary(0))
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	pid1, _ := first.Int64("pid")
	// The service's identity comes from the kernel, not from its reply.
	if p := conn.Peer(); p == nil || int64(p.PID) != pid1 || p.UID != uint32(os.Getuid()) || !p.PIDFDFromKernel {
		t.Errorf("Peer() = %v, want pid %d with a kernel pidfd", p, pid1)
	}
	if pp, _ := first.Int64("peer_pid"); pp != int64(os.Getpid()) {
		t.Errorf("the service saw peer pid %d, want this test's %d", pp, os.Getpid())
	}
	again, err := conn.SendWithReply(ctx, xpc.NewDictionary(0))
	if err != nil {
		t.Fatal(err)
	}
	if pid, _ := again.Int64("pid"); pid != pid1 {
		t.Fatalf("second call reached pid %d, want the running %d", pid, pid1)
	}

	// A crash interrupts; the connection stays usable and relaunches.
	_, err = conn.SendWithReply(ctx, xpc.Dict("crash", true))
	if !errors.Is(err, xpc.ErrInterrupted) {
		t.Fatalf("call that crashed the service: %v, want ErrInterrupted", err)
	}
	var after *xpc.Dictionary
	deadline := time.Now().Add(20 * time.Second)
	for {
		after, err = conn.SendWithReply(ctx, xpc.NewDictionary(0))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after the crash: %v", err)
	}
	if pid, _ := after.Int64("pid"); pid == pid1 {
		t.Fatalf("after the crash the same pid %d answered", pid)
	}
}

func TestServerNotFound(t *testing.T) {
	srv := xpctest.NewServer(t)
	conn := srv.Connect(t, "org.goxpc.xpctest.missing")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := conn.SendWithReply(ctx, xpc.NewDictionary(0))
	if !errors.Is(err, xpc.ErrInvalid) || !errors.Is(err, xpc.ErrServiceNotFound) {
		t.Fatalf("got %v, want ErrInvalid and ErrServiceNotFound", err)
	}
}
