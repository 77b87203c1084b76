package xpcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The state store keeps what must survive a restart of xpcd, in JSON files
// in the state directory (0700):
//
//	overrides.json   enable/disable overrides, by domain and label
//	processes.json   the processes xpcd launched and still supervises
//
// Every write is atomic: a temporary file in the same directory is written
// and fsynced, renamed over the old file, and the directory fsynced; a
// crash at any point leaves either the old or the new contents. A file that
// does not parse is moved aside (NAME.corrupt), reported, and replaced by
// defaults: xpcd keeps going.
const (
	overridesFile = "overrides.json"
	processesFile = "processes.json"
	stateVersion  = 1
)

// overridesDoc is the format of overrides.json. true: disabled; false:
// enabled (overriding a plist's Disabled key).
type overridesDoc struct {
	Version   int                        `json:"version"`
	Overrides map[string]map[string]bool `json:"overrides"`
}

// processRecord is one process xpcd launched, as processes.json keeps it:
// enough to find it again after a restart (pid and the kernel's start time,
// which together cannot be recycled) and to describe it.
type processRecord struct {
	Domain      string    `json:"domain"`
	Label       string    `json:"label"`
	PID         int       `json:"pid"`
	StartTime   uint64    `json:"start_time"` // /proc/PID/stat field 22, clock ticks since boot
	Since       time.Time `json:"since"`
	Reason      string    `json:"launch_reason"`
	Requester   int       `json:"requester_pid,omitempty"`
	Fingerprint string    `json:"fingerprint"`
	Output      string    `json:"output,omitempty"` // the FIFO its stdout/stderr go to
	Exe         fileID    `json:"exe"`
	Runs        int       `json:"runs"`
	// Marker is markerEnv's value in its environment (marker.go), checked
	// again when it is adopted; "" in records of older versions.
	Marker string `json:"marker,omitempty"`
}

type processesDoc struct {
	Version   int             `json:"version"`
	Processes []processRecord `json:"processes"`
}

// stateStore is the state store component.
type stateStore struct {
	dir string
	log *slog.Logger

	overrides *persister
	processes *persister

	// What start read.
	loadedOverrides map[string]map[string]bool
	loadedProcesses []processRecord
}

func newStateStore(dir string, log *slog.Logger) *stateStore {
	return &stateStore{dir: dir, log: log}
}

func (s *stateStore) name() string { return "state" }

func (s *stateStore) start(context.Context) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	removeStaleTemps(s.dir, s.log)
	var od overridesDoc
	if err := readState(filepath.Join(s.dir, overridesFile), &od); err != nil {
		s.log.Error("state: overrides unreadable; starting without them", "err", err)
	}
	s.loadedOverrides = od.Overrides
	if s.loadedOverrides == nil {
		s.loadedOverrides = map[string]map[string]bool{}
	}
	var pd processesDoc
	if err := readState(filepath.Join(s.dir, processesFile), &pd); err != nil {
		s.log.Error("state: process records unreadable; running services cannot be adopted", "err", err)
	}
	s.loadedProcesses = pd.Processes
	s.overrides = newPersister(s.dir, overridesFile, s.log)
	s.processes = newPersister(s.dir, processesFile, s.log)
	return nil
}

func (s *stateStore) close(ctx context.Context) error {
	var errs []error
	for _, p := range []*persister{s.overrides, s.processes} {
		if p != nil {
			errs = append(errs, p.close(ctx))
		}
	}
	return errors.Join(errs...)
}

// saveOverrides writes the overrides; the channel reports when they are on
// disk.
func (s *stateStore) saveOverrides(o map[string]map[string]bool) <-chan error {
	b, err := json.MarshalIndent(overridesDoc{Version: stateVersion, Overrides: o}, "", "\t")
	if err != nil {
		return done(err)
	}
	return s.overrides.put(b)
}

// saveProcesses writes the process records, in the background.
func (s *stateStore) saveProcesses(recs []processRecord) {
	if recs == nil {
		recs = []processRecord{}
	}
	b, err := json.MarshalIndent(processesDoc{Version: stateVersion, Processes: recs}, "", "\t")
	if err != nil {
		s.log.Error("state: encode process records", "err", err)
		return
	}
	s.processes.put(b)
}

func done(err error) <-chan error {
	c := make(chan error, 1)
	c <- err
	return c
}

// readState reads a state file into v. A missing file leaves v as it is; a
// corrupt one is moved aside to NAME.corrupt and reported.
func readState(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		aside := path + ".corrupt"
		if rerr := os.Rename(path, aside); rerr != nil {
			return fmt.Errorf("%s: corrupt (%v), and cannot be moved aside: %w", path, err, rerr)
		}
		return fmt.Errorf("%s: corrupt, moved to %s: %w", path, aside, err)
	}
	return nil
}

// writeFileAtomic replaces dir/name with data: temporary file, fsync,
// rename, fsync of the directory.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // renamed; only the directory's durability is unknown
	}
	defer d.Close()
	return d.Sync()
}

// removeStaleTemps removes temporary files a crash mid-write left behind.
func removeStaleTemps(dir string, log *slog.Logger) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.Contains(n, ".json.tmp") {
			log.Info("state: removing an unfinished write", "file", n)
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// persister writes one state file from its own goroutine, so that nobody
// waits for the disk unless they ask to. Writes coalesce: only the latest
// contents are written, and everyone waiting for an earlier one is told
// when the latest is durable.
type persister struct {
	dir, name string
	log       *slog.Logger

	mu      sync.Mutex
	pending []byte
	waiters []chan error
	closed  bool
	kick    chan struct{}
	done    chan struct{}
}

func newPersister(dir, name string, log *slog.Logger) *persister {
	p := &persister{dir: dir, name: name, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go p.run()
	return p
}

// put schedules data to be written; the channel receives the result.
func (p *persister) put(data []byte) <-chan error {
	c := make(chan error, 1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c <- errors.New("state store closed")
		return c
	}
	p.pending = data
	p.waiters = append(p.waiters, c)
	select {
	case p.kick <- struct{}{}:
	default: // a write is already due; it will take the latest data
	}
	p.mu.Unlock()
	return c
}

func (p *persister) run() {
	defer close(p.done)
	for range p.kick {
		for {
			p.mu.Lock()
			data, waiters, closed := p.pending, p.waiters, p.closed
			p.pending, p.waiters = nil, nil
			p.mu.Unlock()
			if data == nil {
				if closed {
					return
				}
				break
			}
			err := writeFileAtomic(p.dir, p.name, data)
			if err != nil {
				p.log.Error("state: write failed", "file", p.name, "err", err)
			}
			for _, w := range waiters {
				w <- err
			}
		}
	}
}

// close writes what is pending and stops, waiting until ctx ends at most.
func (p *persister) close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.kick)
	p.mu.Unlock()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("state: %s not flushed: %w", p.name, ctx.Err())
	}
}
