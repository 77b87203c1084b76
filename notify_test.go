package xpc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

// The notification tests' helper: the test binary re-executed with
// GOXPC_NOTIFY_HELPER=NAME registers for NAME with the xpcd at
// GOXPC_NOTIFY_SOCKET, says "ready", prints "post NAME STATE" for each
// call of its handler, and exits when its standard input closes.
const notifyHelperEnv, notifySocketEnv = "GOXPC_NOTIFY_HELPER", "GOXPC_NOTIFY_SOCKET"

func init() {
	if name := os.Getenv(notifyHelperEnv); name != "" {
		os.Exit(notifyHelper(name, os.Getenv(notifySocketEnv)))
	}
}

func notifyHelper(name, sock string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := xpc.NewNotifier(ctx, xpc.WithBootstrapSocket(sock))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer n.Close()
	var mu sync.Mutex
	if _, err := n.Register(ctx, name, func(name string, state uint64) {
		mu.Lock()
		fmt.Printf("post %s %d\n", name, state)
		mu.Unlock()
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

const notifyTimeout = 15 * time.Second

// runPendingFinalizers collects garbage and waits for the finalizers it
// queued. An *os.File dropped without Close by an earlier test closes its
// descriptor when the collector finds it; if that number was closed and
// reused meanwhile, it closes someone else's (TestOutOfBand's failed
// DecodeValue leaves such files over descriptors the test closes itself),
// and these tests, which hold many descriptors, were its victims.
func runPendingFinalizers() {
	for range 2 {
		done := make(chan struct{})
		// Not a tiny allocation, whose finalizer may never run.
		runtime.SetFinalizer(new([64]byte), func(*[64]byte) { close(done) })
		runtime.GC()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
	}
}

func notifyCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	t.Cleanup(cancel)
	return ctx
}

// notifyProc is a helper process registered for a name.
type notifyProc struct {
	lines chan string
	stdin io.WriteCloser
}

func startNotifyHelper(t *testing.T, srv *xpctest.Server, name string) *notifyProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), notifyHelperEnv+"="+name, notifySocketEnv+"="+srv.Socket)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &notifyProc{lines: make(chan string, 64)}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper: %v", err)
		}
	})
	if l := p.next(t); l != "ready" {
		t.Fatalf("helper said %q", l)
	}
	return p
}

func (p *notifyProc) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatal("the helper ended")
		}
		return l
	case <-time.After(notifyTimeout):
		t.Fatal("the helper said nothing")
		return ""
	}
}

// A post reaches the handlers registered in other processes, with the
// state; State reads it.
func TestNotifyAcrossProcesses(t *testing.T) {
	runPendingFinalizers()
	srv := xpctest.NewServer(t)
	ctx := notifyCtx(t)
	var procs []*notifyProc
	for range 3 {
		procs = append(procs, startNotifyHelper(t, srv, "com.example.changed"))
	}
	other := startNotifyHelper(t, srv, "com.example.other")
	n, err := xpc.NewNotifier(ctx, xpc.WithBootstrapSocket(srv.Socket))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.PostState(ctx, "com.example.changed", 7); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if l := p.next(t); l != "post com.example.changed 7" {
			t.Fatalf("helper got %q", l)
		}
	}
	if err := xpc.PostNotification(ctx, "com.example.other", xpc.WithBootstrapSocket(srv.Socket)); err != nil {
		t.Fatal(err)
	}
	if l := other.next(t); l != "post com.example.other 0" {
		t.Fatalf("helper got %q", l)
	}
	if st, err := n.State(ctx, "com.example.changed"); err != nil || st != 7 {
		t.Fatalf("State: %d, %v", st, err)
	}
}

// A handler runs one call at a time; posts made while it runs coalesce
// into one later call with the latest state. Check says whether a post
// came since the last Check.
func TestNotifyHandlerCoalesces(t *testing.T) {
	srv := xpctest.NewServer(t)
	ctx := notifyCtx(t)
	n, err := xpc.NewNotifier(ctx, xpc.WithBootstrapSocket(srv.Socket))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	release := make(chan struct{})
	calls := make(chan uint64, 1000)
	var running, overlap atomic.Int32
	r, err := n.Register(ctx, "com.example.busy", func(name string, state uint64) {
		if running.Add(1) > 1 {
			overlap.Add(1)
		}
		if state == 1 {
			<-release
		}
		running.Add(-1)
		calls <- state
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Check() {
		t.Error("Check before any post")
	}
	const posts = 200
	for i := uint64(1); i <= posts; i++ {
		if err := n.PostState(ctx, "com.example.busy", i); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			waitUntil(t, func() bool { return running.Load() == 1 })
		}
	}
	// Every post has reached this process once State answers... almost:
	// xpcd sends the notification before it answers the post, on
	// another path; give it a moment.
	time.Sleep(100 * time.Millisecond)
	if !r.Check() || r.Check() {
		t.Error("Check: want true once, then false")
	}
	close(release)
	var got []uint64
	for {
		select {
		case s := <-calls:
			got = append(got, s)
		case <-time.After(notifyTimeout):
			t.Fatalf("calls %v: the last state never came", got)
		}
		if got[len(got)-1] == posts {
			break
		}
	}
	if len(got) > 3 || overlap.Load() != 0 {
		t.Errorf("calls %v (%d overlapping): posts made while the handler ran did not coalesce", got, overlap.Load())
	}
	r.Cancel()
	if err := n.PostState(ctx, "com.example.busy", posts+1); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-calls:
		t.Errorf("a cancelled registration's handler was called with %d", s)
	case <-time.After(100 * time.Millisecond):
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(notifyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Errors are typed: no xpcd is ErrInterrupted; a refusal is ErrDenied with
// xpcd's reason and rule; a closed Notifier says so.
func TestNotifyErrors(t *testing.T) {
	ctx := notifyCtx(t)
	_, err := xpc.NewNotifier(ctx, xpc.WithBootstrapSocket("/nonexistent/xpcd.sock"))
	if !errors.Is(err, xpc.ErrInterrupted) {
		t.Errorf("no xpcd: %v", err)
	}
	if err := xpc.PostNotification(ctx, "n", xpc.WithBootstrapSocket("/nonexistent/xpcd.sock")); !errors.Is(err, xpc.ErrInterrupted) {
		t.Errorf("no xpcd: %v", err)
	}
	srv := xpctest.NewServer(t)
	n, err := xpc.NewNotifier(ctx, xpc.WithBootstrapSocket(srv.Socket))
	if err != nil {
		t.Fatal(err)
	}
	err = n.Post(ctx, "a b")
	var ce *xpc.ConnError
	if !errors.Is(err, xpc.ErrDenied) || !errors.As(err, &ce) || ce.Reason.Code != xpc.ReasonBadRequest {
		t.Errorf("a bad name: %v", err)
	}
	// One connection may register for only so many names.
	for i := 0; ; i++ {
		_, err := n.Register(ctx, fmt.Sprint("n", i), nil)
		if err == nil {
			continue
		}
		if !errors.Is(err, xpc.ErrDenied) || !errors.As(err, &ce) || ce.Reason.Rule != bootstrap.RuleNotifyLimit {
			t.Errorf("registration %d: %v", i+1, err)
		}
		if !strings.Contains(err.Error(), bootstrap.RuleNotifyLimit) {
			t.Errorf("the error does not name the rule: %v", err)
		}
		break
	}
	n.Close()
	if err := n.Post(ctx, "n"); !errors.Is(err, xpc.ErrNotifierClosed) {
		t.Errorf("after Close: %v", err)
	}
	if _, err := n.Register(ctx, "n", nil); !errors.Is(err, xpc.ErrNotifierClosed) {
		t.Errorf("after Close: %v", err)
	}
}
