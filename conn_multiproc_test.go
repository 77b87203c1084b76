package xpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Multi-process connection tests. The test binary is re-executed as the
// peer: with GOXPC_TEST_HELPER set it runs the named helper instead of the
// tests. Each helper finds, on descriptor 3, an endpoint of a listener in
// the parent (the bootstrap listener), and connects to it first.

const helperEnv = "GOXPC_TEST_HELPER"

func init() {
	if name := os.Getenv(helperEnv); name != "" {
		os.Exit(runHelper(name))
	}
}

func runHelper(name string) int {
	ep := NewEndpoint(os.NewFile(3, "bootstrap-endpoint"))
	var err error
	switch name {
	case "client":
		err = helperClient(ep)
	case "server":
		err = helperServer(ep)
	default:
		err = fmt.Errorf("no helper %q", name)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", name, err)
		return 1
	}
	return 0
}

// helperClient connects to the parent, says hello, reports the identity it
// sees for the parent, answers the parent's requests, and exits when the
// parent ends the connection.
func helperClient(ep *Endpoint) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := NewEndpointConnection(ep)
	ep.Close()
	if err != nil {
		return err
	}
	c.SetHandler(HandlerFunc(func(ctx context.Context, m *Message) {
		m.Reply(ctx, Dict("pid", Int64(int64(os.Getpid()))))
	}))
	c.Activate()
	if _, err := c.SendWithReply(ctx, Dict("op", String("hello"), "pid", Int64(int64(os.Getpid())))); err != nil {
		return err
	}
	p := c.Peer()
	if p == nil {
		return errors.New("no peer after the first reply")
	}
	if _, err := c.SendWithReply(ctx, Dict("op", String("peer"), "pid", Int64(int64(p.PID)),
		"uid", Int64(int64(p.UID)), "gid", Int64(int64(p.GID)), "exe", String(p.Exe),
		"alive", Bool(p.Alive()), "kernel", Bool(p.PIDFDFromKernel))); err != nil {
		return err
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		return errors.New("the parent never ended the connection")
	}
	if !errors.Is(c.Err(), ErrPeerGone) {
		return fmt.Errorf("connection ended with %v", c.Err())
	}
	return nil
}

// helperServer connects to the parent, makes a listener and checks its
// endpoint in with the parent, then serves until the parent ends the
// bootstrap connection. Its peers understand:
//
//	echo  {id}  reply {id, pid}
//	hold  {id}  never replied to; a one-way {op: held, id} goes back
//	stats       reply {echoes: requests echoed on this connection}
func helperServer(ep *Endpoint) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	boot, err := NewEndpointConnection(ep)
	ep.Close()
	if err != nil {
		return err
	}
	boot.Activate()
	l, err := NewListener()
	if err != nil {
		return err
	}
	pid := Int64(int64(os.Getpid()))
	var held sync.Mutex
	var holding []*Message
	l.SetHandler(func(p *Connection) {
		var echoes int64
		p.SetHandler(HandlerFunc(func(ctx context.Context, m *Message) {
			op, _ := m.Body.String("op")
			id, _ := m.Body.Int64("id")
			switch op {
			case "echo":
				echoes++
				m.Reply(ctx, Dict("id", Int64(id), "pid", pid))
			case "hold":
				m.Defer()
				held.Lock()
				holding = append(holding, m)
				held.Unlock()
				m.Connection().Send(ctx, Dict("op", String("held"), "id", Int64(id)))
			case "stats":
				m.Reply(ctx, Dict("echoes", Int64(echoes)))
			}
		}))
		p.Activate()
	})
	l.Activate()
	lep, err := l.Endpoint()
	if err != nil {
		return err
	}
	err = boot.Send(ctx, Dict("op", String("checkin"), "endpoint", lep, "pid", pid))
	lep.Close()
	if err != nil {
		return err
	}
	select {
	case <-boot.Done():
	case <-ctx.Done():
		return errors.New("the parent never ended the bootstrap connection")
	}
	l.Cancel()
	return nil
}

// testExe is the path of the test binary, which the helpers run.
func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// helperProc is a helper process and the parent's end of its bootstrap
// connection.
type helperProc struct {
	cmd  *exec.Cmd
	boot *Connection // the helper's bootstrap connection, as the parent's peer
	msgs chan *Message
	h    *testHandler
	wait chan error // cmd.Wait's result, put back by whoever reads it
}

// startHelper runs the named helper with an endpoint of a fresh bootstrap
// listener on its descriptor 3 and waits for it to connect. When the test
// ends, the bootstrap connection is cancelled and the helper waited for.
func startHelper(t *testing.T, name string) *helperProc {
	t.Helper()
	hp := &helperProc{msgs: make(chan *Message, 16)}
	hp.h = newTestHandler(func(ctx context.Context, m *Message) {
		m.Defer() // the test replies, if it is a request
		hp.msgs <- m
	})
	peers := make(chan *Connection, 1)
	l, err := NewListener()
	if err != nil {
		t.Fatal(err)
	}
	l.SetHandler(func(p *Connection) {
		p.SetHandler(hp.h)
		p.Activate()
		peers <- p
	})
	l.Activate()
	ep, err := l.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testExe(t), "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+name)
	cmd.ExtraFiles = []*os.File{ep.File()}
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	err = cmd.Start()
	ep.Close()
	if err != nil {
		t.Fatal(err)
	}
	hp.cmd = cmd
	exited := make(chan error, 1)
	t.Cleanup(func() {
		if hp.boot != nil {
			hp.boot.Cancel()
			waitClosed(t, hp.boot.Done(), "bootstrap connection")
		}
		l.Cancel()
		waitClosed(t, l.Done(), "bootstrap listener")
		select {
		case <-exited:
		case <-time.After(testTimeout):
			cmd.Process.Kill()
			<-exited
			t.Errorf("helper %s did not exit", name)
		}
	})
	go func() { exited <- cmd.Wait() }()
	hp.wait = exited
	select {
	case hp.boot = <-peers:
	case err := <-exited:
		exited <- err
		t.Fatalf("helper %s exited before connecting: %v", name, err)
	case <-time.After(testTimeout):
		t.Fatalf("helper %s did not connect", name)
	}
	return hp
}

// next returns the next message the helper sent on its bootstrap
// connection.
func (hp *helperProc) next(t *testing.T) *Message {
	t.Helper()
	select {
	case m := <-hp.msgs:
		return m
	case <-time.After(testTimeout):
		t.Fatal("no message from the helper")
		return nil
	}
}

// exitErr waits for the helper to exit and returns cmd.Wait's error.
func (hp *helperProc) exitErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-hp.wait:
		hp.wait <- err
		return err
	case <-time.After(testTimeout):
		t.Fatal("helper did not exit")
		return nil
	}
}

// checkPeer checks a Peer against the helper process.
func checkPeer(t *testing.T, p *Peer, pid int) {
	t.Helper()
	if p == nil {
		t.Fatal("no peer")
	}
	if p.PID != pid {
		t.Errorf("Peer.PID = %d, want %d", p.PID, pid)
	}
	if p.UID != uint32(os.Getuid()) || p.GID != uint32(os.Getgid()) {
		t.Errorf("Peer uid/gid = %d/%d, want %d/%d", p.UID, p.GID, os.Getuid(), os.Getgid())
	}
	if exe := testExe(t); p.Exe != exe {
		t.Errorf("Peer.Exe = %q, want %q", p.Exe, exe)
	}
	if !p.Alive() {
		t.Error("Peer.Alive() = false for a running peer")
	}
	if !p.PIDFDFromKernel {
		t.Error("Peer.PIDFDFromKernel = false on a kernel with SO_PEERPIDFD")
	}
	// The peer's own pidfd is close-on-exec, as the kernel makes every
	// pidfd: a child xpcd or a service starts must not inherit it.
	p.mu.Lock()
	if fl, err := unix.FcntlInt(uintptr(p.pidfd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("the peer's pidfd: flags %#x, %v; want close-on-exec", fl, err)
	}
	p.mu.Unlock()
	f, err := p.PIDFD()
	if err != nil {
		t.Errorf("PIDFD: %v", err)
	} else {
		f.Close()
	}
}

// TestConnMultiProcClient: the child is the client of a listener here; both
// sides see the other's kernel-attested identity; requests go both ways;
// the child sees the connection end when the parent cancels it.
func TestConnMultiProcClient(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	hp := startHelper(t, "client")
	pid := hp.cmd.Process.Pid
	checkPeer(t, hp.boot.Peer(), pid)

	m := hp.next(t)
	if op, _ := m.Body.String("op"); op != "hello" {
		t.Fatalf("first message %q", op)
	}
	if got := mustInt64(t, m.Body, "pid"); got != int64(pid) {
		t.Errorf("child says its pid is %d, the kernel says %d", got, pid)
	}
	checkPeer(t, m.Peer(), pid)
	m.Reply(ctx, Dict())

	m = hp.next(t)
	if got := mustInt64(t, m.Body, "pid"); got != int64(os.Getpid()) {
		t.Errorf("child sees the parent as pid %d, want %d", got, os.Getpid())
	}
	if exe, _ := m.Body.String("exe"); exe != testExe(t) {
		t.Errorf("child sees the parent's exe as %q", exe)
	}
	if a, _ := m.Body.Bool("alive"); !a {
		t.Error("child sees the parent dead")
	}
	if k, _ := m.Body.Bool("kernel"); !k {
		t.Error("child's pidfd for the parent did not come from the kernel")
	}
	if u := mustInt64(t, m.Body, "uid"); u != int64(os.Getuid()) {
		t.Errorf("child sees uid %d", u)
	}
	m.Reply(ctx, Dict())

	// Server to client.
	r, err := hp.boot.SendWithReply(ctx, Dict())
	if err != nil {
		t.Fatal(err)
	}
	if got := mustInt64(t, r, "pid"); got != int64(pid) {
		t.Errorf("reply from pid %d", got)
	}

	p := hp.boot.Peer()
	hp.boot.Cancel()
	if err := hp.exitErr(t); err != nil {
		t.Fatalf("child: %v", err)
	}
	hp.h.finalEvent(t, ErrInvalid, ErrCanceled)
	if p.Alive() {
		t.Error("Peer.Alive() after the connection ended")
	}
}

// serverHelper starts the server helper and connects to the listener it
// checks in; h handles what the server sends on that connection.
func serverHelper(t *testing.T, h Handler) (*helperProc, *Connection) {
	t.Helper()
	hp := startHelper(t, "server")
	m := hp.next(t)
	if op, _ := m.Body.String("op"); op != "checkin" {
		t.Fatalf("first message %q", op)
	}
	ep, ok := m.Body.Get("endpoint").(*Endpoint)
	if !ok {
		t.Fatalf("checkin without an endpoint: %v", m.Body.Get("endpoint"))
	}
	c := dialEndpointT(t, ep, h)
	ep.Close()
	return hp, c
}

// TestConnMultiProcServer: the child is the server; the parent connects
// through the endpoint the child sent it and sees the child's identity.
func TestConnMultiProcServer(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	hp, c := serverHelper(t, nil)
	pid := hp.cmd.Process.Pid
	for i := range 10 {
		r, err := c.SendWithReply(ctx, Dict("op", String("echo"), "id", Int64(int64(i))))
		if err != nil {
			t.Fatal(err)
		}
		if mustInt64(t, r, "id") != int64(i) || mustInt64(t, r, "pid") != int64(pid) {
			t.Fatalf("reply %v", Format(r))
		}
	}
	checkPeer(t, c.Peer(), pid)
	hp.boot.Cancel()
	if err := hp.exitErr(t); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// TestConnMultiProcKill: the server is killed with SIGKILL while requests
// wait on it: each fails promptly as invalid, peer gone; the handler gets
// the final event; nothing leaks.
func TestConnMultiProcKill(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	held := make(chan int64, 16)
	h := newTestHandler(func(ctx context.Context, m *Message) {
		if op, _ := m.Body.String("op"); op == "held" {
			held <- mustInt64(t, m.Body, "id")
		}
	})
	hp, c := serverHelper(t, h)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := c.SendWithReply(ctx, Dict("op", String("hold"), "id", Int64(int64(i))))
			errs <- err
		}()
	}
	for range n {
		select {
		case <-held:
		case <-ctx.Done():
			t.Fatal("the server did not take every request")
		}
	}
	start := time.Now()
	if err := hp.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range n {
		err := <-errs
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("request still pending after %v", testTimeout)
		}
		wantConnErr(t, err, ErrInvalid, ErrPeerGone)
	}
	t.Logf("pending calls failed %v after SIGKILL", time.Since(start))
	h.finalEvent(t, ErrInvalid, ErrPeerGone)
	waitClosed(t, c.Done(), "connection")
	if _, err := c.SendWithReply(ctx, Dict("op", String("echo"))); !errors.Is(err, ErrPeerGone) {
		t.Errorf("send after the kill: %v", err)
	}
	if err := hp.exitErr(t); err == nil {
		t.Error("killed helper exited cleanly")
	}
	hp.h.finalEvent(t, ErrInvalid, ErrPeerGone)
}

// TestConnMultiProcConcurrent: many goroutines share one connection to a
// server in another process; every request gets its own reply, exactly
// once.
func TestConnMultiProcConcurrent(t *testing.T) {
	leakCheck(t)
	workers, perWorker := 64, 10000
	if connRace || testing.Short() {
		perWorker = 300
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	_, c := serverHelper(t, nil)
	start := time.Now()
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		done   atomic.Int64
		errs   = make(chan error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id := int64(w*perWorker + i)
				r, err := c.SendWithReply(ctx, Dict("op", String("echo"), "id", Int64(id)))
				if err != nil {
					failed.Add(1)
					errs <- fmt.Errorf("request %d: %w", id, err)
					return
				}
				if got, _ := r.Int64("id"); got != id {
					failed.Add(1)
					errs <- fmt.Errorf("request %d got the reply for %d", id, got)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := int64(workers * perWorker)
	if done.Load() != total {
		t.Fatalf("%d of %d requests completed", done.Load(), total)
	}
	r, err := c.SendWithReply(ctx, Dict("op", String("stats")))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustInt64(t, r, "echoes"); got != total {
		t.Errorf("the server answered %d requests, want %d", got, total)
	}
	el := time.Since(start)
	t.Logf("%d requests from %d goroutines in %v (%v each)", total, workers, el, el/time.Duration(total))
}
