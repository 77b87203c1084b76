package xpctest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

const inprocName = "org.goxpc.xpctest.inprocess"

// counter answers each request with how many it has answered.
type counter struct{ n atomic.Int64 }

func (c *counter) HandleMessage(ctx context.Context, m *xpc.Message) {
	m.Reply(ctx, xpc.Dict("n", c.n.Add(1), "pid", os.Getpid()))
}

func (c *counter) HandleEvent(error) {}

// interruptions counts the ErrInterrupted events a client connection gets.
type interruptions struct{ n atomic.Int64 }

func (*interruptions) HandleMessage(context.Context, *xpc.Message) {}

func (i *interruptions) HandleEvent(err error) {
	if errors.Is(err, xpc.ErrInterrupted) {
		i.n.Add(1)
	}
}

// callUntil calls conn until it answers (a relaunch is throttled) or
// 20 s have passed.
func callUntil(t *testing.T, ctx context.Context, conn *xpc.Connection) *xpc.Dictionary {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := conn.SendWithReply(ctx, xpc.NewDictionary(0))
		if err == nil {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func target() string { return fmt.Sprintf("user/%d/%s", os.Geteuid(), inprocName) }

// TestServeInProcess: a handler served in process (Server.Serve) is
// launched on demand by a client's request, answers in the test's own
// process, is shown by print as running with no pid (nor numbers of a
// process), is stopped by kill and launched again by the next request,
// and leaves no goroutine or descriptor once the server is closed.
func TestServeInProcess(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	fds := openFDs(t)
	t.Run("serve", func(t *testing.T) {
		srv := xpctest.NewServer(t)
		h := &counter{}
		srv.Serve(t, inprocName, h)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		pr, err := srv.Admin(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpPrint, bootstrap.KeyTarget, target()))
		if err != nil {
			t.Fatal(err)
		}
		if pr.Get(bootstrap.KeyPID) != nil {
			t.Fatalf("running before any client: %s", xpc.Format(pr))
		}

		events := &interruptions{}
		conn, err := xpc.NewServiceConnection(inprocName, xpc.WithBootstrapSocket(srv.Socket))
		if err != nil {
			t.Fatal(err)
		}
		conn.SetHandler(events)
		conn.Activate()
		defer conn.Cancel()
		r := callUntil(t, ctx, conn)
		if n, _ := r.Int64("n"); n != 1 {
			t.Errorf("first answer n=%d", n)
		}
		if pid, _ := r.Int64("pid"); pid != int64(os.Getpid()) {
			t.Errorf("answered in pid %d, not the test's %d", pid, os.Getpid())
		}
		pr, err = srv.Admin(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpPrint, bootstrap.KeyTarget, target()))
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := pr.String("state"); st != "running" || pr.Get(bootstrap.KeyPID) != nil {
			t.Errorf("print: want running, with no pid: %s", xpc.Format(pr))
		}
		// Nor numbers of a process: it has none of its own.
		if pr.Get("started_at") == nil || pr.Get("rss_bytes") != nil || pr.Get("uid") != nil {
			t.Errorf("print: want started_at, and no process numbers: %s", xpc.Format(pr))
		}

		if _, err := srv.Admin(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpKill, bootstrap.KeyTarget, target())); err != nil {
			t.Fatal(err)
		}
		// kill is asynchronous: the instance may answer once more. The
		// interruption reaches either a call in flight or, between calls,
		// the connection's handler; after it the next call relaunches.
		_, err = conn.SendWithReply(ctx, xpc.NewDictionary(0))
		for err == nil && events.n.Load() == 0 {
			time.Sleep(20 * time.Millisecond)
			_, err = conn.SendWithReply(ctx, xpc.NewDictionary(0))
		}
		if err != nil && !errors.Is(err, xpc.ErrInterrupted) {
			t.Fatalf("call after kill: %v, want ErrInterrupted", err)
		}
		r = callUntil(t, ctx, conn)
		if n, _ := r.Int64("n"); n < 2 {
			t.Errorf("after relaunch n=%d", n)
		}
	})
	goleak.VerifyNone(t, ignore)
	if after := openFDs(t); after > fds {
		t.Errorf("%d descriptors open after the server closed, %d before", after, fds)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestServeInProcessRestartAndBootout: an in-process service (WithHandler)
// ends with its xpcd, and a restarted xpcd launches a new instance on the
// next request; bootout stops it and unloads it; nothing is left behind.
func TestServeInProcessRestartAndBootout(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	fds := openFDs(t)
	t.Run("serve", func(t *testing.T) {
		h := &counter{}
		srv := xpctest.NewServer(t, xpctest.WithHandler(inprocName, h), xpctest.KeepServicesOnClose())
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		conn := srv.Connect(t, inprocName)
		callUntil(t, ctx, conn)
		srv.Restart()
		if r := callUntil(t, ctx, conn); func() int64 { n, _ := r.Int64("n"); return n }() != 2 {
			t.Errorf("after the restart: %s", xpc.Format(r))
		}
		_, err := srv.Admin(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpBootout, bootstrap.KeyTarget, target(), bootstrap.KeyWait, true))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.SendWithReply(ctx, xpc.NewDictionary(0)); !errors.Is(err, xpc.ErrInterrupted) && !errors.Is(err, xpc.ErrInvalid) {
			t.Errorf("after bootout: %v", err)
		}
	})
	goleak.VerifyNone(t, ignore)
	if after := openFDs(t); after > fds {
		t.Errorf("%d descriptors open after the server closed, %d before", after, fds)
	}
}
