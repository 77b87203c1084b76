package xpcd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// A user who owns a range of subordinate uids can connect from a user
// namespace as any of them, none with an account, and each gets a user
// domain of its own on first bootstrap. The per-user limits of jobs and
// activities count by bucket, as every per-user limit does: all those
// uids together may load maxJobsPerUserDomain jobs and hold
// maxActivitiesPerUserDomain activities, not that many each.
func TestDomainLimitsPerBucket(t *testing.T) {
	t.Parallel()
	h := newSystemHarness(t)
	h.start()
	h.d.sup.buckets.setLookup(func(uid uint32) bool { return uid < 2000 })
	os.Chmod(h.dir, 0o755)
	os.Chmod(filepath.Dir(h.dir), 0o755)
	conns := map[uint32]*xpc.Connection{}
	load := func(uid uint32, label string, extra map[string]any) error {
		dir := filepath.Join(h.dir, fmt.Sprint("plists-", uid))
		if _, err := os.Stat(dir); err != nil {
			mkdirMode(t, dir, 0o755, uid, uid)
		}
		p := h.writePlist(testJob{label: label, extra: extra}, dir)
		os.Chown(p, int(uid), int(uid))
		if conns[uid] == nil {
			conns[uid] = dialAs(t, h, uid)
		}
		_, err := conns[uid].SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpBootstrap,
			bootstrap.KeyDomain, UserDomain(uid), bootstrap.KeyPath, p))
		return err
	}
	acts := map[string]any{}
	for k := range maxActivitiesPerJob {
		acts[fmt.Sprintf("a%d", k)] = map[string]any{"Interval": 3600, "Repeating": true}
	}
	withActs := map[string]any{"LaunchEvents": map[string]any{"com.apple.xpc.activity": acts}}
	perUID := maxActivitiesPerUserDomain/maxActivitiesPerJob + 1
	for _, uid := range []uint32{60001, 60002} {
		for i := range perUID {
			if err := load(uid, fmt.Sprintf("test.sub.%d.%d", uid, i), withActs); err != nil {
				t.Fatalf("uid %d, job %d: %v", uid, i, err)
			}
		}
	}
	total := 0
	h.d.sup.call(testCtx(t), func() {
		for _, d := range h.d.sup.domains {
			for _, j := range d.jobs {
				total += len(j.acts)
			}
		}
	})
	if total > maxActivitiesPerUserDomain {
		t.Errorf("two uids without an account hold %d activities, more than the %d of one user", total, maxActivitiesPerUserDomain)
	}

	// Jobs: past maxJobsPerUserDomain over both, the next is refused.
	loaded := 2 * perUID
	var err error
	for i := 0; loaded <= maxJobsPerUserDomain && err == nil; i++ {
		if err = load(60001, fmt.Sprintf("test.sub.more.%d", i), nil); err == nil {
			loaded++
		}
	}
	if loaded != maxJobsPerUserDomain {
		t.Errorf("two uids without an account loaded %d jobs, want %d (%v)", loaded, maxJobsPerUserDomain, err)
	}
	wantRule(t, "a job past the bucket's limit", err, bootstrap.RuleJobLimit)
	if !strings.Contains(err.Error(), "uids without an account") {
		t.Errorf("the refusal does not say whose limit: %v", err)
	}
	// A user with an account has their own.
	if err := load(1500, "test.sub.own", nil); err != nil {
		t.Errorf("another user's job: %v", err)
	}
}
