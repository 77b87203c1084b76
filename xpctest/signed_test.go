package xpctest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/codesign"
	"github.com/goxpc/xpc/xpctest"
)

// A service requiring its clients to be signed (Service.Listen with
// WithPeerRequirement), reached by copies of the test binary: the
// service, started by xpcd with XPCD_ROOT, trusts the keys in the
// server's trust.d (codesign.Default).

const (
	signedName        = "org.goxpc.xpctest.signed"
	signedRequirement = "identifier org.example.client and team ABCDE12345"
)

// quickExit is the GORACE setting under which a process built with the
// race detector exits without first sleeping a second.
const quickExit = "atexit_sleep_ms=0"

// TestHelperSignedService is a service, run by xpcd with
// XPCTEST_SERVE=signed, whose listener requires signedRequirement of its
// clients and answers their requests with {"ok": true}.
func TestHelperSignedService(t *testing.T) {
	if os.Getenv("XPCTEST_SERVE") != "signed" {
		t.Skip("run by xpcd as a service")
	}
	ctx := context.Background()
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l, err := svc.Listen(ctx, signedName, xpc.WithPeerRequirement(xpc.MustParseRequirement(signedRequirement)))
	if err != nil {
		t.Fatal(err)
	}
	l.SetHandler(func(peer *xpc.Connection) {
		peer.SetHandler(xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) { m.Reply(ctx, xpc.Dict("ok", true)) }))
		peer.Activate()
	})
	l.Activate()
	<-svc.Terminating()
	os.Exit(0)
}

// signedClientOutcome is how a signed client's request fared.
type signedClientOutcome struct {
	Replied                  bool
	Err, Code, Rule, Peer    string
	Invalid, PeerRequirement bool
}

// TestHelperSignedClient is a client, a copy of the test binary run with
// XPCTEST_SIGNED_CLIENT=1 and the server's XPCD_ROOT: it sends the
// service a request and prints how it fared.
func TestHelperSignedClient(t *testing.T) {
	if os.Getenv("XPCTEST_SIGNED_CLIENT") != "1" {
		t.Skip("run by TestServiceRequiresSignedClient")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var o signedClientOutcome
	c, err := xpc.NewServiceConnection(signedName)
	if err == nil {
		c.Activate()
		_, err = c.SendWithReply(ctx, xpc.Dict("op", "hello"))
		c.Cancel()
	}
	o.Replied = err == nil
	if err != nil {
		o.Err, o.Invalid, o.PeerRequirement = err.Error(), errors.Is(err, xpc.ErrInvalid), errors.Is(err, xpc.ErrPeerRequirement)
	}
	var ce *xpc.ConnError
	if errors.As(err, &ce) && ce.Reason != nil {
		o.Code, o.Rule, o.Peer = ce.Reason.Code, ce.Reason.Rule, ce.Reason.Peer
	}
	if err := json.NewEncoder(os.Stdout).Encode(o); err != nil {
		t.Fatal(err)
	}
	os.Exit(0)
}

// TestServiceRequiresSignedClient: a named service requiring an
// identifier and a team of its clients serves a client signed so by a key
// of the server's trust directory, and turns away an unsigned one, which
// learns the clause it failed, its identity as the service checked it,
// and that it is not signed.
func TestServiceRequiresSignedClient(t *testing.T) {
	plist := xpctest.AgentPlist(signedName,
		[]string{os.Args[0], "-test.run=^TestHelperSignedService$"},
		[]string{signedName},
		map[string]any{"EnvironmentVariables": map[string]string{"XPCTEST_SERVE": "signed", "GORACE": quickExit}})
	srv := xpctest.NewServer(t, xpctest.WithPlist("signed.plist", plist))

	dir, err := os.MkdirTemp("", "xpctest-signed-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	trust := filepath.Join(srv.Root, "trust.d")
	if err := os.Mkdir(trust, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := codesign.WriteKeyPair(filepath.Join(dir, "test")); err != nil {
		t.Fatal(err)
	}
	key, err := codesign.ReadPrivateKey(filepath.Join(dir, "test.key"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, "test.pub"))
	if err == nil {
		err = os.WriteFile(filepath.Join(trust, "test.pub"), pub, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	signed, unsigned := filepath.Join(dir, "signed"), filepath.Join(dir, "unsigned")
	copyTestBinary(t, signed)
	copyTestBinary(t, unsigned)
	f, err := os.Open(signed)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sig, err := codesign.Sign(f, key, codesign.Identity{Identifier: "org.example.client", Team: "ABCDE12345"})
	if err == nil {
		err = codesign.WriteBeside(signed, sig)
	}
	if err != nil {
		t.Fatal(err)
	}

	if o, _ := runSignedClient(t, srv, signed); !o.Replied {
		t.Errorf("signed client refused: %s", o.Err)
	}
	o, pid := runSignedClient(t, srv, unsigned)
	if o.Replied || !o.Invalid || !o.PeerRequirement || o.Code != xpc.ReasonRequirementFailed || o.Rule != "identifier org.example.client" {
		t.Errorf("unsigned client: %+v; want refused with ErrInvalid, ErrPeerRequirement and the identifier clause", o)
	}
	for _, want := range []string{fmt.Sprintf("pid %d ", pid), "exe " + unsigned + " "} {
		if !strings.Contains(o.Peer+" ", want) {
			t.Errorf("unsigned client: the reason's peer %q does not say %q", o.Peer, want)
		}
	}
	if !strings.Contains(o.Err, codesign.ErrUnsigned.Error()) {
		t.Errorf("unsigned client: %q does not say %q", o.Err, codesign.ErrUnsigned)
	}
}

// copyTestBinary copies the test binary to path, mode 0755.
func copyTestBinary(t *testing.T, path string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// runSignedClient runs exe as TestHelperSignedClient against srv and
// returns what it printed, and its pid.
func runSignedClient(t *testing.T, srv *xpctest.Server, exe string) (signedClientOutcome, int) {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestHelperSignedClient$")
	gorace := quickExit
	if v := os.Getenv("GORACE"); v != "" {
		gorace = v + " " + quickExit
	}
	cmd.Env = append(os.Environ(), srv.Env(), "XPCTEST_SIGNED_CLIENT=1", "GORACE="+gorace)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", exe, err)
	}
	var o signedClientOutcome
	if err := json.Unmarshal(out, &o); err != nil {
		t.Fatalf("%s said %q: %v", exe, out, err)
	}
	return o, cmd.Process.Pid
}
