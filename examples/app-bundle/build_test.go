// Package appbundle_test checks that build.sh makes a bundle that
// package bundle reads.
package appbundle_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/goxpc/xpc/bundle"
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
	s := b.Service("org.goxpc.example.app.helper")
	if b.Identifier != "org.goxpc.example.app" || b.Executable != filepath.Join(root, "bin", "app") || len(b.Services) != 1 || s == nil ||
		s.Type != bundle.Application || s.IdleExitTimeout.Seconds() != 10 {
		t.Fatalf("%+v %+v", b, s)
	}
	for _, exe := range []string{b.Executable, s.Executable} {
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
}
