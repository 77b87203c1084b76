package xpcd

import (
	"fmt"
	"strings"
	"testing"
)

// An xpcd given no criteria sources reads the machine's own: an activity
// that requires the user to be idle waits, and print names the source that
// answered (logind, or its absence), never the stand-in that answers before
// the sources start.
func TestMachineCriteria(t *testing.T) {
	h := newHarness(t)
	if h.cfg.Criteria != nil {
		t.Fatal("the harness gives criteria sources")
	}
	h.writePlist(h.actJob("act.idle", map[string]any{"idle": map[string]any{"Delay": 1, "Priority": "Utility", "AllowBattery": true, "RequireUserIdle": true, "RequireNetworkConnectivity": true}}, nil))
	h.start()
	waitFor(t, "the criteria read", func() bool {
		return strOf(h.actPrint("act.idle", "idle"), "waiting_for") == "criteria"
	})
	p := h.actPrint("act.idle", "idle")
	unmet, _ := p.Array("unmet")
	all := fmt.Sprint(unmet)
	if strings.Contains(all, "not running") || strings.Contains(all, "fake") {
		t.Fatalf("unmet %v: not the machine's sources", unmet)
	}
	// Where logind does not run (or no session is idle), RequireUserIdle
	// is unmet, and says which source answered.
	if strings.Contains(all, "RequireUserIdle") && !strings.Contains(all, "logind") {
		t.Errorf("unmet %v: want RequireUserIdle answered by logind", unmet)
	}
}
