package xpcd

import (
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// A job of a pid domain may be signaled and restarted, as launchctl does
// a pid domain's services, by the application's user and by root; another
// user does not see it. The domain itself is still xpcd's: bootout and
// the other verbs that change a domain refuse it.
func TestAppJobKillAndKickstart(t *testing.T) {
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.start()
	const svcName = "org.test.ak.helper"
	_, app := startNobodyApp(t, h, "org.test.ak", svcName, "")
	first := app.lookup(svcName)
	target := PIDDomain(app.pid) + "/" + svcName

	// Its log: the helper says "helper starting".
	waitFor(t, "the instance's first line in its log", func() bool {
		r, err := h.admin(bootstrap.OpLog, bootstrap.KeyTarget, target)
		return err == nil && strings.Contains(xpc.Format(r), "helper starting")
	})

	const other = 4242
	res := isoClient(t, in.exe, other, other, h.dir, []isoStep{
		{ID: "kill", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpKill, bootstrap.KeyTarget: target}},
		{ID: "kick", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpKickstart, bootstrap.KeyTarget: target}},
		{ID: "log", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpLog, bootstrap.KeyTarget: target}},
	})
	for _, id := range []string{"kill", "kick", "log"} {
		if r := res[id]; r.OK || r.Reason != bootstrap.ReasonNotFound {
			t.Errorf("%s of %s by another user: %+v, want not-found", id, target, r)
		}
	}
	if !runs(first) {
		t.Fatalf("the instance (pid %d) is gone after another user's requests", first)
	}

	// The application's user reads its log, and signals it: it ends.
	res = isoClient(t, in.exe, isoUserA, isoUserA, h.dir, []isoStep{
		{ID: "log", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpLog, bootstrap.KeyTarget: target}},
		{ID: "kill", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpKill, bootstrap.KeyTarget: target},
			Ints: map[string]int64{bootstrap.KeySignal: int64(syscall.SIGKILL)}},
	})
	if r := res["log"]; !r.OK {
		t.Errorf("log of %s by the application's user: %+v", target, r)
	}
	if r := res["kill"]; !r.OK {
		t.Fatalf("kill of %s by the application's user: %+v", target, r)
	}
	waitFor(t, "the killed instance to be gone", func() bool { return !runs(first) })

	// Root starts it again, and restarts it.
	r := h.mustAdmin(bootstrap.OpKickstart, bootstrap.KeyTarget, target)
	second := intOf(r, bootstrap.KeyPID)
	if strOf(r, bootstrap.KeyStatus) != "started" || second <= 0 || second == first {
		t.Fatalf("root's kickstart of %s: %s", target, xpc.Format(r))
	}
	r = h.mustAdmin(bootstrap.OpKickstart, bootstrap.KeyTarget, target, bootstrap.KeyKill, true)
	if strOf(r, bootstrap.KeyStatus) != "restarting" {
		t.Fatalf("root's kickstart -k of %s: %s", target, xpc.Format(r))
	}
	waitFor(t, "a new instance after kickstart -k", func() bool {
		p, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, target)
		return err == nil && intOf(p, bootstrap.KeyPID) > 0 && intOf(p, bootstrap.KeyPID) != second
	})
	if got := app.lookup(svcName); got == first || got == second {
		t.Errorf("the application reaches pid %d after the restart", got)
	}

	// Changing the domain stays refused.
	for _, op := range []string{bootstrap.OpBootout, bootstrap.OpEnable} {
		if _, err := h.admin(op, bootstrap.KeyTarget, target); err == nil || !strings.Contains(err.Error(), "pid or apps domain") {
			t.Errorf("%s of %s: %v, want refused (a pid or apps domain)", op, target, err)
		}
	}
	if _, err := h.admin(bootstrap.OpKill, bootstrap.KeyTarget, PIDDomain(app.pid)); err == nil || reasonOf(err) != bootstrap.ReasonBadRequest {
		t.Errorf("kill of a pid domain without a label: %v, want bad-request", err)
	}
	if _, err := h.admin(bootstrap.OpKill, bootstrap.KeyTarget, "pid/"+strconv.Itoa(app.pid)+"/org.test.ak.none"); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("kill of a job the pid domain does not have: %v, want not-found", err)
	}

	// Once the application has gone, its instances' log is its user's
	// (apps/UID/LABEL), for them and root alone.
	app.exit()
	userLog := AppsDomain(isoUserA) + "/" + svcName
	if r, err := h.admin(bootstrap.OpLog, bootstrap.KeyTarget, userLog); err != nil || !strings.Contains(xpc.Format(r), "helper starting") {
		t.Errorf("root's log of %s after the application exited: %v, %v", userLog, err, r)
	}
	res = isoClient(t, in.exe, other, other, h.dir, []isoStep{
		{ID: "log", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpLog, bootstrap.KeyTarget: userLog}},
	})
	if r := res["log"]; r.OK || !strings.Contains(r.Error, bootstrap.RuleLogAccess) {
		t.Errorf("another user's log of %s: %+v, want refused by %s", userLog, r, bootstrap.RuleLogAccess)
	}
}
