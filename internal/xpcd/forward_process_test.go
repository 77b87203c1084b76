package xpcd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// TestForwardingDaemon is a --user xpcd in a process of its own, for the
// forwarding tests: with XPCD_FWD_ROOT (its directory) and XPCD_FWD_SYSTEM
// (the system instance's socket) set, it serves until its standard input
// ends.
func TestForwardingDaemon(t *testing.T) {
	root := os.Getenv("XPCD_FWD_ROOT")
	if root == "" {
		t.Skip("not a test: the --user xpcd the forwarding tests run")
	}
	d, err := New(Config{Paths: bootstrap.ForRoot(root, true), SystemSocket: os.Getenv("XPCD_FWD_SYSTEM"),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})), PressureInterval: -1, UpgradeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// startUserXpcd runs TestForwardingDaemon from the executable exe, passing
// lookups on to sys, and returns its socket. It stops when the test ends.
func startUserXpcd(t *testing.T, exe, sys string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "xpcd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	paths := bootstrap.ForRoot(dir, true)
	if err := os.MkdirAll(paths.Agents, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestForwardingDaemon$", "-test.count=1")
	cmd.Env = append(os.Environ(), "XPCD_TEST_HELPER=1", "XPCD_FWD_ROOT="+dir, "XPCD_FWD_SYSTEM="+sys)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("the user's xpcd: %v", err)
		}
		if t.Failed() {
			t.Logf("the user's xpcd's log:\n%s", logs)
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if sc.Text() == "ready" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("the user's xpcd did not start:\n%s", logs)
		}
	case <-time.After(testTimeout):
		t.Fatalf("the user's xpcd did not start in time:\n%s", logs)
	}
	return paths.Socket
}

// A --user xpcd in a process of its own passes a lookup on to the system
// instance with its client's socket, which it did not make: the system
// instance accepts it, because the requester runs its own executable and
// has the client's uid, and judges the client: it is the requester the
// system instance records, its identity a requirement is checked against.
// The same from an xpcd running another executable (a copy) is refused by
// rule socket-creator, and the client is told so.
func TestLookupForwardedByAnotherProcess(t *testing.T) {
	t.Parallel()
	sys := newSystemHarness(t)
	sys.writePlist(sys.reqJob("test.fp", map[string]string{"test.fp.svc": "", "test.fp.none.svc": fmt.Sprintf("uid %d", os.Geteuid()+1)}, ""),
		sys.paths.Daemons)
	sys.start()
	usr := startUserXpcd(t, sys.exe, sys.paths.Socket)

	if _, err := connectOnce(t, "test.fp.svc", xpc.WithBootstrapSocket(usr)); err != nil {
		t.Fatalf("a system daemon through the user's xpcd: %v", err)
	}
	// (A --user instance serves no system domain: a lookup naming it
	// goes on too.)
	if _, err := connectOnce(t, "test.fp.svc", xpc.WithBootstrapSocket(usr), xpc.WithDomain(DomainSystem)); err != nil {
		t.Errorf("a system daemon in the system domain, through the user's xpcd: %v", err)
	}
	if pid := intOf(sys.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, "system/test.fp"), "requester_pid"); pid != os.Getpid() {
		t.Errorf("the system instance's requester pid %d, want the client's, %d", pid, os.Getpid())
	}
	_, err := connectOnce(t, "test.fp.none.svc", xpc.WithBootstrapSocket(usr))
	var ce *xpc.ConnError
	if !errors.Is(err, xpc.ErrPeerRequirement) || !errors.As(err, &ce) || !strings.Contains(ce.Reason.Peer, fmt.Sprintf("pid %d ", os.Getpid())) {
		t.Errorf("a name whose requirement the client fails, through the user's xpcd: %v (want the client judged)", err)
	}

	copied := filepath.Join(sys.dir, "other-xpcd")
	copyFile(t, sys.exe, copied)
	other := startUserXpcd(t, copied, sys.paths.Socket)
	_, err = connectOnce(t, "test.fp.svc", xpc.WithBootstrapSocket(other))
	if !errors.Is(err, xpc.ErrInvalid) || !errors.Is(err, xpc.ErrDenied) || !errors.As(err, &ce) || ce.Reason.Rule != bootstrap.RuleSocketCreator {
		t.Errorf("through an xpcd running another executable: %v, want denied by rule %s", err, bootstrap.RuleSocketCreator)
	}
}
