// Package appbundle_test checks that build.sh makes a bundle that
// package bundle reads.
package appbundle_test

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"

	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

func TestBuildReads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two programs")
	}
	out := t.TempDir()
	cmd := exec.Command("./build.sh", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, b)
	}
	root := filepath.Join(out, "Example.app")
	b, err := bundle.Read(root)
	if err != nil {
		t.Fatal(err)
	}
	svc := b.Service("org.goxpc.example.app.helper")
	if b.Identifier != "org.goxpc.example.app" || b.Executable != filepath.Join(root, "bin", "app") || len(b.Services) != 1 || svc == nil ||
		svc.Type != bundle.Application || svc.IdleExitTimeout.Seconds() != 10 {
		t.Fatalf("%+v %+v", b, svc)
	}
	for _, exe := range []string{b.Executable, svc.Executable} {
		if r, err := bundle.Find(exe); err != nil || r != root {
			t.Errorf("Find(%s) = %q, %v", exe, r, err)
		}
	}
	// Running it needs the pid domain: without xpcd, the app says it
	// cannot reach its service, with status 2.
	app := exec.Command(b.Executable, "hi")
	app.Env = []string{"XPCD_ROOT=" + t.TempDir()}
	if err := app.Run(); err == nil {
		t.Error("the app reached a service with no xpcd")
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("app: %v, want exit status 2", err)
	}
	// With an xpcd, the app's pid domain has its service.
	s := xpctest.NewServer(t)
	app = exec.Command(b.Executable, "hi")
	app.Env = []string{bootstrap.RootEnv + "=" + s.Root}
	if out, err := app.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "HI (from org.goxpc.example.app.helper, pid ") {
		t.Errorf("app with an xpcd: %v\n%s", err, out)
	}
	// With -wait it stays, its instance running in its pid domain, until
	// SIGTERM: what APPS.md's "Building one" looks at with xpcctl print.
	app = exec.Command(b.Executable, "-wait", "1m", "hi")
	app.Env = []string{bootstrap.RootEnv + "=" + s.Root}
	stdout, err := app.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	defer app.Process.Kill()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if !strings.HasPrefix(line, "HI (from org.goxpc.example.app.helper, pid ") {
		t.Fatalf("app -wait: %q", line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := s.Admin(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpPrint, bootstrap.KeyTarget, fmt.Sprintf("pid/%d", app.Process.Pid)))
	if err != nil {
		t.Fatal(err)
	}
	if inst, _ := p.Get(bootstrap.KeyInstances).(xpc.Array); len(inst) != 1 {
		t.Errorf("print pid/%d while the app waits: %s", app.Process.Pid, xpc.Format(p))
	}
	if err := app.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := app.Wait(); err != nil {
		t.Errorf("app -wait after SIGTERM: %v, want exit status 0", err)
	}
}
