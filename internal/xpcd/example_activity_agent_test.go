package xpcd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// examples/activity-agent, built from its source, runs from its own plist
// with no client ever connecting: a post of the notification its plist
// names launches it and reaches its handler, and its declared repeating
// activity runs again and again, the agent exiting for idleness between
// runs and xpcd launching it again.
func TestActivityAgentExample(t *testing.T) {
	h, _ := newActHarness(t)
	bin := buildPackages(t, filepath.Join(h.dir, "bin"), "github.com/goxpc/xpc/examples/activity-agent")
	plist, err := os.ReadFile(filepath.Join("..", "..", "examples", "activity-agent", "org.goxpc.example.activity.plist"))
	if err != nil {
		t.Fatal(err)
	}
	const placeholder, idle = "/usr/local/libexec/goxpc/activity-agent", "<key>XPCIdleExitTimeout</key>"
	if !strings.Contains(string(plist), placeholder) || !strings.Contains(string(plist), idle) {
		t.Fatalf("the example's plist names neither %s nor %s", placeholder, idle)
	}
	stderr := filepath.Join(h.dir, "agent.err")
	s := strings.Replace(string(plist), placeholder, filepath.Join(bin, "activity-agent"), 1)
	s = strings.Replace(s, idle, "<key>StandardErrorPath</key><string>"+stderr+"</string>"+idle, 1)
	if err := os.WriteFile(filepath.Join(h.paths.Agents, "org.goxpc.example.activity.plist"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	const label = "org.goxpc.example.activity"
	logged := func(what string) int {
		b, _ := os.ReadFile(stderr)
		return strings.Count(string(b), what)
	}

	h.mustAdmin(bootstrap.OpNotifyPost, bootstrap.KeyName, "org.goxpc.example.config-changed", bootstrap.KeyNotifyState, uint64(7))
	waitFor(t, "the agent's event handler", func() bool {
		return logged("notification=org.goxpc.example.config-changed state=7") == 1
	})
	waitFor(t, "two runs of the activity, and the agent launched again", func() bool {
		return logged("activity run id=org.goxpc.example.activity.tick") >= 2 && intOf(h.print(label), bootstrap.KeyRuns) >= 2
	})
	d := h.print(label)
	ev, _ := d.Get("launch_events").(*xpc.Dictionary)
	notify, _ := ev.Get("com.apple.notifyd.matching").(*xpc.Dictionary)
	if notify == nil || intOf(notify, "pending") != 0 {
		t.Errorf("launch_events after the event: %s", xpc.Format(ev))
	}
	if logged("notification=") != 1 || logged("activity-agent failed") != 0 {
		b, _ := os.ReadFile(stderr)
		t.Errorf("the agent's log:\n%s", b)
	}
}
