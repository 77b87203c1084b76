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
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openStore(t *testing.T, dir string) *stateStore {
	t.Helper()
	s := newStateStore(dir, quietLog())
	if err := s.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close(context.Background()) })
	return s
}

func TestStateRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := openStore(t, dir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory: %v %v", fi.Mode(), err)
	}
	if err := <-s.saveOverrides(map[string]map[string]bool{"user/0": {"a": true, "b": false}}); err != nil {
		t.Fatal(err)
	}
	rec := processRecord{Domain: "user/0", Label: "a", PID: 42, StartTime: 7, Since: time.Unix(100, 0).UTC(), Reason: "demand", Requester: 9}
	s.saveProcesses([]processRecord{rec}, nil)
	s.close(context.Background())

	s2 := openStore(t, dir)
	if o := s2.loadedOverrides["user/0"]; len(o) != 2 || !o["a"] || o["b"] {
		t.Errorf("overrides = %v", s2.loadedOverrides)
	}
	if len(s2.loadedProcesses) != 1 || s2.loadedProcesses[0] != rec {
		t.Errorf("processes = %+v", s2.loadedProcesses)
	}
	if fi, err := os.Stat(filepath.Join(dir, overridesFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("overrides file: %v %v", fi.Mode(), err)
	}
}

// A crash mid-write (the temporary file written, not renamed) leaves the
// old state intact, and the leftover is cleaned up.
func TestStateCrashMidWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := openStore(t, dir)
	if err := <-s.saveOverrides(map[string]map[string]bool{"user/0": {"old": true}}); err != nil {
		t.Fatal(err)
	}
	s.close(context.Background())

	// What writeFileAtomic does before its rename, and no more.
	f, err := os.CreateTemp(dir, "."+overridesFile+".tmp*")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"version":1,"overrides":{"user/0":{"new":tr`)
	f.Close()

	s2 := openStore(t, dir)
	if o := s2.loadedOverrides["user/0"]; len(o) != 1 || !o["old"] {
		t.Errorf("after a crash mid-write: %v", s2.loadedOverrides)
	}
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Errorf("the unfinished write is still there: %v", err)
	}
}

// A corrupt file is an error that is reported, moved aside, and replaced by
// defaults; the rest of the state still loads.
func TestStateCorrupt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, overridesFile), []byte("{not json"), 0o600)
	os.WriteFile(filepath.Join(dir, processesFile), []byte(`{"version":1,"processes":[{"label":"a","pid":5}]}`), 0o600)
	var logs logBuffer
	s := newStateStore(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := s.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.close(context.Background())
	if len(s.loadedOverrides) != 0 || len(s.loadedProcesses) != 1 {
		t.Errorf("loaded %v, %v", s.loadedOverrides, s.loadedProcesses)
	}
	if !strings.Contains(logs.String(), "corrupt") || !strings.Contains(logs.String(), overridesFile) {
		t.Errorf("log: %s", logs.String())
	}
	if b, err := os.ReadFile(filepath.Join(dir, overridesFile+".corrupt")); err != nil || string(b) != "{not json" {
		t.Errorf("corrupt file not kept aside: %q %v", b, err)
	}
	// And writing works again.
	if err := <-s.saveOverrides(map[string]map[string]bool{"user/0": {"x": true}}); err != nil {
		t.Fatal(err)
	}
}

// Writes coalesce: many puts, the last one wins, everyone is answered.
func TestPersisterCoalesces(t *testing.T) {
	dir := t.TempDir()
	p := newPersister(dir, "f.json", quietLog())
	var chans []<-chan error
	for i := range 50 {
		chans = append(chans, p.put([]byte{'0' + byte(i%10)}))
	}
	for _, c := range chans {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	p.close(context.Background())
	if b, _ := os.ReadFile(filepath.Join(dir, "f.json")); string(b) != "9" {
		t.Errorf("contents %q, want the last write", b)
	}
	if err := <-p.put([]byte("x")); err == nil {
		t.Error("put after close succeeded")
	}
}
