package xpcd

import (
	"fmt"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// A post of a system name a grant allows checks the poster against the
// grant's requirement, which holds the poster's descriptors and may hash
// its executable: such checks count with lookups' (check-limit), so a user
// cannot run more of them at once by posting over many connections than
// by looking up. Past the limit the post is refused as busy, and posts
// nothing; once checks end, it goes through.
func TestNotifyGrantChecksLimited(t *testing.T) {
	t.Parallel()
	h := newSystemHarness(t)
	h.start()
	knownUIDs(h)
	const uid = 1001
	grantJob(t, h, DomainSystem, "test.grant.checks", "com.example.checked", fmt.Sprintf("uid %d", uid))
	var srv *server
	for _, c := range h.d.comp {
		if s, ok := c.(*server); ok {
			srv = s
		}
	}
	if srv == nil {
		t.Fatal("no bootstrap server")
	}
	c := dialAs(t, h, uid)
	mustNotify(t, c, bootstrap.OpNotifyPost, "com.example.checked", bootstrap.KeyNotifyState, uint64(1))
	for range maxChecksPerUser {
		if re := srv.checks.take(uid); re != nil {
			t.Fatal(re)
		}
	}
	_, err := notifyReq(t, c, bootstrap.OpNotifyPost, "com.example.checked", bootstrap.KeyNotifyState, uint64(2))
	wantRule(t, "a granted post with the user's checks all under way", err, bootstrap.RuleCheckLimit)
	if reasonOf(err) != bootstrap.ReasonBusy {
		t.Errorf("refused with reason %q, want %q", reasonOf(err), bootstrap.ReasonBusy)
	}
	if st, _ := mustNotify(t, h.dial(nil), bootstrap.OpNotifyGet, "com.example.checked").Uint64(bootstrap.KeyNotifyState); st != 1 {
		t.Errorf("the refused post changed the state to %d", st)
	}
	// The user's own names need no check.
	mustNotify(t, c, bootstrap.OpNotifyPost, fmt.Sprintf("user.uid.%d.x", uid))
	for range maxChecksPerUser {
		srv.checks.release(uid)
	}
	mustNotify(t, c, bootstrap.OpNotifyPost, "com.example.checked", bootstrap.KeyNotifyState, uint64(3))
}
