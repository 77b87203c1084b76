package xpcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// testTimeout bounds every wait; nothing should come near it.
const testTimeout = 15 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// logBuffer collects a daemon's log; a failed test prints it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is a private xpcd in a temporary directory, as a test uses one.
type harness struct {
	t     *testing.T
	dir   string
	paths bootstrap.Paths
	logs  *logBuffer
	d     *Daemon
	cfg   Config
	exe   string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	// Short: the socket path must fit in sun_path.
	dir, err := os.MkdirTemp("", "xpcd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir, paths: bootstrap.ForRoot(dir, true), logs: &logBuffer{}, exe: exe}
	if err := os.MkdirAll(h.paths.Agents, 0o755); err != nil {
		t.Fatal(err)
	}
	h.cfg = Config{
		Paths:               h.paths,
		Logger:              slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		PressureInterval:    -1,
		UpgradeInterval:     -1,
		StopServicesOnClose: true,
		JournalSocket:       "-",
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("xpcd log:\n%s", h.logs)
		}
	})
	return h
}

// start starts a daemon on the harness's directory; it is closed when the
// test ends (stopping its services) unless the test closes it first.
func (h *harness) start() *Daemon {
	h.t.Helper()
	d, err := New(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := d.Start(testCtx(h.t)); err != nil {
		h.t.Fatal(err)
	}
	h.d = d
	h.t.Cleanup(func() { h.close(d) })
	return d
}

func (h *harness) close(d *Daemon) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		h.t.Errorf("close: %v", err)
	}
}

// testJob describes a test service's plist.
type testJob struct {
	label     string
	names     []string
	env       map[string]string
	extra     map[string]any // more plist keys
	program   string         // default: the test binary
	runAtLoad bool
}

// writePlist writes the job's plist into LaunchAgents (or dir, if given)
// and returns its path.
func (h *harness) writePlist(j testJob, dir ...string) string {
	h.t.Helper()
	d := h.paths.Agents
	if len(dir) > 0 {
		d = dir[0]
	}
	path := filepath.Join(d, j.label+".plist")
	if err := os.WriteFile(path, h.plist(j), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return path
}

func (h *harness) plist(j testJob) []byte {
	h.t.Helper()
	prog := j.program
	if prog == "" {
		prog = h.exe
	}
	env := map[string]any{"XPCD_TEST_HELPER": "1", "XPCD_TEST_NAMES": strings.Join(j.names, ",")}
	for k, v := range j.env {
		env[k] = v
	}
	ms := map[string]any{}
	for _, n := range j.names {
		ms[n] = true
	}
	m := map[string]any{
		"Label":                j.label,
		"ProgramArguments":     []any{prog, "-test.run=^TestHelperProcess$"},
		"EnvironmentVariables": env,
		"MachServices":         ms,
	}
	if j.runAtLoad {
		m["RunAtLoad"] = true
	}
	for k, v := range j.extra {
		m[k] = v
	}
	obj, err := xpc.ValueOf(m)
	if err != nil {
		h.t.Fatal(err)
	}
	b, err := xpc.ToPlist(obj, xpc.PlistXML)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// dial opens a bootstrap connection, for admin requests.
func (h *harness) dial(handler xpc.Handler) *xpc.Connection {
	h.t.Helper()
	c, err := xpc.DialUnix(testCtx(h.t), h.paths.Socket)
	if err != nil {
		h.t.Fatal(err)
	}
	if handler == nil {
		handler = xpc.HandlerFunc(func(context.Context, *xpc.Message) {})
	}
	c.SetHandler(handler)
	c.Activate()
	h.t.Cleanup(c.Cancel)
	return c
}

// admin sends one request on a new bootstrap connection.
func (h *harness) admin(op string, kv ...any) (*xpc.Dictionary, error) {
	h.t.Helper()
	c := h.dial(nil)
	defer c.Cancel()
	msg := xpc.Dict(append([]any{bootstrap.KeyOp, op}, kv...)...)
	return c.SendWithReply(testCtx(h.t), msg)
}

func (h *harness) mustAdmin(op string, kv ...any) *xpc.Dictionary {
	h.t.Helper()
	r, err := h.admin(op, kv...)
	if err != nil {
		h.t.Fatalf("%s %v: %v", op, kv, err)
	}
	return r
}

// target is the test domain's target for label.
func (h *harness) target(label string) string {
	return UserDomain(uint32(os.Geteuid())) + "/" + label
}

// print returns the job's dictionary.
func (h *harness) print(label string) *xpc.Dictionary {
	h.t.Helper()
	return h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, h.target(label))
}

// lookup connects to a service by hand, as the library will: a socket
// pair, one end sent in a lookup, the other kept.
func (h *harness) lookup(name string, kv ...any) (*xpc.Connection, error) {
	h.t.Helper()
	ctx := testCtx(h.t)
	bc, err := xpc.DialUnix(ctx, h.paths.Socket)
	if err != nil {
		return nil, err
	}
	bc.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	bc.Activate()
	defer bc.Cancel()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	mine := os.NewFile(uintptr(fds[0]), "client")
	theirs := xpc.NewFD(os.NewFile(uintptr(fds[1]), "service"))
	defer mine.Close()
	msg := xpc.Dict(append([]any{bootstrap.KeyOp, bootstrap.OpLookup, bootstrap.KeyName, name}, kv...)...)
	msg.Set(bootstrap.KeySocket, theirs)
	_, err = bc.SendWithReply(ctx, msg)
	theirs.Close()
	if err != nil {
		return nil, err
	}
	c, err := xpc.NewConnectionFromFile(mine)
	if err != nil {
		return nil, err
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	h.t.Cleanup(c.Cancel)
	return c, nil
}

func (h *harness) mustLookup(name string) *xpc.Connection {
	h.t.Helper()
	c, err := h.lookup(name)
	if err != nil {
		h.t.Fatalf("lookup %s: %v", name, err)
	}
	return c
}

// call sends a command to a service and returns the reply.
func call(t *testing.T, c *xpc.Connection, cmd string, kv ...any) (*xpc.Dictionary, error) {
	t.Helper()
	return c.SendWithReply(testCtx(t), xpc.Dict(append([]any{"cmd", cmd}, kv...)...))
}

func ping(t *testing.T, c *xpc.Connection) int {
	t.Helper()
	r, err := call(t, c, "ping")
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	pid, _ := r.Int64("pid")
	return int(pid)
}

// reasonOf returns the reason of an error reply.
func reasonOf(err error) string {
	var re *xpc.RemoteError
	if errors.As(err, &re) {
		s, _ := re.Object.Get(bootstrap.KeyReason).(xpc.String)
		return string(s)
	}
	return ""
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitState waits until the job is in state.
func (h *harness) waitState(label, state string) *xpc.Dictionary {
	h.t.Helper()
	var d *xpc.Dictionary
	waitFor(h.t, fmt.Sprintf("%s to be %s", label, state), func() bool {
		d = h.print(label)
		s, _ := d.String("state")
		return s == state
	})
	return d
}

func intOf(d *xpc.Dictionary, key string) int {
	v, _ := d.Int64(key)
	return int(v)
}

func strOf(d *xpc.Dictionary, key string) string {
	v, _ := d.String(key)
	return v
}

// lookupPing looks name up and pings the service, looking up again when
// the connection was handed to an instance that died meanwhile, as the
// library's service connections do after an interruption.
func (h *harness) lookupPing(name string) int {
	h.t.Helper()
	for try := 0; ; try++ {
		c := h.mustLookup(name)
		r, err := call(h.t, c, "ping")
		if err == nil {
			pid, _ := r.Int64("pid")
			return int(pid)
		}
		if !errors.Is(err, xpc.ErrPeerGone) || try == 3 {
			h.t.Fatalf("ping %s: %v", name, err)
		}
	}
}
