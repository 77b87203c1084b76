package xpcd

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/goxpc/xpc"
)

// resolveDirs names every directory whose entries decide what a path
// names: each component's parent, through relative and absolute links,
// and stops at a missing component, watching its directory for it.
func TestResolveDirs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "v1", "bin"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "v1", "bin", "prog"), nil, 0o755))
	must(os.Symlink("v1", filepath.Join(dir, "current")))                                                    // relative
	must(os.MkdirAll(filepath.Join(dir, "usr", "bin"), 0o755))                                               //
	must(os.Symlink(filepath.Join(dir, "current", "bin", "prog"), filepath.Join(dir, "usr", "bin", "prog"))) // absolute
	must(os.Symlink("loop", filepath.Join(dir, "loop")))

	names := func(m map[string]map[string]bool) map[string][]string {
		out := map[string][]string{}
		for d, ns := range m {
			if d == dir || len(d) > len(dir) && d[:len(dir)+1] == dir+"/" {
				out[d] = slices.Sorted(maps.Keys(ns))
			}
		}
		return out
	}
	got, file, ok := resolveDirs(filepath.Join(dir, "usr", "bin", "prog"))
	want := map[string][]string{
		dir:                              {"current", "usr", "v1"},
		filepath.Join(dir, "usr"):        {"bin"},
		filepath.Join(dir, "usr", "bin"): {"prog"},
		filepath.Join(dir, "v1"):         {"bin"},
		filepath.Join(dir, "v1", "bin"):  {"prog"},
	}
	if g := names(got); !ok || !maps.EqualFunc(g, want, slices.Equal) {
		t.Errorf("through two links: %v (ok %v), want %v", g, ok, want)
	}
	if want := filepath.Join(dir, "v1", "bin", "prog"); file != want {
		t.Errorf("leads to %q, want %q", file, want)
	}
	if _, ok := got[filepath.Dir(dir)]; !ok {
		t.Errorf("the parent of %s is not watched: %v", dir, got)
	}
	got, file, ok = resolveDirs(filepath.Join(dir, "current", "sbin", "prog"))
	want = map[string][]string{dir: {"current", "v1"}, filepath.Join(dir, "v1"): {"sbin"}}
	if g := names(got); !ok || file != "" || !maps.EqualFunc(g, want, slices.Equal) {
		t.Errorf("a missing directory: %v (ok %v), want %v", g, ok, want)
	}
	if _, _, ok := resolveDirs(filepath.Join(dir, "loop")); ok {
		t.Error("a link loop resolved")
	}
	if _, _, ok := resolveDirs("bin/prog"); ok {
		t.Error("a relative path resolved")
	}
}

// A replaced executable is noticed with no timer at all (an interval of
// an hour): through inotify, for a symbolic link on its path pointed
// elsewhere, a rename over it, and its modification time changed. Between the changes, with the service
// running, the monitor does not look at the executable.
func TestUpgradeNoticedWithoutTimer(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.UpgradeInterval = time.Hour
	bin := filepath.Join(h.dir, "bin")
	for _, v := range []string{"v1", "v2"} {
		os.MkdirAll(filepath.Join(bin, v), 0o755)
	}
	copyFile(t, h.exe, filepath.Join(bin, "v1", "service"))
	if err := os.Symlink("v1", filepath.Join(bin, "current")); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(bin, "current", "service")
	h.writePlist(h.lcJob("test.lnt", []string{"test.lnt.svc"}, map[string]string{"GORACE": raceNoExitSleep},
		map[string]any{"ExitTimeOut": 10}, prog))
	d := h.start()
	c, _ := h.serviceConn("test.lnt.svc")
	pid1 := ping(t, c)

	// Idle, running: no look at the executable for a second.
	w := d.sup.exeWatch
	time.Sleep(200 * time.Millisecond)
	n := w.looks.Load()
	time.Sleep(time.Second)
	if m := w.looks.Load(); m != n {
		t.Errorf("the monitor looked %d times in an idle second", m-n)
	}

	// The link pointed at another build.
	b, err := os.ReadFile(h.exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "v2", "service"), append(b, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("v2", filepath.Join(bin, "next")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(bin, "next"), filepath.Join(bin, "current")); err != nil {
		t.Fatal(err)
	}
	st := h.waitState("test.lnt", "waiting")
	if strOf(st, "stop_reason") != "upgrade" {
		t.Fatalf("after the link moved: %s", xpc.Format(st))
	}
	pid2 := pingInterrupted(t, c)
	if pid2 == pid1 || pid2 == 0 {
		t.Fatalf("after the upgrade, served by pid %d (the old one was %d)", pid2, pid1)
	}

	// A rename over the new build itself.
	if err := os.WriteFile(filepath.Join(bin, "v2", "service.new"), append(b, 0, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(bin, "v2", "service.new"), filepath.Join(bin, "v2", "service")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second upgrade", func() bool {
		d := h.print("test.lnt")
		return strOf(d, "stop_reason") == "upgrade" && intOf(d, "runs") == 2 && strOf(d, "state") == "waiting"
	})
	pid3 := pingInterrupted(t, c)
	if pid3 == pid2 || pid3 == 0 {
		t.Fatalf("after the second upgrade, served by pid %d (the old one was %d)", pid3, pid2)
	}

	// The file itself touched: its modification time changed.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(bin, "v2", "service"), later, later); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the third upgrade", func() bool {
		d := h.print("test.lnt")
		return strOf(d, "stop_reason") == "upgrade" && intOf(d, "runs") == 3 && strOf(d, "state") == "waiting"
	})
	if pid4 := pingInterrupted(t, c); pid4 == pid3 || pid4 == 0 {
		t.Fatalf("after the third upgrade, served by pid %d (the old one was %d)", pid4, pid3)
	}
}
