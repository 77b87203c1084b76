package xpcd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// examples/progress-agent and its client, built from their source: the
// client's call launches the agent from its own plist, the agent's progress
// reports reach the client through the callback it passed, one per step and
// in order, before the result; a job the agent refuses fails the client
// with status 1 and no report.
func TestProgressAgentExample(t *testing.T) {
	h := newHarness(t)
	bin := buildPackages(t, filepath.Join(h.dir, "bin"),
		"github.com/goxpc/xpc/examples/progress-agent", "github.com/goxpc/xpc/examples/progress-agent/client")
	plist, err := os.ReadFile(filepath.Join("..", "..", "examples", "progress-agent", "org.goxpc.example.progress.plist"))
	if err != nil {
		t.Fatal(err)
	}
	const placeholder = "/usr/local/libexec/goxpc/progress-agent"
	if !strings.Contains(string(plist), placeholder) {
		t.Fatalf("the example's plist does not name %s", placeholder)
	}
	s := strings.Replace(string(plist), placeholder, filepath.Join(bin, "progress-agent"), 1)
	if err := os.WriteFile(filepath.Join(h.paths.Agents, "org.goxpc.example.progress.plist"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	client := filepath.Join(bin, "client")

	out, errOut, code := runAs(t, 0, 0, h.dir, nil, client, "-steps", "4", "-step-ms", "20")
	if code != 0 {
		t.Fatalf("client: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("client printed %d lines, want 4 reports and the result:\n%s", len(lines), out)
	}
	for i, l := range lines[:4] {
		if want := fmt.Sprintf("progress %d/4", i+1); l != want {
			t.Errorf("line %d: %q, want %q", i+1, l, want)
		}
	}
	pid := intOf(h.print("org.goxpc.example.progress"), "pid")
	if want := fmt.Sprintf("result: 4 steps, sum of squares 30 (agent pid %d)", pid); lines[4] != want {
		t.Errorf("result line %q, want %q", lines[4], want)
	}

	out, errOut, code = runAs(t, 0, 0, h.dir, nil, client, "-steps", "100000")
	if code != 1 || out != "" || !strings.Contains(errOut, "a job is 1 to") {
		t.Errorf("a refused job: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
