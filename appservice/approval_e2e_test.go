package appservice_test

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
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/appservice"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/bundletest"
	"github.com/goxpc/xpc/internal/xpcd"
)

// helperEnv makes the test binary TestHelperDaemonWatch's application.
const helperEnv = "APPSERVICE_TEST_APP"

// TestHelperDaemonWatch is the application of TestDaemonApprovalWatched,
// run as another user: it registers its bundle's daemon, then prints each
// status Watch gives until enabled.
func TestHelperDaemonWatch(t *testing.T) {
	root := os.Getenv(helperEnv)
	if root == "" {
		t.Skip("a helper: run by TestDaemonApprovalWatched")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := appservice.Daemon(root, "org.example.e2e.daemon.plist")
	if err := d.Register(ctx); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for st, err := range d.Watch(ctx) {
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("status", st)
		if st == appservice.Enabled {
			os.Exit(0)
		}
	}
	os.Exit(1)
}

// A user's application registers its daemon through this package against
// a root xpcd: it waits for approval, an administrator approves it, and
// the application's Watch sees it enabled.
func TestDaemonApprovalWatched(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to run the application as another user")
	}
	dir, err := os.MkdirTemp("", "appsvc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	paths := bootstrap.ForRoot(dir, false)
	for _, d := range []string{dir, paths.Daemons, paths.Agents, filepath.Join(dir, "apps"), filepath.Join(dir, "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d, err := xpcd.New(xpcd.Config{Paths: paths, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PressureInterval: -1, UpgradeInterval: -1, StopServicesOnClose: true, JournalSocket: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.Close(ctx)
	})
	root := bundletest.Make(t, filepath.Join(dir, "apps"), bundletest.Spec{Identifier: "org.example.e2e",
		Daemons: []bundletest.PlistSpec{{Label: "org.example.e2e.daemon", Extra: map[string]any{"RunAtLoad": true,
			"MachServices": map[string]any{"org.example.e2e.daemon": true}}}}})
	// The test binary where the other user can run it.
	exe := filepath.Join(dir, "bin", "appservice.test")
	self, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(exe, self, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestHelperDaemonWatch$", "-test.count=1")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/", bootstrap.RootEnv + "=" + dir, helperEnv + "=" + root}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	want := func(line string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the application ended before printing %q", line)
				}
				if l == line {
					return
				}
				if strings.HasPrefix(l, "error") || strings.HasPrefix(l, "status") {
					t.Fatalf("the application printed %q, want %q", l, line)
				}
			case <-ctx.Done():
				t.Fatalf("the application did not print %q", line)
			}
		}
	}
	want("status requires-approval")

	// Meanwhile a client of the daemon's name is refused with the
	// package's ErrRequiresApproval.
	func() {
		sc, err := xpc.NewServiceConnection("org.example.e2e.daemon", xpc.WithBootstrapSocket(paths.Socket))
		if err == nil {
			defer sc.Cancel()
			sc.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
			sc.Activate()
			_, err = sc.SendWithReply(ctx, xpc.Dict("hello", "daemon"))
		}
		if !errors.Is(err, appservice.ErrRequiresApproval) {
			t.Errorf("a client of the unapproved daemon's name: %v, want appservice.ErrRequiresApproval", err)
		}
	}()

	// An administrator (root) approves it.
	c, err := xpc.DialUnix(ctx, paths.Socket)
	if err != nil {
		t.Fatal(err)
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	list, err := c.SendWithReply(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpApprovalList))
	if err != nil {
		t.Fatal(err)
	}
	approvals, _ := list.Array(bootstrap.KeyApprovals)
	if len(approvals) != 1 {
		t.Fatalf("approval list: %v", xpc.Format(list))
	}
	id, _ := approvals[0].(*xpc.Dictionary).String(bootstrap.KeyApprovalID)
	if _, err := c.SendWithReply(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpApprove, bootstrap.KeyApprovalID, id)); err != nil {
		t.Fatal(err)
	}
	want("status enabled")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the application: %v", err)
	}
}
