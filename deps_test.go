package xpc

import (
	"os"
	"strings"
	"testing"
)

// TestDeps keeps the main module's dependencies to the few chosen for the
// job. Comparison libraries belong in bench/go.mod; anything else needs a
// reason in the commit that adds it, and an entry here.
func TestDeps(t *testing.T) {
	allowed := map[string]string{
		"golang.org/x/sys":          "the syscalls: SCM_RIGHTS, pidfds, memfd, inotify",
		"howett.net/plist":          "property lists (launchd.plist, Info.plist)",
		"go.uber.org/goleak":        "goroutine leak checks, in tests only",
		"aead.dev/minisign":         "executable signatures in the minisign format (codesign)",
		"golang.org/x/crypto":       "BLAKE2b, scrypt and ed25519 for aead.dev/minisign",
		"github.com/godbus/dbus/v5": "logind, NetworkManager and PolicyKit, which speak only D-Bus (internal/criteria, internal/polkit)",
	}
	data, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	inBlock := false
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "require ("):
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimPrefix(line, "require ")
		case !inBlock:
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if _, ok := allowed[fields[0]]; !ok {
			t.Errorf("go.mod requires %s, which is not one of the main module's chosen dependencies", fields[0])
		}
	}
}
