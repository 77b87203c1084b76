package xpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// Peer requirements across processes. The test binary is run again as the
// peer: with GOXPC_REQ_HELPER set it runs the named helper instead of the
// tests, with an endpoint of a listener of the test on descriptor 3.

const reqHelperEnv = "GOXPC_REQ_HELPER"

// reqExecFDEnv names, for the after-exec helper, the descriptor of the
// connection it inherited across exec.
const reqExecFDEnv = "GOXPC_REQ_FD"

// nobody is the uid and gid the helpers of another user run as.
const nobody = 65534

func init() {
	if name := os.Getenv(reqHelperEnv); name != "" {
		os.Exit(runReqHelper(name))
	}
}

func runReqHelper(name string) int {
	var err error
	switch name {
	case "dial":
		err = reqHelperDial()
	case "serve":
		err = reqHelperServe()
	case "exec":
		err = reqHelperExec()
	case "after-exec":
		err = reqHelperAfterExec()
	default:
		err = fmt.Errorf("no helper %q", name)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", name, err)
		return 1
	}
	return 0
}

func reqHelperCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// reqHelperDial connects to the test's listener, sends a request, and
// prints on its standard output how the request failed: the reason's
// code, rule and peer, and whether the error matched ErrInvalid and
// ErrPeerRequirement, one a line.
func reqHelperDial() error {
	ctx, cancel := reqHelperCtx()
	defer cancel()
	ep := NewEndpoint(os.NewFile(3, "endpoint"))
	c, err := NewEndpointConnection(ep)
	ep.Close()
	if err != nil {
		return err
	}
	c.Activate()
	defer c.Cancel()
	_, err = c.SendWithReply(ctx, Dict("op", "hello"))
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Reason == nil {
		return fmt.Errorf("the request got %v, want a refusal", err)
	}
	fmt.Printf("%s\n%s\n%s\n%t\n%t\n", ce.Reason.Code, ce.Reason.Rule, ce.Reason.Peer,
		errors.Is(err, ErrInvalid), errors.Is(err, ErrPeerRequirement))
	return nil
}

// reqHelperServe connects to the test's listener, makes a listener of its
// own that echoes, sends the test an endpoint of it, and serves until the
// test ends the first connection.
func reqHelperServe() error {
	ctx, cancel := reqHelperCtx()
	defer cancel()
	ep := NewEndpoint(os.NewFile(3, "endpoint"))
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
	l.SetHandler(func(p *Connection) {
		p.SetHandler(HandlerFunc(echo))
		p.Activate()
	})
	l.Activate()
	defer l.Cancel()
	lep, err := l.Endpoint()
	if err != nil {
		return err
	}
	err = boot.Send(ctx, Dict("endpoint", lep))
	lep.Close()
	if err != nil {
		return err
	}
	select {
	case <-boot.Done():
		return nil
	case <-ctx.Done():
		return errors.New("the test never ended the connection")
	}
}

// reqHelperExec connects to the test's listener by hand (a socket pair,
// one end sent through the endpoint) so as to keep the raw descriptor of
// its end, sends "before", and when the test sends it {op: exec, path},
// executes path as the after-exec helper with that descriptor kept open,
// the test's request unanswered.
func reqHelperExec() error {
	ctx, cancel := reqHelperCtx()
	defer cancel()
	mine, theirs, err := sock.Pair()
	if err != nil {
		return err
	}
	var hdr [wire.HeaderSize]byte
	wire.PutHeader(hdr[:], wire.Header{Kind: wire.KindConnect, NFDs: 1})
	err = wire.SendNow(3, hdr[:], []int{theirs})
	unix.Close(theirs)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(mine), "connection")
	c, err := NewConnectionFromFile(f)
	if err != nil {
		return err
	}
	execErr := make(chan error, 1)
	c.SetHandler(HandlerFunc(func(ctx context.Context, m *Message) {
		path, _ := m.Body.String("path")
		if _, err := unix.FcntlInt(uintptr(mine), unix.F_SETFD, 0); err != nil {
			execErr <- err
			return
		}
		env := []string{reqHelperEnv + "=after-exec", reqExecFDEnv + "=" + strconv.Itoa(mine)}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, reqHelperEnv+"=") {
				env = append(env, kv)
			}
		}
		execErr <- syscall.Exec(path, []string{path}, env)
	}))
	c.Activate()
	if _, err := c.SendWithReply(ctx, Dict("op", "before")); err != nil {
		return err
	}
	// f holds mine, which the exec keeps: it must not be closed by f's
	// finalizer meanwhile.
	defer runtime.KeepAlive(f)
	select {
	case err := <-execErr:
		return fmt.Errorf("exec: %w", err)
	case <-ctx.Done():
		return errors.New("the test never asked for the exec")
	}
}

// reqHelperAfterExec is the program the exec helper executed: on the
// connection it inherited, it sends the one-way message "after", and a
// request, frames written by hand (the test may close the connection at
// the first), then waits for the test to close the connection.
func reqHelperAfterExec() error {
	fd, err := strconv.Atoi(os.Getenv(reqExecFDEnv))
	if err != nil {
		return err
	}
	// The connection's socket was non-blocking; this program waits.
	if err := unix.SetNonblock(fd, false); err != nil {
		return err
	}
	for i, k := range []wire.Kind{wire.KindMessage, wire.KindRequest} {
		body, err := Encode(Dict("op", "after"))
		if err != nil {
			return err
		}
		frame := make([]byte, wire.HeaderSize, wire.HeaderSize+len(body))
		wire.PutHeader(frame, wire.Header{Kind: k, ID: uint64(1000 + i)})
		if _, err := unix.Write(fd, append(frame, body...)); errors.Is(err, unix.EPIPE) {
			return nil // the test closed the connection at the first
		} else if err != nil {
			return fmt.Errorf("send %v: %w", k, err)
		}
	}
	buf := make([]byte, 1<<16)
	for {
		n, err := unix.Read(fd, buf)
		if n == 0 || errors.Is(err, unix.ECONNRESET) {
			return nil // closed by the test
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// copyTestBinary copies the test binary into a new directory that every
// user may read and search, and returns the copy's path: the helpers of
// another uid run it, and the exec helper executes it as another program.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "goxpc-req-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(testExe(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "xpc-peer.test")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// reqChild is a helper process.
type reqChild struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	exited chan error
}

// startReqChild runs exe as the named helper with ep on its descriptor 3,
// as cred's user if cred is not nil. When the test ends it is killed if it
// has not exited, and waited for.
func startReqChild(t *testing.T, exe, name string, cred *syscall.Credential, ep *Endpoint) *reqChild {
	t.Helper()
	ch := &reqChild{exited: make(chan error, 1)}
	ch.cmd = exec.Command(exe, "-test.run=^$")
	ch.cmd.Env = append(os.Environ(), reqHelperEnv+"="+name)
	ch.cmd.ExtraFiles = []*os.File{ep.File()}
	ch.cmd.Stdout = &ch.stdout
	ch.cmd.Stderr = os.Stderr
	ch.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := ch.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { ch.exited <- ch.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case err := <-ch.exited:
			ch.exited <- err
		case <-time.After(testTimeout):
			ch.cmd.Process.Kill()
			<-ch.exited
			t.Errorf("helper %s did not exit", name)
		}
	})
	return ch
}

// wait waits for the helper to exit, failing the test unless it exited
// cleanly.
func (ch *reqChild) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-ch.exited:
		ch.exited <- err
		if err != nil {
			t.Fatalf("helper: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("helper did not exit")
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a helper as another user")
	}
}

// nobodyCred is the credential of a helper run as another user.
func nobodyCred() *syscall.Credential {
	return &syscall.Credential{Uid: nobody, Gid: nobody, NoSetGroups: true}
}

// TestPeerRequirementOtherUIDClient: a listener that requires uid 0 turns
// away a client of another user before its admission check or handler
// sees it, and the client, in its own process, learns why: ErrInvalid and
// ErrPeerRequirement, the clause, and its own identity as checked.
func TestPeerRequirementOtherUIDClient(t *testing.T) {
	needRoot(t)
	leakCheck(t)
	exe := copyTestBinary(t)
	l, err := NewListener(WithPeerRequirement(MustParseRequirement("uid 0")))
	if err != nil {
		t.Fatal(err)
	}
	g := newGuardedListener(t, l)
	ep, err := l.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	ch := startReqChild(t, exe, "dial", nobodyCred(), ep)
	ep.Close()
	ch.wait(t)
	lines := strings.Split(strings.TrimSpace(ch.stdout.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("helper said %q", ch.stdout.String())
	}
	code, rule, peer := lines[0], lines[1], lines[2]+" "
	if code != ReasonRequirementFailed || rule != "uid 0" || lines[3] != "true" || lines[4] != "true" {
		t.Errorf("the client saw code %q, rule %q, invalid %s, peer requirement %s", code, rule, lines[3], lines[4])
	}
	for _, want := range []string{fmt.Sprintf("pid %d ", ch.cmd.Process.Pid), fmt.Sprintf("uid %d ", nobody), "exe " + exe} {
		if !strings.Contains(peer, want) {
			t.Errorf("the client was named %q, not %q", peer, want)
		}
	}
	g.wantUnseen(t)
}

// TestPeerRequirementOtherUIDListener: a client that requires uid 0 of
// its listener, whose process runs as another user, fails at its first
// send with ErrInvalid and ErrPeerRequirement naming the listener's
// process; nothing of the listener's is delivered.
func TestPeerRequirementOtherUIDListener(t *testing.T) {
	needRoot(t)
	leakCheck(t)
	exe := copyTestBinary(t)
	endpoints := make(chan *Endpoint, 1)
	boot := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		if ep, ok := m.Body.Get("endpoint").(*Endpoint); ok {
			m.Body.Delete("endpoint")
			endpoints <- ep
		}
	}))
	bep, err := boot.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	ch := startReqChild(t, exe, "serve", nobodyCred(), bep)
	bep.Close()
	var ep *Endpoint
	select {
	case ep = <-endpoints:
	case <-time.After(testTimeout):
		t.Fatal("the helper sent no endpoint")
	}
	defer ep.Close()
	h := newTestHandler(func(context.Context, *Message) { t.Error("a message of the listener was delivered") })
	c := dialEndpointT(t, ep, h, WithPeerRequirement(MustParseRequirement("uid 0")))
	_, err = c.SendWithReply(testCtx(t), Dict("op", "x"))
	listener := []string{fmt.Sprintf("pid %d ", ch.cmd.Process.Pid), fmt.Sprintf("uid %d ", nobody)}
	wantRequirementFailed(t, err, "uid 0", listener...)
	wantRequirementFailed(t, h.finalEvent(t), "uid 0", listener...)

	// The same endpoint, without the requirement: served.
	ok := dialEndpointT(t, ep, nil)
	if _, err := ok.SendWithReply(testCtx(t), Dict("op", "x")); err != nil {
		t.Fatalf("without the requirement: %v", err)
	}
	for _, p := range boot.Peers() {
		p.Cancel()
	}
	ch.wait(t)
}

// TestPeerRequirementExec: a client that meets "exe <the test binary>"
// when it connects, and then executes another program (a copy of the
// test binary elsewhere) that keeps the connection, fails from its next
// frame on: the message and the request it sends after the exec reach no
// handler, the listener's request waiting on it fails, and the connection
// ends, each with ErrInvalid and ErrPeerRequirement naming the clause and
// the new executable.
func TestPeerRequirementExec(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	exe, other := testExe(t), copyTestBinary(t)
	req, err := ParseRequirement("exe " + quoteValue(exe))
	if err != nil {
		t.Fatal(err)
	}
	rule := req.String()
	msgs := make(chan *Message, 4)
	var peer *Connection
	var h *testHandler
	l, err := NewListener(WithPeerRequirement(req))
	if err != nil {
		t.Fatal(err)
	}
	peers := make(chan *Connection, 1)
	h = newTestHandler(func(ctx context.Context, m *Message) {
		if op, _ := m.Body.String("op"); op == "before" {
			m.Reply(ctx, Dict())
		}
		msgs <- m
	})
	serveOn(t, l, func(p *Connection) Handler { peers <- p; return h })
	ep, err := l.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	ch := startReqChild(t, exe, "exec", nil, ep)
	ep.Close()
	select {
	case peer = <-peers:
	case <-time.After(testTimeout):
		t.Fatal("the helper did not connect")
	}
	if m := <-msgs; m.Body.Get("op") != String("before") {
		t.Fatalf("first message %v", Format(m.Body))
	}
	pending := peer.Go(ctx, Dict("op", "exec", "path", other))
	_, err = pending.Wait(ctx)
	after := []string{fmt.Sprintf("pid %d ", ch.cmd.Process.Pid), "exe " + other}
	wantRequirementFailed(t, err, rule, after...)
	wantRequirementFailed(t, h.finalEvent(t), rule, after...)
	select {
	case m := <-msgs:
		t.Errorf("delivered after the exec: %v", Format(m.Body))
	default:
	}
	ch.wait(t)
}
