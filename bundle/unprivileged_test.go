package bundle_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bundletest"
)

// readAsEnv makes the test binary a helper that Reads and Finds the
// bundle it names, as whoever runs it, and prints what it got as JSON.
const readAsEnv = "BUNDLE_TEST_READ_AS"

type readResult struct {
	Identifier, Found string
	Err               string
	Permission        bool
}

func init() {
	dir := os.Getenv(readAsEnv)
	if dir == "" {
		return
	}
	var r readResult
	b, err := bundle.Read(dir)
	if err == nil {
		r.Identifier = b.Identifier
		r.Found, err = bundle.Find(b.Executable)
	}
	if err != nil {
		r.Err, r.Permission = err.Error(), errors.Is(err, fs.ErrPermission)
	}
	json.NewEncoder(os.Stdout).Encode(r)
	os.Exit(0)
}

// TestReadUnprivileged: Read and Find need no privilege: an ordinary user
// reads their own bundle, and cannot read through Read what their rights
// do not let them read.
func TestReadUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as nobody")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	top, err := os.MkdirTemp("", "bundle-unpriv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	os.Chmod(top, 0o755)
	// The test binary, where nobody can run it.
	self := filepath.Join(top, "bundle.test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(self, data, 0o755); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	readAs := func(dir string) readResult {
		t.Helper()
		cmd := exec.Command(self)
		cmd.Env = []string{readAsEnv + "=" + dir}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helper: %v", err)
		}
		var r readResult
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("helper said %q: %v", out, err)
		}
		return r
	}

	own := bundletest.Make(t, top, bundletest.Spec{Identifier: "org.example.own", Layout: bundle.Contents, Services: []bundletest.ServiceSpec{{Name: "S"}}})
	bundletest.Chown(t, own, nobody, nobody)
	if r := readAs(own); r.Err != "" || r.Identifier != "org.example.own" || r.Found != own {
		t.Errorf("own bundle: %+v", r)
	}

	private := bundletest.Make(t, top, bundletest.Spec{Identifier: "org.example.private"})
	os.Chmod(filepath.Join(private, "Info.plist"), 0o600)
	if r := readAs(private); !r.Permission {
		t.Errorf("root's private Info.plist: %+v, want a permission error", r)
	}
	if _, err := bundle.Read(private); err != nil {
		t.Errorf("root reads it: %v", err)
	}
}
