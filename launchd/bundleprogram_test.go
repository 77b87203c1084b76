package launchd

import (
	"slices"
	"strings"
	"testing"
)

// TestBundleProgram: BundleProgram is read (not warned about as
// unsupported), stands in for Program, lets ProgramArguments[0] be a plain
// name, survives the canonical form, and leaves the job without an
// Executable until package bundle resolves it.
func TestBundleProgram(t *testing.T) {
	j, err := Parse(testFile, []byte(doc(labelEntry+`<key>BundleProgram</key><string>Contents/MacOS/helper</string>
<key>ProgramArguments</key><array><string>helper</string><string>-v</string></array>`)))
	if err != nil {
		t.Fatal(err)
	}
	if j.BundleProgram != "Contents/MacOS/helper" {
		t.Errorf("BundleProgram = %q", j.BundleProgram)
	}
	for _, w := range j.Warnings {
		if strings.Contains(w.Key, "BundleProgram") {
			t.Errorf("warning %v: BundleProgram is supported", w)
		}
	}
	if exe := j.Executable(); exe != "" {
		t.Errorf("Executable() = %q before resolution, want \"\" (argv[0] is not a path)", exe)
	}
	if err := j.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	again, err := FromDictionary("", j.ToDictionary())
	if err != nil || again.BundleProgram != j.BundleProgram || !again.Equal(j) {
		t.Fatalf("round trip: %+v, %v", again, err)
	}
	other := *j
	other.BundleProgram = "Contents/MacOS/other"
	if other.Fingerprint() == j.Fingerprint() {
		t.Error("changing BundleProgram does not change the fingerprint")
	}

	// Resolved, as package bundle does: Program wins.
	j.Program = "/opt/App.app/Contents/MacOS/helper"
	if exe := j.Executable(); exe != j.Program {
		t.Errorf("Executable() = %q, want %q", exe, j.Program)
	}
	if argv := j.Argv(); !slices.Equal(argv, []string{"helper", "-v"}) {
		t.Errorf("Argv() = %q", argv)
	}
	if err := j.Validate(); err != nil {
		t.Errorf("Validate resolved: %v", err)
	}

	// BundleProgram alone is enough.
	only, err := Parse(testFile, []byte(doc(labelEntry+`<key>BundleProgram</key><string>bin/app</string>`)))
	if err != nil {
		t.Fatal(err)
	}
	if only.Executable() != "" || only.Argv() != nil {
		t.Errorf("unresolved job runs %q %q", only.Executable(), only.Argv())
	}
}

func TestRelativePathProblem(t *testing.T) {
	for _, p := range []string{"app", "bin/app", "Contents/MacOS/helper", "a..b", "..a/b"} {
		if r := RelativePathProblem(p); r != "" {
			t.Errorf("%q: %s", p, r)
		}
	}
	for _, p := range []string{"", "/bin/sh", "..", "../x", "a/../../x", "a/..", "./a", "a/", "a//b", "a/./b", ".", "a\x00b", strings.Repeat("a", 4096)} {
		if r := RelativePathProblem(p); r == "" {
			t.Errorf("%q accepted", p)
		}
	}
}
