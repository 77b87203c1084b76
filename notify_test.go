package xpc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
	"go.uber.org/goleak"
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

// A registration in another process outlives xpcd being stopped and
// started again on the same paths: its handler is called once when it is
// registered again (xpcd keeps no states across a restart: 0), and the
// posts after that reach it.
func TestNotifyReconnectAcrossProcesses(t *testing.T) {
	srv := xpctest.NewServer(t)
	ctx := notifyCtx(t)
	p := startNotifyHelper(t, srv, "com.example.restart")
	post := func(state uint64) {
		t.Helper()
		n, err := xpc.NewNotifier(ctx, xpc.WithBootstrapSocket(srv.Socket))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if err := n.PostState(ctx, "com.example.restart", state); err != nil {
			t.Fatal(err)
		}
	}
	post(7)
	if l := p.next(t); l != "post com.example.restart 7" {
		t.Fatalf("helper got %q", l)
	}
	for round := range 2 {
		srv.Restart()
		if l := p.next(t); l != "post com.example.restart 0" {
			t.Fatalf("restart %d: helper got %q, want its call on reconnecting", round+1, l)
		}
		post(uint64(8 + round))
		if l, want := p.next(t), fmt.Sprintf("post com.example.restart %d", 8+round); l != want {
			t.Fatalf("restart %d: helper got %q, want %q", round+1, l, want)
		}
	}
}

// A post made while a Notifier was disconnected, which changed the state,
// gives its registration one handler call with the new state, and Check
// reports it; requests made while disconnected fail at once with
// ErrInterrupted. The Notifier reaches xpcd through a symbolic link,
// removed while xpcd restarts, so that the post surely comes first.
func TestNotifyPostWhileDisconnected(t *testing.T) {
	srv := xpctest.NewServer(t)
	ctx := notifyCtx(t)
	link := filepath.Join(t.TempDir(), "xpcd.sock")
	if err := os.Symlink(srv.Socket, link); err != nil {
		t.Fatal(err)
	}
	n, err := xpc.NewNotifier(ctx, xpc.WithBootstrapSocket(link))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	reconnected := make(chan []*xpc.NotifyRegistration, 1)
	n.SetReconnectHandler(func(refused []*xpc.NotifyRegistration) { reconnected <- refused })
	calls := make(chan uint64, 16)
	r, err := n.Register(ctx, "com.example.down", func(_ string, state uint64) { calls <- state })
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PostState(ctx, "com.example.down", 7); err != nil {
		t.Fatal(err)
	}
	if s := nextCall(t, calls); s != 7 || !r.Check() {
		t.Fatalf("call with %d", s)
	}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	// Once the Notifier has seen its connection end, requests fail at
	// once, however long their context.
	waitUntil(t, func() bool {
		start := time.Now()
		_, err := n.State(ctx, "com.example.down")
		if err != nil && !errors.Is(err, xpc.ErrInterrupted) {
			t.Fatalf("State while disconnected: %v", err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("State while disconnected took %v", time.Since(start))
		}
		return err != nil
	})
	for _, err := range []error{n.Post(ctx, "com.example.down"), func() error {
		_, err := n.Register(ctx, "com.example.other", nil)
		return err
	}()} {
		if !errors.Is(err, xpc.ErrInterrupted) {
			t.Fatalf("a request while disconnected: %v", err)
		}
	}
	select {
	case <-n.Done():
		t.Fatal("Done closed by losing xpcd")
	default:
	}
	// Posts the Notifier cannot see, the last changing the state.
	for _, st := range []uint64{8, 9} {
		if err := xpc.PostNotification(ctx, "com.example.down", xpc.WithBootstrapSocket(srv.Socket)); err != nil {
			t.Fatal(err)
		}
		p, err := xpc.NewNotifier(ctx, xpc.WithBootstrapSocket(srv.Socket))
		if err != nil {
			t.Fatal(err)
		}
		err = p.PostState(ctx, "com.example.down", st)
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(srv.Socket, link); err != nil {
		t.Fatal(err)
	}
	select {
	case refused := <-reconnected:
		if len(refused) != 0 {
			t.Fatalf("refused on reconnecting: %v", refused)
		}
	case <-time.After(notifyTimeout):
		t.Fatal("no reconnection")
	}
	if s := nextCall(t, calls); s != 9 {
		t.Fatalf("call with %d after reconnecting, want 9", s)
	}
	select {
	case s := <-calls:
		t.Fatalf("a second call after reconnecting, with %d", s)
	case <-time.After(200 * time.Millisecond):
	}
	if !r.Check() || r.Check() || r.Err() != nil {
		t.Errorf("after reconnecting: Check should report one post; Err %v", r.Err())
	}
	if err := n.PostState(ctx, "com.example.down", 10); err != nil {
		t.Fatal(err)
	}
	if s := nextCall(t, calls); s != 10 {
		t.Fatalf("call with %d, want 10", s)
	}
}

func nextCall(t *testing.T, calls <-chan uint64) uint64 {
	t.Helper()
	select {
	case s := <-calls:
		return s
	case <-time.After(notifyTimeout):
		t.Fatal("the handler was not called")
		return 0
	}
}

// Close while a Notifier tries to reconnect ends it at once, and leaves no
// goroutine behind.
func TestNotifyCloseWhileReconnecting(t *testing.T) {
	srv := xpctest.NewServer(t)
	ctx := notifyCtx(t)
	ignore := goleak.IgnoreCurrent()
	n, err := xpc.NewNotifier(ctx, xpc.WithBootstrapSocket(srv.Socket))
	if err != nil {
		t.Fatal(err)
	}
	called := make(chan uint64, 4)
	if _, err := n.Register(ctx, "com.example.close", func(_ string, s uint64) { called <- s }); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	waitUntil(t, func() bool { return n.Post(ctx, "com.example.close") != nil })
	// Let it try a few times.
	time.Sleep(200 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		n.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case <-n.Done():
	default:
		t.Error("Done not closed after Close")
	}
	if err := n.Post(ctx, "com.example.close"); !errors.Is(err, xpc.ErrNotifierClosed) {
		t.Errorf("after Close: %v", err)
	}
	goleak.VerifyNone(t, ignore)
	if len(called) != 0 {
		t.Errorf("the handler was called with %d", <-called)
	}
}

// fakeNotifyd answers a Notifier's requests as xpcd would, refusing
// registrations of the names in refuse; stop ends it and its connections,
// as xpcd's stopping does.
type fakeNotifyd struct {
	l      *xpc.Listener
	refuse map[string]bool
}

func startFakeNotifyd(t *testing.T, path string, refuse ...string) *fakeNotifyd {
	t.Helper()
	f := &fakeNotifyd{refuse: map[string]bool{}}
	for _, name := range refuse {
		f.refuse[name] = true
	}
	l, err := xpc.ListenUnix(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.l = l
	l.SetHandler(func(p *xpc.Connection) {
		p.SetHandler(xpc.HandlerFunc(f.handle))
		p.Activate()
	})
	l.Activate()
	t.Cleanup(f.stop)
	return f
}

func (f *fakeNotifyd) handle(ctx context.Context, m *xpc.Message) {
	op, _ := m.Body.String(bootstrap.KeyOp)
	name, _ := m.Body.String(bootstrap.KeyName)
	switch {
	case op == bootstrap.OpNotifyRegister && f.refuse[name]:
		r := &xpc.Reason{Code: xpc.ReasonDenied, Rule: bootstrap.RuleNotifyName, Description: "not yours: " + name}
		_ = m.ReplyError(ctx, r.Object())
	case op == bootstrap.OpNotifyGet:
		_ = m.Reply(ctx, xpc.Dict(bootstrap.KeyNotifyState, uint64(0)))
	default:
		_ = m.Reply(ctx, xpc.Dict())
	}
}

func (f *fakeNotifyd) stop() {
	f.l.Cancel()
	<-f.l.Done()
	for _, p := range f.l.Peers() {
		p.Cancel()
		<-p.Done()
	}
}

// A registration the restarted xpcd refuses ends, with the refusal in its
// Err and given to the reconnect handler; the others go on.
func TestNotifyRefusedOnReconnect(t *testing.T) {
	ctx := notifyCtx(t)
	path := filepath.Join(t.TempDir(), "xpcd.sock")
	f := startFakeNotifyd(t, path)
	n, err := xpc.NewNotifier(ctx, xpc.WithBootstrapSocket(path))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	reconnected := make(chan []*xpc.NotifyRegistration, 1)
	n.SetReconnectHandler(func(refused []*xpc.NotifyRegistration) { reconnected <- refused })
	calls := map[string]chan uint64{"com.example.kept": make(chan uint64, 4), "com.example.refused": make(chan uint64, 4)}
	regs := map[string]*xpc.NotifyRegistration{}
	for name, ch := range calls {
		if regs[name], err = n.Register(ctx, name, func(_ string, s uint64) { ch <- s }); err != nil {
			t.Fatal(err)
		}
	}
	f.stop()
	startFakeNotifyd(t, path, "com.example.refused")
	var refused []*xpc.NotifyRegistration
	select {
	case refused = <-reconnected:
	case <-time.After(notifyTimeout):
		t.Fatal("no reconnection")
	}
	if len(refused) != 1 || refused[0] != regs["com.example.refused"] {
		t.Fatalf("refused %v", refused)
	}
	err = regs["com.example.refused"].Err()
	var ce *xpc.ConnError
	if !errors.Is(err, xpc.ErrDenied) || !errors.As(err, &ce) || ce.Reason.Rule != bootstrap.RuleNotifyName {
		t.Errorf("the refused registration's Err: %v", err)
	}
	if err := regs["com.example.kept"].Err(); err != nil {
		t.Errorf("the kept registration's Err: %v", err)
	}
	if s := nextCall(t, calls["com.example.kept"]); s != 0 {
		t.Errorf("kept: called with %d", s)
	}
	select {
	case s := <-calls["com.example.refused"]:
		t.Errorf("the refused registration's handler was called with %d", s)
	case <-time.After(100 * time.Millisecond):
	}
}
