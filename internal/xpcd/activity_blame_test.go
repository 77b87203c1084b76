package xpcd

import (
	"strings"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// blame of a job whose due activity waits for its criteria says so, and
// where to read which (blame itself does not read the sources).
func TestActivityBlameNamesUnmetCriteria(t *testing.T) {
	h, _ := newActHarness(t)
	h.writePlist(h.actJob("act.net", map[string]any{"net": map[string]any{"Delay": 1, "Priority": "Utility", "RequireNetworkConnectivity": true}}, nil))
	h.start()
	waitFor(t, "the criteria read", func() bool { return strOf(h.actPrint("act.net", "net"), "waiting_for") == "criteria" })
	why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("act.net")), bootstrap.KeyWhy)
	if want := "criteria not met (xpcctl activity print " + h.target("act.net") + "/net"; !strings.Contains(why, want) {
		t.Errorf("blame: %q, want it to say %q", why, want)
	}
}
