package xpcd

import (
	"strings"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// Requirement checks in progress are bounded per user and for all users
// but root together; a lookup past a bound is refused at once (busy,
// check-limit), and a finished check makes room again.
func TestCheckLimiter(t *testing.T) {
	var l checkLimiter
	busy := func(oe *opError) bool {
		rule, _ := oe.extra.String(bootstrap.KeyRule)
		return oe != nil && oe.reason == bootstrap.ReasonBusy && rule == bootstrap.RuleCheckLimit
	}
	for i := range maxChecksPerUser {
		if oe := l.acquire(1000, "a.b"); oe != nil {
			t.Fatalf("check %d of user 1000: %v", i, oe)
		}
	}
	if oe := l.acquire(1000, "a.b"); oe == nil || !busy(oe) {
		t.Fatalf("one more check of user 1000: %v, want busy (check-limit)", oe)
	}
	l.release(1000)
	if oe := l.acquire(1000, "a.b"); oe != nil {
		t.Fatalf("after a check ended: %v", oe)
	}
	// Other users fill the rest of the shared bound.
	for u := uint32(2000); l.nonRoot < maxChecks; u++ {
		if oe := l.acquire(u, "a.b"); oe != nil {
			t.Fatalf("user %d with the shared bound not reached: %v", u, oe)
		}
	}
	if oe := l.acquire(9999, "a.b"); oe == nil || !busy(oe) {
		t.Fatalf("a new user past the shared bound: %v, want busy (check-limit)", oe)
	}
	if oe := l.acquire(0, "a.b"); oe != nil {
		t.Fatalf("root: %v, want no bound", oe)
	}
	l.release(0)
	if l.nonRoot != maxChecks {
		t.Fatalf("root's check counted: %d", l.nonRoot)
	}
}

// exit-reason refuses a name that is not a service name, without echoing
// it.
func TestExitReasonBadName(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start()
	long := strings.Repeat("x", 30000)
	_, err := h.admin(bootstrap.OpExitReason, bootstrap.KeyName, long, bootstrap.KeyPID, int64(1))
	if reasonOf(err) != bootstrap.ReasonBadRequest || strings.Contains(err.Error(), "xxxxxxxx") {
		t.Fatalf("exit-reason of a 30,000-byte name: %v", err)
	}
}
