package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDaemonLinked keeps xpcctl a client: it speaks xpcd's protocol
// through internal/bootstrap, and links none of the daemon (its process
// management, inotify, state) for the protocol's words.
func TestNoDaemonLinked(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	out, err := exec.Command(gocmd, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "github.com/goxpc/xpc/internal/xpcd" {
			t.Errorf("xpcctl links %s; take the protocol's words from internal/bootstrap", pkg)
		}
	}
}
