package xpcd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A user chooses how deep their job's program path goes and how many
// symbolic links it runs through, and every inode the upgrades monitor
// watches counts against root's inotify limit, which all root runs
// shares: one path is resolved only so far (maxExeSpots), and a user's
// executables together get at most maxExeSpotsPerUser watches, however
// they split over identities (groups); past that an executable is looked
// at every interval instead. Root's jobs are not counted.
func TestUpgradeWatchesBoundedPerUser(t *testing.T) {
	b := newTestUser(t)
	t.Parallel()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // the test user walks the paths
	// A path of distinct directories of its own for each executable:
	// depth levels, then the executable.
	chain := func(name string, depth int) string {
		p := filepath.Join(dir, name, strings.Repeat("d/", depth))
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		rootFile(t, filepath.Join(p, "exe"), 0o755, "x")
		return filepath.Join(p, "exe")
	}
	deep := chain("deep", 2*maxExeSpots)
	if spots, ok := exeSpots(deep); ok || len(spots) > maxExeSpots {
		t.Errorf("a path %d directories deep: %d spots (ok %v), want at most %d and not ok", 2*maxExeSpots, len(spots), ok, maxExeSpots)
	}
	// A link to itself through a long detour: the walk ends all the same.
	os.Symlink(strings.Repeat("./", 2000)+"loop", filepath.Join(dir, "loop"))
	if spots, ok := exeSpots(filepath.Join(dir, "loop")); ok || len(spots) > maxExeSpots {
		t.Errorf("a looping link: %d spots (ok %v)", len(spots), ok)
	}

	w := &exeWatch{m: &supervisor{buckets: newBuckets()}}
	user := &ident{uid: b.uid, gid: b.gid}
	other := &ident{uid: b.uid, gid: b.gid, groups: []uint32{b.gid}} // the same user, another key
	byUser := map[string][]exeWatched{}
	depth := maxExeSpots - 20
	n := 4 * maxExeSpotsPerUser / depth
	for i := range n {
		key := "user"
		if i%2 == 1 {
			key = "other"
		}
		byUser[key] = append(byUser[key], exeWatched{inst: &instance{}, path: chain(fmt.Sprint("e", i), depth)})
	}
	want, paths, blind := w.plan(byUser, map[string]*ident{"user": user, "other": other})
	if got := len(paths["user"]) + len(paths["other"]); got > maxExeSpotsPerUser || got == 0 || !blind {
		t.Errorf("%d executables %d deep of one user: %d paths to watch (blind %v), want some, at most %d, and blind",
			n, depth, got, blind, maxExeSpotsPerUser)
	}
	if len(want) > maxExeSpotsPerUser {
		t.Errorf("%d inodes to watch for one user, want at most %d", len(want), maxExeSpotsPerUser)
	}

	// The same executables as root's: not counted.
	all := append(byUser["user"], byUser["other"]...)
	want, _, blind = w.plan(map[string][]exeWatched{"": all}, map[string]*ident{"": nil})
	if blind || len(want) <= maxExeSpotsPerUser {
		t.Errorf("root's executables: %d inodes to watch (blind %v), want every one", len(want), blind)
	}
}
