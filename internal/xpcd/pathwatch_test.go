package xpcd

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// Tests of the inotify watcher on a real directory, of the supervisor with
// it (and the fake launcher), and of a WatchPaths job end to end.

type watchEvents chan [2]bool // {watch, queue}

func startInotify(t *testing.T, watch, queue []string) watchEvents {
	t.Helper()
	w, err := newInotifyWatch(watchSpec{watch: watch, queue: queue, log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ev := make(watchEvents, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(func(watch, queue, _ bool) {
			select {
			case ev <- [2]bool{watch, queue}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		w.close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("run did not return after close")
		}
	})
	return ev
}

// next waits for a report and returns it with any that follow within
// 50 ms, merged.
func (ev watchEvents) next(t *testing.T, what string) (watch, queue bool) {
	t.Helper()
	select {
	case e := <-ev:
		watch, queue = e[0], e[1]
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no report", what)
	}
	for {
		select {
		case e := <-ev:
			watch, queue = watch || e[0], queue || e[1]
		case <-time.After(50 * time.Millisecond):
			return watch, queue
		}
	}
}

func (ev watchEvents) want(t *testing.T, what string, watch, queue bool) {
	t.Helper()
	if w, q := ev.next(t, what); w != watch || q != queue {
		t.Fatalf("%s: reported watch %v queue %v, want %v %v", what, w, q, watch, queue)
	}
}

// quiet checks that nothing is reported for a while.
func (ev watchEvents) quiet(t *testing.T, what string) {
	t.Helper()
	select {
	case e := <-ev:
		t.Fatalf("%s: reported %v, want nothing", what, e)
	case <-time.After(150 * time.Millisecond):
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	must(t, err)
	_, err = f.WriteString(s)
	must(t, err)
	must(t, f.Close())
}

func TestInotifyWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "watched")            // absent at first
	nested := filepath.Join(dir, "sub", "deep", "f") // its directories too
	wdir := filepath.Join(dir, "wdir")               // a watched directory
	q := filepath.Join(dir, "q")                     // a queue directory
	must(t, os.Mkdir(wdir, 0o755))
	must(t, os.Mkdir(q, 0o755))
	ev := startInotify(t, []string{file, nested, wdir}, []string{q})
	ev.want(t, "start", false, true) // the queue's first look, once the watches are in

	must(t, os.WriteFile(file, []byte("1"), 0o644))
	ev.want(t, "create", true, false)
	appendFile(t, filepath.Join(dir, "other"), "x")
	ev.quiet(t, "a sibling written")
	appendFile(t, file, "2")
	ev.want(t, "modify", true, false)
	must(t, os.Chmod(file, 0o600))
	ev.want(t, "chmod", true, false)

	// Replaced by a rename, as editors and installers do: reported, and
	// the new file is watched.
	tmp := filepath.Join(dir, ".watched.tmp")
	must(t, os.WriteFile(tmp, []byte("new"), 0o644))
	ev.quiet(t, "a temporary file written")
	must(t, os.Rename(tmp, file))
	ev.want(t, "replace", true, false)
	appendFile(t, file, "3")
	ev.want(t, "modify after replace", true, false)
	must(t, os.Remove(file))
	ev.want(t, "remove", true, false)
	must(t, os.WriteFile(file, nil, 0o644))
	ev.want(t, "create again", true, false)

	// A path whose directories do not exist yet.
	must(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	ev.quiet(t, "a directory on the way made")
	must(t, os.Mkdir(filepath.Join(dir, "sub", "deep"), 0o755))
	ev.quiet(t, "the parent made")
	must(t, os.WriteFile(nested, nil, 0o644))
	ev.want(t, "nested create", true, false)
	appendFile(t, nested, "x")
	ev.want(t, "nested modify", true, false)
	must(t, os.RemoveAll(filepath.Join(dir, "sub")))
	ev.want(t, "nested removed with its directories", true, false)
	must(t, os.MkdirAll(filepath.Join(dir, "sub", "deep"), 0o755))
	must(t, os.WriteFile(nested, nil, 0o644))
	ev.want(t, "nested made again", true, false)

	// A watched directory: its entries, not its files' contents.
	must(t, os.WriteFile(filepath.Join(wdir, "x"), nil, 0o644))
	ev.want(t, "entry added to a watched directory", true, false)
	appendFile(t, filepath.Join(wdir, "x"), "x")
	ev.quiet(t, "a file in a watched directory written")

	// The queue directory: entries added or removed.
	must(t, os.WriteFile(filepath.Join(q, "item"), nil, 0o644))
	ev.want(t, "queue item", false, true)
	appendFile(t, filepath.Join(q, "item"), "x")
	ev.quiet(t, "a queue item written")
	must(t, os.Remove(filepath.Join(q, "item")))
	ev.want(t, "queue item taken", false, true)
}

// inotifyFDs counts this process's inotify descriptors.
func inotifyFDs(t *testing.T) int {
	n := 0
	for _, target := range openFDs(t) {
		if strings.Contains(target, "inotify") {
			n++
		}
	}
	return n
}

// The supervisor with real inotify (and the fake launcher, in real time):
// a burst of writes starts the job once; bootout closes the watch and ends
// its goroutine; nothing is left after close. Not parallel: it counts the
// process's inotify descriptors and goroutines.
func TestWatchPathsLive(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	fds := inotifyFDs(t)
	dir := t.TempDir()
	trigger := filepath.Join(dir, "trigger")
	fl := &fakeLauncher{}
	m := newSupervisor(supervisorConfig{
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		launcher: fl,
		domains:  map[string]uint32{"user/0": 0},
		userMode: true,
	})
	must(t, m.start(context.Background()))
	defer m.close(context.Background())
	d := m.domains["user/0"]
	var j *job
	must(t, m.call(context.Background(), func() {
		var oe *opError
		j, oe = m.addJob(d, def("live", func(j *launchd.Job) {
			j.WatchPaths = []string{trigger}
			j.ThrottleInterval = 0
		}), true)
		if oe != nil {
			t.Error(oe)
		}
	}))
	// The watcher makes its inotify instance in its own goroutine.
	waitFor(t, "the watcher's inotify instance", func() bool { return inotifyFDs(t) == fds+1 })
	launches := func() int { return len(fl.launches()) }
	// The watch is set up in its own goroutine: write until it notices.
	waitFor(t, "a launch for a new file", func() bool {
		appendFile(t, trigger, "x")
		time.Sleep(50 * time.Millisecond)
		return launches() > 0
	})
	time.Sleep(3 * watchDebounce)
	if n := launches(); n != 1 {
		t.Fatalf("%d launches, want 1", n)
	}
	var why string
	must(t, m.call(context.Background(), func() { why = j.lastReason.why }))
	if why != reasonWatchPath {
		t.Errorf("launch reason %q", why)
	}
	fl.launches()[0].die(exitStatus{known: true})
	waitFor(t, "the exit", func() bool {
		var st string
		m.call(context.Background(), func() { st = j.stateOf() })
		return st == "waiting"
	})
	for range 10 {
		appendFile(t, trigger, "y")
	}
	waitFor(t, "a launch for the burst", func() bool { return launches() == 2 })
	time.Sleep(3 * watchDebounce)
	if n := launches(); n != 2 {
		t.Fatalf("%d launches for one burst of writes, want 1 more", n-1)
	}

	fl.launches()[1].termExits = true
	must(t, bootoutJob(m, j))
	waitFor(t, "the inotify descriptor to close", func() bool { return inotifyFDs(t) == fds })
	must(t, m.close(context.Background()))
	goleak.VerifyNone(t, ignore)
}

// End to end: a WatchPaths job of a real xpcd starts (the test binary as
// its service) when its path is written, and says so in print and blame.
func TestWatchPathsDaemon(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	trigger := filepath.Join(h.dir, "trigger")
	h.writePlist(testJob{label: "test.wp", names: []string{"test.wp.svc"},
		extra: map[string]any{"WatchPaths": []any{trigger}}})
	h.start()
	d := h.print("test.wp")
	if v, _ := d.Array("watch_paths"); len(v) != 1 || v[0] != xpc.String(trigger) {
		t.Errorf("watch_paths: %s", xpc.Format(d))
	}
	if why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("test.wp")), bootstrap.KeyWhy); !strings.Contains(why, "watching paths "+trigger) {
		t.Errorf("blame: %q", why)
	}
	waitFor(t, "test.wp to start", func() bool {
		appendFile(t, trigger, "x")
		time.Sleep(50 * time.Millisecond)
		return strOf(h.print("test.wp"), "state") != "waiting"
	})
	d = h.waitState("test.wp", "running")
	if strOf(d, "launch_reason") != reasonWatchPath {
		t.Errorf("job = %s", xpc.Format(d))
	}
	h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.wp"), bootstrap.KeyWait, true)
}

// TestKeepAlivePathStateLive: a job kept alive while a path exists starts
// when the path appears, not only at load or when it exits; one kept alive
// while a path is missing starts when the path goes.
func TestKeepAlivePathStateLive(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	flag := filepath.Join(h.dir, "flags", "run") // its directory does not exist yet
	gone := filepath.Join(h.dir, "present")
	appendFile(t, gone, "x")
	h.writePlist(testJob{label: "test.ps", names: []string{"test.ps.svc"},
		extra: map[string]any{"KeepAlive": map[string]any{"PathState": map[string]any{flag: true}}}})
	h.writePlist(testJob{label: "test.psno", names: []string{"test.psno.svc"},
		extra: map[string]any{"KeepAlive": map[string]any{"PathState": map[string]any{gone: false}}}})
	h.start()
	if why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("test.psno")), bootstrap.KeyWhy); !strings.Contains(why, gone+" is missing") {
		t.Errorf("blame: %q", why)
	}
	// Neither condition holds: neither job starts.
	time.Sleep(300 * time.Millisecond)
	for _, l := range []string{"test.ps", "test.psno"} {
		if s := strOf(h.print(l), "state"); s != "waiting" {
			t.Fatalf("%s is %s before its path changed", l, s)
		}
	}
	if err := os.MkdirAll(filepath.Dir(flag), 0o755); err != nil {
		t.Fatal(err)
	}
	appendFile(t, flag, "x")
	d := h.waitState("test.ps", "running")
	if strOf(d, "launch_reason") != reasonKeepAlive {
		t.Errorf("test.ps: %s", xpc.Format(d))
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	d = h.waitState("test.psno", "running")
	if strOf(d, "launch_reason") != reasonKeepAlive {
		t.Errorf("test.psno: %s", xpc.Format(d))
	}
	for _, l := range []string{"test.ps", "test.psno"} {
		h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target(l), bootstrap.KeyWait, true)
	}
}
