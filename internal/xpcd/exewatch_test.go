package xpcd

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
)

// exeSpots watches every inode reached resolving a path for itself, through
// relative and absolute links, the file at the end for writes too, and
// the directory of a missing component for its name.
func TestExeSpots(t *testing.T) {
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
	must(os.Symlink("v1", filepath.Join(dir, "current"))) // relative
	must(os.MkdirAll(filepath.Join(dir, "usr", "bin"), 0o755))
	must(os.Symlink(filepath.Join(dir, "current", "bin", "prog"), filepath.Join(dir, "usr", "bin", "prog"))) // absolute
	must(os.Symlink("loop", filepath.Join(dir, "loop")))

	// Within dir, by path relative to it: the mask, and the names.
	inside := func(spots map[string]exeSpot) map[string]string {
		out := map[string]string{}
		for p, sp := range spots {
			if rel, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(rel, "..") {
				out[rel] = fmt.Sprintf("%#x %v", sp.mask, slices.Sorted(maps.Keys(sp.names)))
			}
		}
		return out
	}
	dirm, link, file := fmt.Sprintf("%#x []", exeDirMask), fmt.Sprintf("%#x []", exeSelfMask), fmt.Sprintf("%#x []", exeFileMask)
	spots, ok := exeSpots(filepath.Join(dir, "usr", "bin", "prog"))
	want := map[string]string{".": dirm, "usr": dirm, "usr/bin": dirm, "usr/bin/prog": link,
		"current": link, "v1": dirm, "v1/bin": dirm, "v1/bin/prog": file}
	if g := inside(spots); !ok || !maps.Equal(g, want) {
		t.Errorf("through two links: %v (ok %v), want %v", g, ok, want)
	}
	if _, ok := spots[filepath.Dir(dir)]; !ok {
		t.Errorf("the parent of %s is not watched: %v", dir, spots)
	}
	spots, ok = exeSpots(filepath.Join(dir, "current", "sbin", "prog"))
	want = map[string]string{".": dirm, "current": link, "v1": fmt.Sprintf("%#x [sbin]", exeDirMask|exeMissingMask)}
	if g := inside(spots); !ok || !maps.Equal(g, want) {
		t.Errorf("a missing directory: %v (ok %v), want %v", g, ok, want)
	}
	if _, ok := exeSpots(filepath.Join(dir, "loop")); ok {
		t.Error("a link loop resolved")
	}
	if _, ok := exeSpots("bin/prog"); ok {
		t.Error("a relative path resolved")
	}
}

// A replaced executable is noticed with no timer at all (an interval of
// an hour): through inotify, for a symbolic link on its path pointed
// elsewhere, a rename over it, its modification time changed, and a
// directory on its path renamed away. Between the changes, with the service
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
	pid4 := pingInterrupted(t, c)
	if pid4 == pid3 || pid4 == 0 {
		t.Fatalf("after the third upgrade, served by pid %d (the old one was %d)", pid4, pid3)
	}

	// A directory on the way renamed, and another put in its place.
	v3 := filepath.Join(bin, "v3")
	os.Mkdir(v3, 0o755)
	if err := os.WriteFile(filepath.Join(v3, "service"), append(b, 0, 0, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(bin, "v2"), filepath.Join(bin, "v2.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(v3, filepath.Join(bin, "v2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fourth upgrade", func() bool {
		d := h.print("test.lnt")
		return strOf(d, "stop_reason") == "upgrade" && intOf(d, "runs") == 4 && strOf(d, "state") == "waiting"
	})
	if pid5 := pingInterrupted(t, c); pid5 == pid4 || pid5 == 0 {
		t.Fatalf("after the fourth upgrade, served by pid %d (the old one was %d)", pid5, pid4)
	}
}
