package xpcd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// isoUserA is user A of the isolation tests, whose agent user B tries to
// reach: nobody.
const isoUserA = 65534

// isoInstance is a system-layout xpcd (a root instance under a temporary
// XPCD_ROOT, socket 0666) with the test binary copied where every user
// may run it.
type isoInstance struct {
	h   *harness
	bin string // a directory every user may read
	exe string // the test binary, in bin
}

func newIsoInstance(t *testing.T) *isoInstance {
	t.Helper()
	// The system layout, every directory on the way to the socket and
	// the programs traversable by other users.
	h := newSystemHarness(t)
	bin := filepath.Join(h.dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(bin, "xpcd.test")
	copyFile(t, h.exe, exe)
	return &isoInstance{h: h, bin: bin, exe: exe}
}

// Users are kept apart: user B cannot reach, read or change user A's
// agents, a non-root user cannot change the system domain, and anyone may
// use a system daemon. B is a user made for the test (useradd), A is
// nobody; the clients are the test binary run as each.
func TestIsolationDomains(t *testing.T) {
	b := newTestUser(t)
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.writePlist(h.lcJob("test.iso.sys", []string{"test.iso.sys.svc"}, nil, nil, in.exe), h.paths.Daemons)
	h.start()
	// Socket and run directory as docs/XPCD.md has them for the system
	// instance: anyone may connect.
	for path, want := range map[string]os.FileMode{h.paths.RunDir: 0o755 | os.ModeDir, h.paths.Socket: 0o666 | os.ModeSocket} {
		if fi, err := os.Stat(path); err != nil || fi.Mode()&(os.ModeType|os.ModePerm) != want {
			t.Fatalf("%s: %v %v, want %v", path, fi.Mode(), err, want)
		}
	}
	// A's agent: in A's domain only (root bootstraps it there).
	extra := filepath.Join(h.dir, "extra")
	os.Mkdir(extra, 0o755)
	aPlist := h.writePlist(h.lcJob("test.iso.a", []string{"test.iso.a.svc"}, nil, nil, in.exe), extra)
	// And a plist B might try to put into the system domain.
	sysPlist := h.writePlist(h.lcJob("test.iso.intruder", []string{"test.iso.intruder.svc"}, nil, nil, in.exe), extra)
	aDom := UserDomain(isoUserA)
	if s := strOf(h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyDomain, aDom, bootstrap.KeyPath, aPlist), bootstrap.KeyStatus); s != "loaded" {
		t.Fatalf("bootstrap of A's agent: %q", s)
	}
	aTarget := aDom + "/test.iso.a"
	admin := func(id string, kv ...any) isoStep {
		req := map[string]any{bootstrap.KeyOp: kv[0]}
		for i := 1; i+1 < len(kv); i += 2 {
			req[kv[i].(string)] = kv[i+1]
		}
		return isoStep{ID: id, Op: "admin", Req: req}
	}

	// A reaches its own agent, which runs as A: the name exists and works.
	resA := isoClient(t, in.exe, isoUserA, isoUserA, h.dir, []isoStep{
		{ID: "lookup-own", Op: "lookup", Name: "test.iso.a.svc"},
	})
	if r := resA["lookup-own"]; !r.OK || r.UID != isoUserA || r.PeerUID != isoUserA {
		t.Fatalf("A's lookup of its own agent: %+v", r)
	}
	aPID := intOf(h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, aTarget), "pid")

	resB := isoClient(t, in.exe, b.uid, b.gid, h.dir, []isoStep{
		// (a) A's agent, from B: not in B's domain; A's domain is A's.
		{ID: "lookup-a", Op: "lookup", Name: "test.iso.a.svc"},
		{ID: "lookup-a-in-a", Op: "lookup", Name: "test.iso.a.svc", Domain: aDom},
		admin("print-a", bootstrap.OpPrint, bootstrap.KeyTarget, aTarget),
		admin("print-a-domain", bootstrap.OpPrint, bootstrap.KeyTarget, aDom),
		admin("kickstart-a", bootstrap.OpKickstart, bootstrap.KeyTarget, aTarget, "kill", true),
		admin("kill-a", bootstrap.OpKill, bootstrap.KeyTarget, aTarget, bootstrap.KeySignal, 9),
		admin("bootout-a", bootstrap.OpBootout, bootstrap.KeyTarget, aTarget),
		admin("disable-a", bootstrap.OpDisable, bootstrap.KeyTarget, aTarget),
		admin("bootstrap-a", bootstrap.OpBootstrap, bootstrap.KeyDomain, aDom, bootstrap.KeyPath, aPlist),
		// (b) the system domain, from a user who is not root.
		admin("bootstrap-sys", bootstrap.OpBootstrap, bootstrap.KeyDomain, DomainSystem, bootstrap.KeyPath, sysPlist),
		admin("bootout-sys", bootstrap.OpBootout, bootstrap.KeyTarget, "system/test.iso.sys"),
		admin("kickstart-sys", bootstrap.OpKickstart, bootstrap.KeyTarget, "system/test.iso.sys"),
		admin("disable-sys", bootstrap.OpDisable, bootstrap.KeyTarget, "system/test.iso.sys"),
		// (c) a system daemon's name: anyone's.
		{ID: "lookup-sys", Op: "lookup", Name: "test.iso.sys.svc"},
		admin("print-sys", bootstrap.OpPrint, bootstrap.KeyTarget, "system/test.iso.sys"),
	})
	want := map[string]string{
		"lookup-a":       bootstrap.ReasonNotFound,
		"lookup-a-in-a":  bootstrap.ReasonDenied,
		"print-a":        bootstrap.ReasonDenied,
		"print-a-domain": bootstrap.ReasonDenied,
		"kickstart-a":    bootstrap.ReasonDenied,
		"kill-a":         bootstrap.ReasonDenied,
		"bootout-a":      bootstrap.ReasonDenied,
		"disable-a":      bootstrap.ReasonDenied,
		"bootstrap-a":    bootstrap.ReasonDenied,
		"bootstrap-sys":  bootstrap.ReasonDenied,
		"bootout-sys":    bootstrap.ReasonDenied,
		"kickstart-sys":  bootstrap.ReasonDenied,
		"disable-sys":    bootstrap.ReasonDenied,
	}
	for id, reason := range want {
		if r := resB[id]; r.OK || r.Reason != reason {
			t.Errorf("%s as user B: %+v, want refused with %s", id, r, reason)
		}
	}
	if r := resB["lookup-sys"]; !r.OK || r.UID != 0 || r.PeerUID != int(b.uid) {
		t.Errorf("B's lookup of a system daemon: %+v, want served by root, seeing B (uid %d)", r, b.uid)
	}
	if r := resB["print-sys"]; !r.OK {
		t.Errorf("B reading a system job: %+v", r)
	}

	// Nothing B tried changed anything.
	d := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, aTarget)
	if strOf(d, "state") != "running" || intOf(d, "pid") != aPID || intOf(d, "runs") != 1 || d.Get("disabled") != xpc.Bool(false) {
		t.Errorf("A's agent after B's attempts: %s", xpc.Format(d))
	}
	d = h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, "system/test.iso.sys")
	if strOf(d, "state") != "running" || intOf(d, "runs") != 1 || d.Get("disabled") != xpc.Bool(false) {
		t.Errorf("the system daemon after B's attempts: %s", xpc.Format(d))
	}
	if _, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, "system/test.iso.intruder"); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("the job B tried to bootstrap into system: %v", err)
	}
	// B's own domain exists (made at its first request) and holds none of
	// A's jobs.
	d = h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, UserDomain(b.uid))
	if jobs, _ := d.Array(bootstrap.KeyJobs); len(jobs) != 0 {
		t.Errorf("B's domain: %s", xpc.Format(d))
	}
}

// examples/privileged-daemon, built from its source, runs as a system
// daemon from its own plist; user B calls it with the example's client
// and is told its own uid, attested by the kernel, by a daemon running as
// root. B may not shut it down; root may.
func TestIsolationPrivilegedDaemonExample(t *testing.T) {
	b := newTestUser(t)
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	buildPackages(t, in.bin, "github.com/goxpc/xpc/examples/privileged-daemon", "github.com/goxpc/xpc/examples/privileged-daemon/client")
	daemon, client := filepath.Join(in.bin, "privileged-daemon"), filepath.Join(in.bin, "client")
	plist, err := os.ReadFile(filepath.Join("..", "..", "examples", "privileged-daemon", "org.goxpc.example.privileged.plist"))
	if err != nil {
		t.Fatal(err)
	}
	const placeholder = "/usr/local/libexec/goxpc/privileged-daemon"
	if !strings.Contains(string(plist), placeholder) {
		t.Fatalf("the example's plist does not name %s", placeholder)
	}
	plist = []byte(strings.Replace(string(plist), placeholder, daemon, 1))
	if err := os.WriteFile(filepath.Join(h.paths.Daemons, "org.goxpc.example.privileged.plist"), plist, 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	target := "system/org.goxpc.example.privileged"

	type whoami struct {
		UID, GID, PID, DaemonEUID, DaemonPID int
		Exe                                  string
		Error, Reason                        string
	}
	parse := func(out string) whoami {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &m); err != nil {
			t.Fatalf("client output %q: %v", out, err)
		}
		num := func(k string) int { f, _ := m[k].(float64); return int(f) }
		str := func(k string) string { s, _ := m[k].(string); return s }
		return whoami{UID: num("uid"), GID: num("gid"), PID: num("pid"), DaemonEUID: num("daemon_euid"),
			DaemonPID: num("daemon_pid"), Exe: str("exe"), Error: str("error"), Reason: str("reason")}
	}

	out, errOut, code := runAs(t, b.uid, b.gid, h.dir, nil, client, "-op", "whoami")
	if code != 0 {
		t.Fatalf("client whoami as B: exit %d\n%s%s", code, out, errOut)
	}
	w := parse(out)
	if w.UID != int(b.uid) || w.GID != int(b.gid) || w.Exe != client || w.PID == 0 {
		t.Errorf("the daemon saw the caller as %+v, want uid %d gid %d exe %s", w, b.uid, b.gid, client)
	}
	d := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, target)
	if w.DaemonEUID != 0 || w.DaemonPID != intOf(d, "pid") || strOf(d, "state") != "running" {
		t.Errorf("the daemon: %+v; job %s", w, xpc.Format(d))
	}

	out, errOut, code = runAs(t, b.uid, b.gid, h.dir, nil, client, "-op", "shutdown")
	if w := parse(out); code != 1 || w.Reason != "denied" || !strings.Contains(w.Error, fmt.Sprint(b.uid)) {
		t.Errorf("shutdown as B: exit %d %+v %s", code, w, errOut)
	}
	if d := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, target); strOf(d, "state") != "running" || intOf(d, "runs") != 1 {
		t.Errorf("after B's shutdown: %s", xpc.Format(d))
	}

	out, errOut, code = runAs(t, 0, 0, h.dir, nil, client, "-op", "shutdown")
	if code != 0 || !strings.Contains(out, `"shutting down"`) {
		t.Errorf("shutdown as root: exit %d %s%s", code, out, errOut)
	}
	waitFor(t, "the daemon to exit", func() bool {
		d = h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, target)
		return strOf(d, "state") == "waiting"
	})
	if d.Get("stop_reason") != nil || d.Get("last_exit_status") != xpc.Int64(0) {
		t.Errorf("after root's shutdown: %s", xpc.Format(d))
	}
}
