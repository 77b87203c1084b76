package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlistFileProblem(t *testing.T) {
	p := filepath.Join(t.TempDir(), "job.plist")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	uid := uint32(os.Geteuid())
	check := func(owner, self uint32) string {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return PlistFileProblem(fi, owner, self)
	}
	if why := check(uid, uid); why != "" {
		t.Errorf("own file: %s", why)
	}
	fileOwner := uid
	if uid != 0 {
		if why := check(uid+1, uid+1); !strings.Contains(why, "dubious ownership") || !strings.Contains(why, RulePlistOwner) {
			t.Errorf("another's file: %q", why)
		}
	} else {
		if err := os.Chown(p, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		fileOwner = 4242
		if why := check(0, 0); !strings.Contains(why, "dubious ownership: owned by uid 4242, want root or uid 0") || !strings.Contains(why, RulePlistOwner) {
			t.Errorf("another's file: %q", why)
		}
		if why := check(4242, 0); why != "" {
			t.Errorf("the domain owner's file: %q", why)
		}
		if why := check(1, 4242); why != "" {
			t.Errorf("xpcd's own user's file: %q", why)
		}
	}
	for _, mode := range []os.FileMode{0o664, 0o646} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if why := check(fileOwner, uid); !strings.Contains(why, "dubious permissions") || !strings.Contains(why, RulePlistOwner) {
			t.Errorf("mode %v: %q", mode, why)
		}
	}
}

func TestProgramProblem(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "prog")
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ exe, want string }{
		{exe, ""},
		{filepath.Join(dir, "missing"), "does not exist; launches will fail"},
		{filepath.Join(plain, "x"), "does not exist; launches will fail"},
		{dir, "is a directory; launches will fail"},
		{"/dev/null", "is not a regular file; launches will fail"},
	} {
		if why := ProgramProblem(tc.exe); (tc.want == "") != (why == "") || !strings.Contains(why, tc.want) {
			t.Errorf("%s: %q, want %q", tc.exe, why, tc.want)
		}
	}
	// Not even root executes a file without an x bit.
	if why := ProgramProblem(plain); !strings.Contains(why, "not executable") {
		t.Errorf("%s: %q", plain, why)
	}
}
