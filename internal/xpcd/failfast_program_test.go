package xpcd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// warningsOf returns d's warnings, one per line.
func warningsOf(d *xpc.Dictionary) string {
	var ws []string
	a, _ := d.Get(bootstrap.KeyWarnings).(xpc.Array)
	for _, w := range a {
		if s, ok := w.(xpc.String); ok {
			ws = append(ws, string(s))
		}
	}
	return strings.Join(ws, "\n")
}

// bootstrap of a job whose program does not exist loads it, with a
// warning that print repeats while it holds: a program installed later
// clears it, one that is not executable has its own.
func TestBootstrapWarnsMissingProgram(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start()
	prog := filepath.Join(h.dir, "prog")
	dir := filepath.Join(h.dir, "plists")
	os.MkdirAll(dir, 0o755)
	path := h.writePlist(testJob{label: "test.prog", names: []string{"test.prog.svc"}, program: prog}, dir)
	r := h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, path)
	want := "program " + prog + " does not exist; launches will fail"
	if strOf(r, bootstrap.KeyStatus) != "loaded" || warningsOf(r) != want {
		t.Fatalf("bootstrap: %s, want loaded with %q", xpc.Format(r), want)
	}
	if w := warningsOf(h.print("test.prog")); w != want {
		t.Fatalf("print's warnings %q, want %q", w, want)
	}
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if w := warningsOf(h.print("test.prog")); w != "program "+prog+" is not executable by its user; launches will fail" {
		t.Fatalf("not executable: %q", w)
	}
	if err := os.Chmod(prog, 0o755); err != nil {
		t.Fatal(err)
	}
	if w := warningsOf(h.print("test.prog")); w != "" {
		t.Fatalf("after the program was installed: %q", w)
	}
}

// A root xpcd looks at a user's job's program as that user: a program in
// a directory the user cannot search cannot be checked, whether it is
// there or not (root's answer would tell the user what it holds).
func TestBootstrapProgramCheckedAsUser(t *testing.T) {
	b, in, h := startRootWithUser(t)
	private := mkdirMode(t, filepath.Join(h.dir, "private"), 0o700, 0, 0)
	there := filepath.Join(private, "there")
	rootFile(t, there, 0o755, "#!/bin/sh\n")
	dom := UserDomain(b.uid)
	var got []string
	for _, p := range []string{there, filepath.Join(private, "missing")} {
		label := "test.progas." + filepath.Base(p)
		in.load(t, dom, label, nil, map[string]any{"ProgramArguments": []any{p}})
		r := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, dom+"/"+label)
		w := strings.ReplaceAll(warningsOf(r), p, "P")
		if !strings.Contains(w, "program P cannot be checked") {
			t.Errorf("%s: warnings %q, want cannot be checked", p, w)
		}
		got = append(got, w)
	}
	if got[0] != got[1] {
		t.Errorf("a program the user cannot see and a missing one differ:\n%s\n%s", got[0], got[1])
	}
}
