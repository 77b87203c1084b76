package xpcd

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// listed returns the labels list shows, and the files of its load errors.
func (h *harness) listed() (labels, errFiles []string) {
	h.t.Helper()
	r := h.mustAdmin(bootstrap.OpList)
	jobs, _ := r.Array(bootstrap.KeyJobs)
	for _, o := range jobs {
		labels = append(labels, strOf(o.(*xpc.Dictionary), bootstrap.KeyLabel))
	}
	errs, _ := r.Array(bootstrap.KeyErrors)
	for _, o := range errs {
		errFiles = append(errFiles, strOf(o.(*xpc.Dictionary), bootstrap.KeyFile))
	}
	return labels, errFiles
}

func (h *harness) notLoaded(label string) bool {
	h.t.Helper()
	_, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, h.target(label))
	return reasonOf(err) == bootstrap.ReasonNotFound
}

// A job loaded from the domain's directory whose plist is deleted, and
// that does not run, is unloaded; the load error of a deleted plist goes
// from list. A job bootstrapped from elsewhere keeps launchd's meaning,
// and a plist replaced by a rename over it is not a deletion.
func TestDeletedPlistForgotten(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	idle := h.writePlist(testJob{label: "test.del.idle", names: []string{"test.del.idle.svc"}})
	kept := h.writePlist(testJob{label: "test.del.kept", names: []string{"test.del.kept.svc"}})
	bad := filepath.Join(h.paths.Agents, "bad.plist")
	if err := os.WriteFile(bad, []byte("<plist><dict><key>Label</key></dict></plist>"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	other := filepath.Join(h.dir, "elsewhere")
	os.Mkdir(other, 0o755)
	away := h.writePlist(testJob{label: "test.del.away"}, other)
	h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, away)
	if _, errs := h.listed(); len(errs) != 1 || errs[0] != bad {
		t.Fatalf("load errors before: %v", errs)
	}

	// Replaced, as an editor or a package manager does it.
	tmp := filepath.Join(h.paths.Agents, ".test.del.kept.tmp")
	if err := os.WriteFile(tmp, h.plist(testJob{label: "test.del.kept", names: []string{"test.del.kept.svc"}}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, kept); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{away, idle, bad} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the job of the deleted plist to be unloaded", func() bool { return h.notLoaded("test.del.idle") })
	if _, err := h.lookup("test.del.idle.svc"); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("lookup of a forgotten job's name: %v", err)
	}
	waitFor(t, "the deleted plist's load error to go", func() bool { _, errs := h.listed(); return len(errs) == 0 })
	labels, _ := h.listed()
	if strings.Join(labels, " ") != "test.del.away test.del.kept" {
		t.Errorf("list after the deletions: %v", labels)
	}
	for _, l := range []string{"test.del.away", "test.del.kept"} {
		if d := h.print(l); d.Get(bootstrap.KeyPlistDeleted) != nil {
			t.Errorf("%s is marked: %s", l, xpc.Format(d))
		}
	}
	ping(t, h.mustLookup("test.del.kept.svc"))
}

// A running job whose plist is deleted keeps serving the clients it has,
// is marked in list, print and blame, is not launched again (KeepAlive,
// lookups, kickstart), and is unloaded when it exits.
func TestDeletedPlistRunningJob(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.writePlist(testJob{label: "test.del.run", names: []string{"test.del.run.svc"}, extra: map[string]any{"KeepAlive": true}})
	h.start()
	c := h.mustLookup("test.del.run.svc")
	pid := ping(t, c)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var d *xpc.Dictionary
	waitFor(t, "the job to be marked", func() bool {
		d = h.print("test.del.run")
		return d.Get(bootstrap.KeyPlistDeleted) == xpc.Bool(true)
	})
	if strOf(d, bootstrap.KeyState) != "running" || intOf(d, bootstrap.KeyPID) != pid {
		t.Errorf("marked job: %s", xpc.Format(d))
	}
	jobs, _ := h.mustAdmin(bootstrap.OpList).Array(bootstrap.KeyJobs)
	if len(jobs) != 1 || jobs[0].(*xpc.Dictionary).Get(bootstrap.KeyPlistDeleted) != xpc.Bool(true) {
		t.Errorf("list does not mark it: %s", xpc.Format(jobs))
	}
	why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("test.del.run")), bootstrap.KeyWhy)
	if !strings.Contains(why, path+" was deleted") {
		t.Errorf("blame: %q", why)
	}
	if got := ping(t, c); got != pid {
		t.Errorf("the client it has: served by pid %d, want %d", got, pid)
	}
	if _, err := h.lookup("test.del.run.svc"); reasonOf(err) != bootstrap.ReasonNotFound || !strings.Contains(err.Error(), "was deleted") {
		t.Errorf("a new lookup: %v", err)
	}
	_, err := h.admin(bootstrap.OpKickstart, bootstrap.KeyTarget, h.target("test.del.run"), bootstrap.KeyKill, true)
	if reasonOf(err) != bootstrap.ReasonDraining {
		t.Errorf("kickstart -k: %v", err)
	}
	h.mustAdmin(bootstrap.OpKill, bootstrap.KeyTarget, h.target("test.del.run"), bootstrap.KeySignal, int64(syscall.SIGKILL))
	waitFor(t, "the job to be unloaded when it exits", func() bool { return h.notLoaded("test.del.run") })
	if labels, _ := h.listed(); len(labels) != 0 {
		t.Errorf("list after it exited: %v", labels)
	}
	if err := h.d.sup.call(testCtx(t), func() {
		if n := len(h.d.sup.byPID); n != 0 {
			t.Errorf("%d instances after the unload: KeepAlive relaunched it", n)
		}
	}); err != nil {
		t.Fatal(err)
	}
}

// A plist put back while its job still runs reloads it, as bootstrap
// does: the same contents keep the instance, other contents upgrade it.
func TestDeletedPlistPutBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	j := testJob{label: "test.del.back", names: []string{"test.del.back.svc"}}
	path := h.writePlist(j)
	h.start()
	pid := ping(t, h.mustLookup("test.del.back.svc"))
	marked := func() bool { return h.print("test.del.back").Get(bootstrap.KeyPlistDeleted) == xpc.Bool(true) }

	os.Remove(path)
	waitFor(t, "the job to be marked", marked)
	h.writePlist(j)
	waitFor(t, "the mark to go", func() bool { return !marked() })
	d := h.print("test.del.back")
	if intOf(d, bootstrap.KeyPID) != pid || d.Get("upgrade_pending") != nil {
		t.Errorf("put back unchanged: %s", xpc.Format(d))
	}
	if got := ping(t, h.mustLookup("test.del.back.svc")); got != pid {
		t.Errorf("a lookup after the plist came back: pid %d, want %d", got, pid)
	}

	os.Remove(path)
	waitFor(t, "the job to be marked again", marked)
	j.env = map[string]string{"V": "2"}
	h.writePlist(j)
	waitFor(t, "the mark to go again", func() bool { return !marked() })
	h.waitState("test.del.back", "waiting") // drained for the upgrade
	c := h.mustLookup("test.del.back.svc")
	if r, _ := call(t, c, "env", "key", "V"); strOf(r, "value") != "2" {
		t.Errorf("the plist put back with other contents is not in use: %s", xpc.Format(r))
	}

	// bootstrap of the job again, from elsewhere, reloads it too.
	os.Remove(path)
	waitFor(t, "the job to be marked a third time", marked)
	other := filepath.Join(h.dir, "elsewhere")
	os.Mkdir(other, 0o755)
	r := h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, h.writePlist(j, other))
	if strOf(r, bootstrap.KeyStatus) != "already loaded" || marked() {
		t.Errorf("bootstrap of a marked job: %s; print: %s", xpc.Format(r), xpc.Format(h.print("test.del.back")))
	}
}

// A plist put back at a marked job's path with another Label does not
// reload the job as that label (labels are unique in a domain, and the
// job is known by its own): the job stays marked.
func TestDeletedPlistPutBackOtherLabel(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	path := h.writePlist(testJob{label: "test.del.mine", names: []string{"test.del.mine.svc"}})
	h.start()
	ping(t, h.mustLookup("test.del.mine.svc"))
	marked := func() bool { return h.print("test.del.mine").Get(bootstrap.KeyPlistDeleted) == xpc.Bool(true) }
	os.Remove(path)
	waitFor(t, "the job to be marked", marked)
	other := h.plist(testJob{label: "test.del.theirs", names: []string{"test.del.theirs.svc"}})
	if err := os.WriteFile(path, other, 0o644); err != nil {
		t.Fatal(err)
	}
	// Time for several looks.
	time.Sleep(10 * plistDebounce)
	d := h.print("test.del.mine")
	if got := strOf(d, bootstrap.KeyLabel); got != "test.del.mine" || !marked() {
		t.Errorf("after a plist of another label was put back: %s", xpc.Format(d))
	}
	if _, err := h.lookup("test.del.theirs.svc"); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("lookup of the other plist's name: %v", err)
	}
}
