package xpcd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// polStep is one thing the lookup policy client does: look a name up and
// ping the service through the library (op "lookup"), or send a lookup
// request carrying the socket end it was given on descriptor 3, which
// another process made (op "present").
type polStep struct {
	ID     string `json:"id"`
	Op     string `json:"op"`
	Name   string `json:"name"`
	Domain string `json:"domain,omitempty"`
}

// polResult is what became of a step: the error kinds errors.Is finds on
// the library's error, and the reason it carries; for "present", xpcd's
// reason and rule.
type polResult struct {
	OK      bool     `json:"ok"`
	Kinds   []string `json:"kinds,omitempty"`
	Code    string   `json:"code,omitempty"`
	Rule    string   `json:"rule,omitempty"`
	Domain  string   `json:"domain,omitempty"`
	Peer    string   `json:"peer,omitempty"`
	Desc    string   `json:"desc,omitempty"`
	Error   string   `json:"error,omitempty"`
	PID     int      `json:"pid,omitempty"` // the client's own
	PeerUID int      `json:"peer_uid,omitempty"`
}

const polResultPrefix = "POL-RESULT: "

// polKinds are the error kinds a result lists.
var polKinds = []struct {
	name string
	err  error
}{
	{"invalid", xpc.ErrInvalid}, {"interrupted", xpc.ErrInterrupted},
	{"not-found", xpc.ErrServiceNotFound}, {"other-domain", xpc.ErrOtherDomain},
	{"denied", xpc.ErrDenied}, {"requirement", xpc.ErrPeerRequirement},
}

// TestLookupPolicyClient is the client the lookup policy tests run as
// another user: the test binary, re-executed with XPCD_POL_CLIENT holding
// the steps (JSON). It prints one line, POL-RESULT: {ID: RESULT, ...}.
func TestLookupPolicyClient(t *testing.T) {
	script := os.Getenv("XPCD_POL_CLIENT")
	if script == "" {
		t.Skip("not a test: the client the lookup policy tests run as another user")
	}
	var steps []polStep
	if err := json.Unmarshal([]byte(script), &steps); err != nil {
		t.Fatal(err)
	}
	sock := bootstrap.ForRoot(os.Getenv(bootstrap.RootEnv), false).Socket
	results := map[string]polResult{}
	for _, s := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		switch s.Op {
		case "lookup":
			results[s.ID] = polLookup(ctx, sock, s)
		case "present":
			results[s.ID] = polPresent(ctx, sock, s)
		default:
			results[s.ID] = polResult{Error: "unknown step " + s.Op}
		}
		cancel()
	}
	b, _ := json.Marshal(results)
	fmt.Printf("\n%s%s\n", polResultPrefix, b)
}

// polError describes a library error as a polResult.
func polError(err error) polResult {
	res := polResult{Error: err.Error(), PID: os.Getpid()}
	for _, k := range polKinds {
		if errors.Is(err, k.err) {
			res.Kinds = append(res.Kinds, k.name)
		}
	}
	var ce *xpc.ConnError
	if errors.As(err, &ce) && ce.Reason != nil {
		r := ce.Reason
		res.Code, res.Rule, res.Domain, res.Peer, res.Desc = r.Code, r.Rule, r.Domain, r.Peer, r.Description
	}
	return res
}

func polLookup(ctx context.Context, sock string, s polStep) polResult {
	opts := []xpc.Option{xpc.WithBootstrapSocket(sock)}
	if s.Domain != "" {
		opts = append(opts, xpc.WithDomain(s.Domain))
	}
	c, err := xpc.NewServiceConnection(s.Name, opts...)
	if err != nil {
		return polResult{Error: err.Error()}
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	r, err := c.SendWithReply(ctx, xpc.Dict("cmd", "ping"))
	if err != nil {
		return polError(err)
	}
	return polResult{OK: true, PID: os.Getpid(), PeerUID: intOf(r, "peer_uid")}
}

// polPresent sends a lookup of s.Name as a request, carrying descriptor 3.
func polPresent(ctx context.Context, sock string, s polStep) polResult {
	c, err := xpc.DialUnix(ctx, sock)
	if err != nil {
		return polResult{Error: err.Error()}
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	end := xpc.NewFD(os.NewFile(3, "presented"))
	defer end.Close()
	msg := xpc.Dict(bootstrap.KeyOp, bootstrap.OpLookup, bootstrap.KeyName, s.Name)
	msg.Set(bootstrap.KeySocket, end)
	_, err = c.SendWithReply(ctx, msg)
	if err == nil {
		return polResult{OK: true}
	}
	res := polResult{Code: reasonOf(err), Error: err.Error()}
	var re *xpc.RemoteError
	if errors.As(err, &re) {
		res.Rule, _ = re.Object.String(bootstrap.KeyRule)
		res.Desc = re.Object.Description()
	}
	return res
}

// polClient runs TestLookupPolicyClient (the test binary at bin) as
// uid/gid against the instance under root, with extra on its descriptor 3
// if not nil, and returns its results by step.
func polClient(t *testing.T, bin string, uid, gid uint32, root string, extra *os.File, steps []polStep) map[string]polResult {
	t.Helper()
	script, err := json.Marshal(steps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestLookupPolicyClient$", "-test.count=1")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/", bootstrap.RootEnv + "=" + root,
		"XPCD_POL_CLIENT=" + string(script), "XPCD_TEST_HELPER=1"}
	cmd.Dir = "/"
	if uid != uint32(os.Geteuid()) || gid != uint32(os.Getegid()) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	}
	if extra != nil {
		cmd.ExtraFiles = []*os.File{extra}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	var res map[string]polResult
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), polResultPrefix); ok {
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatalf("client output: %v: %q", err, line)
			}
		}
	}
	if runErr != nil || res == nil {
		t.Fatalf("client as uid %d: %v\nstdout:\n%s\nstderr:\n%s", uid, runErr, out.String(), errb.String())
	}
	return res
}

// is reports whether the result's error matched exactly the kinds named.
func (r polResult) is(kinds ...string) bool {
	return !r.OK && strings.Join(r.Kinds, " ") == strings.Join(kinds, " ")
}
