package xpcd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// isoStep is one thing the isolation client does: look a name up and ping
// the service through the library (op "lookup"), or send one request on a
// bootstrap connection (op "admin", the request in req).
type isoStep struct {
	ID     string         `json:"id"`
	Op     string         `json:"op"`
	Name   string         `json:"name,omitempty"`
	Domain string         `json:"domain,omitempty"`
	Req    map[string]any `json:"req,omitempty"`
	// Ints are more keys of the request, as integers (JSON's numbers in
	// Req would be doubles).
	Ints map[string]int64 `json:"ints,omitempty"`
}

// isoResult is what became of a step. Reason is xpcd's reason for an admin
// request, or for a lookup the library's error kind as xpcd's reason
// ("not-found", "denied").
type isoResult struct {
	OK      bool   `json:"ok"`
	Reason  string `json:"reason,omitempty"`
	Error   string `json:"error,omitempty"`
	PID     int    `json:"pid,omitempty"`
	UID     int    `json:"uid,omitempty"`
	PeerUID int    `json:"peer_uid,omitempty"`
}

const isoResultPrefix = "ISO-RESULT: "

// TestIsolationClient is the client the isolation tests run as another
// user: the test binary, re-executed with XPCD_ISO_CLIENT holding the
// steps (JSON). It prints one line, ISO-RESULT: {ID: RESULT, ...}.
func TestIsolationClient(t *testing.T) {
	script := os.Getenv("XPCD_ISO_CLIENT")
	if script == "" {
		t.Skip("not a test: the client the isolation tests run as another user")
	}
	var steps []isoStep
	if err := json.Unmarshal([]byte(script), &steps); err != nil {
		t.Fatal(err)
	}
	sock := bootstrap.ForRoot(os.Getenv(bootstrap.RootEnv), false).Socket
	results := map[string]isoResult{}
	for _, s := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		switch s.Op {
		case "lookup":
			results[s.ID] = isoLookup(ctx, sock, s)
		case "admin":
			results[s.ID] = isoAdmin(ctx, sock, s)
		default:
			results[s.ID] = isoResult{Error: "unknown step " + s.Op}
		}
		cancel()
	}
	b, _ := json.Marshal(results)
	fmt.Printf("\n%s%s\n", isoResultPrefix, b)
}

func isoLookup(ctx context.Context, sock string, s isoStep) isoResult {
	opts := []xpc.Option{xpc.WithBootstrapSocket(sock)}
	if s.Domain != "" {
		opts = append(opts, xpc.WithDomain(s.Domain))
	}
	c, err := xpc.NewServiceConnection(s.Name, opts...)
	if err != nil {
		return isoResult{Error: err.Error()}
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	r, err := c.SendWithReply(ctx, xpc.Dict("cmd", "ping"))
	if err != nil {
		res := isoResult{Error: err.Error()}
		switch {
		case errors.Is(err, xpc.ErrServiceNotFound):
			res.Reason = bootstrap.ReasonNotFound
		case errors.Is(err, xpc.ErrDenied):
			res.Reason = bootstrap.ReasonDenied
		}
		return res
	}
	return isoResult{OK: true, PID: intOf(r, "pid"), UID: intOf(r, "uid"), PeerUID: intOf(r, "peer_uid")}
}

func isoAdmin(ctx context.Context, sock string, s isoStep) isoResult {
	req, err := xpc.ValueOf(s.Req)
	if err != nil {
		return isoResult{Error: err.Error()}
	}
	for k, v := range s.Ints {
		req.(*xpc.Dictionary).Set(k, xpc.Int64(v))
	}
	c, err := xpc.DialUnix(ctx, sock)
	if err != nil {
		return isoResult{Error: err.Error()}
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	_, err = c.SendWithReply(ctx, req.(*xpc.Dictionary))
	if err != nil {
		return isoResult{Reason: reasonOf(err), Error: err.Error()}
	}
	return isoResult{OK: true}
}

// testUser is a system user made for a test.
type testUser struct {
	name     string
	uid, gid uint32
}

// newTestUser adds a system user, removed when the test ends. It skips
// the test, saying why, unless it runs as root with useradd at hand.
func newTestUser(t *testing.T) testUser {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to add a user and run clients as them")
	}
	useradd, err := exec.LookPath("useradd")
	if err != nil {
		t.Skip("skipped: useradd is not installed: " + err.Error())
	}
	userdel, err := exec.LookPath("userdel")
	if err != nil {
		t.Skip("skipped: userdel is not installed: " + err.Error())
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	name := "goxpc-test-" + hex.EncodeToString(rnd[:])
	shell := "/usr/sbin/nologin"
	if _, err := os.Stat(shell); err != nil {
		shell = "/bin/false"
	}
	if out, err := exec.Command(useradd, "--system", "--no-create-home", "--shell", shell, name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(userdel, "--force", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return testUser{name: name, uid: uint32(uid), gid: uint32(gid)}
}

// runAs runs a program as uid/gid with XPCD_ROOT=root and returns its
// standard output, its standard error and its exit status.
func runAs(t *testing.T, uid, gid uint32, root string, env []string, prog string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/", bootstrap.RootEnv + "=" + root}, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s as uid %d: %v", prog, uid, err)
	}
	return out.String(), errb.String(), code
}

// isoClient runs TestIsolationClient (the test binary at bin) as uid/gid
// against the instance under root and returns its results by step.
func isoClient(t *testing.T, bin string, uid, gid uint32, root string, steps []isoStep) map[string]isoResult {
	t.Helper()
	script, err := json.Marshal(steps)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runAs(t, uid, gid, root,
		[]string{"XPCD_ISO_CLIENT=" + string(script), "XPCD_TEST_HELPER=1"},
		bin, "-test.run=^TestIsolationClient$", "-test.count=1")
	var res map[string]isoResult
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), isoResultPrefix); ok {
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatalf("client output: %v: %q", err, line)
			}
		}
	}
	if code != 0 || res == nil {
		t.Fatalf("client as uid %d: exit %d\nstdout:\n%s\nstderr:\n%s", uid, code, stdout, stderr)
	}
	return res
}
