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
	"reflect"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The state store keeps what must survive a restart of xpcd, in JSON files
// in the state directory (0700):
//
//	overrides.json   enable/disable overrides, by domain and label
//	processes.json   the processes xpcd launched and still supervises, and
//	                 every loaded job's history: run count and last exit
//	activities.json  activities: criteria, base, last run (activity_state.go)
//	events.json      pending launch events, by job (event_state.go)
//
// Every write is atomic: a temporary file in the same directory is written
// and fsynced, renamed over the old file, and the directory fsynced; a
// crash at any point leaves either the old or the new contents. A file that
// does not parse is moved aside (NAME.corrupt), reported, and replaced by
// defaults: xpcd keeps going.
//
// The state is read-only, and nothing in the directory is ever written,
// moved or removed, when the directory cannot be written (a read-only
// mount, say) or made, or when a file has a version newer than
// stateVersion (a newer xpcd wrote it, and may need it again). xpcd then
// starts all the same with what it could read: what is in this version's
// format is used (overrides, and process records, checked against the
// kernel as always); a file that is not is not used at all. Requests that
// change overrides are refused (bootstrap.ReasonReadOnlyState); processes
// launched meanwhile are not recorded.
const (
	overridesFile  = "overrides.json"
	processesFile  = "processes.json"
	activitiesFile = "activities.json"
	eventsFile     = "events.json"
	stateVersion   = 1
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

// jobHistory is what processes.json keeps of every loaded job, running or
// not: how many instances it started, and how the last one ended.
type jobHistory struct {
	Domain   string      `json:"domain"`
	Label    string      `json:"label"`
	Runs     int         `json:"runs"`
	LastExit *exitRecord `json:"last_exit,omitempty"`
}

// exitRecord is an exitStatus with when it happened and why xpcd stopped
// the instance ("" if it ended on its own).
type exitRecord struct {
	Known      bool      `json:"known"`
	Status     int       `json:"status"`
	Signal     int       `json:"signal,omitempty"`
	At         time.Time `json:"at"`
	StopReason string    `json:"stop_reason,omitempty"`
}

type processesDoc struct {
	Version   int             `json:"version"`
	Processes []processRecord `json:"processes"`
	History   []jobHistory    `json:"history,omitempty"`
}

// ErrStateReadOnly is the cause of a change refused because the state is
// read-only (stateStore.readOnlyWhy says why).
var ErrStateReadOnly = errors.New("the state is read-only")

// StateWriteError is a state file that could not be written: Path is the
// file, Err the cause (ENOSPC, EROFS, ...: errors.Is sees through it).
type StateWriteError struct {
	Path string
	Err  error
}

func (e *StateWriteError) Error() string {
	return fmt.Sprintf("cannot write %s: %v", e.Path, causeOf(e.Err))
}

func (e *StateWriteError) Unwrap() error { return e.Err }

// causeOf strips the path of a temporary file from a file system error.
func causeOf(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

// stateStore is the state store component.
type stateStore struct {
	dir string
	log *slog.Logger

	overrides  *persister
	processes  *persister
	activities *persister
	events     *persister
	// actMu orders the encodings of activities.json; actGen is the
	// generation last handed to its persister (activity_state.go); evMu
	// and evGen, those of events.json (event_state.go).
	actMu  sync.Mutex
	actGen uint64
	evMu   sync.Mutex
	evGen  uint64

	// readOnly says why the state is read-only; "" if it is not. Set by
	// start and never changed after, so anyone may read it then.
	readOnly string

	// What start read.
	loadedOverrides  map[string]map[string]bool
	loadedProcesses  []processRecord
	loadedHistory    []jobHistory
	loadedActivities []activityRecord
	loadedEvents     []jobEventsRecord
}

func newStateStore(dir string, log *slog.Logger) *stateStore {
	return &stateStore{dir: dir, log: log}
}

func (s *stateStore) name() string { return "state" }

func (s *stateStore) start(context.Context) error {
	s.loadedOverrides = map[string]map[string]bool{}
	made, err := s.prepareDir()
	if err != nil {
		return err
	}
	if made {
		s.load()
	}
	if s.readOnly != "" {
		s.log.Error("state: read-only; enable, disable and remove-disabled are refused, and launches are not recorded",
			"dir", s.dir, "why", s.readOnly)
	} else {
		removeStaleTemps(s.dir, s.log)
	}
	s.overrides = newPersister(s.dir, overridesFile, s.log)
	s.processes = newPersister(s.dir, processesFile, s.log)
	s.activities = newPersister(s.dir, activitiesFile, s.log)
	s.events = newPersister(s.dir, eventsFile, s.log)
	return nil
}

// prepareDir makes the state directory (0700). One that cannot be made
// or written makes the state read-only; made reports whether it exists
// (and so may be read).
func (s *stateStore) prepareDir() (made bool, err error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		if !cannotWrite(err) {
			return false, fmt.Errorf("state directory: %w", err)
		}
		s.readOnly = fmt.Sprintf("the state directory %s cannot be made: %v", s.dir, causeOf(err))
		return false, nil
	}
	if err := unix.Access(s.dir, unix.W_OK); err != nil {
		s.readOnly = fmt.Sprintf("the state directory %s cannot be written: %v", s.dir, err)
		return true, nil
	}
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return true, fmt.Errorf("state directory: %w", err)
	}
	return true, nil
}

// joinWhy adds another reason for the state to be read-only.
func joinWhy(why, more string) string {
	if why == "" {
		return more
	}
	return why + "; " + more
}

// cannotWrite tells whether err says the file system may not be written
// here (rather than that something is wrong with the path).
func cannotWrite(err error) bool {
	return errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}

// load reads the state files. Corrupt ones are moved aside only once both
// have been read, and only if the state turned out not to be read-only.
func (s *stateStore) load() {
	var od overridesDoc
	var pd processesDoc
	var ad activitiesDoc
	var ed eventsDoc
	files := []struct {
		name, lost string
		into       any
	}{
		{overridesFile, "starting without the overrides", &od},
		{processesFile, "running services cannot be adopted, job histories are lost", &pd},
		{activitiesFile, "activities registered by services and their last runs are lost", &ad},
		{eventsFile, "pending launch events are lost", &ed},
	}
	var corrupt []string
	for _, f := range files {
		path := filepath.Join(s.dir, f.name)
		err := readState(path, f.into)
		var ne *newerStateError
		var ce *corruptStateError
		switch {
		case errors.As(err, &ne):
			s.readOnly = joinWhy(s.readOnly, ne.Error())
			s.log.Error("state: a newer xpcd's file; using what this version can read, and writing nothing", "file", path, "err", err)
		case errors.As(err, &ce):
			corrupt = append(corrupt, path)
			s.log.Error("state: corrupt; "+f.lost, "file", path, "err", err)
		case err != nil:
			s.log.Error("state: unreadable; "+f.lost, "file", path, "err", err)
		}
	}
	if s.readOnly == "" {
		for _, path := range corrupt {
			if err := os.Rename(path, path+".corrupt"); err != nil {
				s.log.Error("state: the corrupt file cannot be moved aside", "file", path, "err", err)
			} else {
				s.log.Info("state: corrupt file moved aside", "file", path, "to", path+".corrupt")
			}
		}
	}
	if od.Overrides != nil {
		s.loadedOverrides = od.Overrides
	}
	s.loadedProcesses = pd.Processes
	s.loadedHistory = pd.History
	s.loadedActivities = ad.Activities
	s.loadedEvents = ed.Jobs
}

func (s *stateStore) close(ctx context.Context) error {
	var errs []error
	for _, p := range []*persister{s.overrides, s.processes, s.activities, s.events} {
		if p != nil {
			errs = append(errs, p.close(ctx))
		}
	}
	return errors.Join(errs...)
}

// saveOverrides writes the overrides; the channel reports when they are on
// disk, or a *StateWriteError (ErrStateReadOnly if the state is
// read-only).
func (s *stateStore) saveOverrides(o map[string]map[string]bool) <-chan error {
	if s.readOnly != "" {
		return done(fmt.Errorf("%s: %w", s.readOnly, ErrStateReadOnly))
	}
	b, err := json.MarshalIndent(overridesDoc{Version: stateVersion, Overrides: o}, "", "\t")
	if err != nil {
		return done(err)
	}
	return s.overrides.put(b)
}

// saveProcesses writes the process records and the jobs' histories, in
// the background (nothing, if the state is read-only).
func (s *stateStore) saveProcesses(recs []processRecord, hist []jobHistory) {
	if s.readOnly != "" {
		return
	}
	if recs == nil {
		recs = []processRecord{}
	}
	b, err := json.MarshalIndent(processesDoc{Version: stateVersion, Processes: recs, History: hist}, "", "\t")
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

// newerStateError is a state file of a version this xpcd does not know.
type newerStateError struct {
	path    string
	version int
}

func (e *newerStateError) Error() string {
	return fmt.Sprintf("%s has version %d, newer than this xpcd's %d (a newer xpcd wrote it)", e.path, e.version, stateVersion)
}

// corruptStateError is a state file that does not parse.
type corruptStateError struct {
	path string
	err  error
}

func (e *corruptStateError) Error() string { return fmt.Sprintf("%s: corrupt: %v", e.path, e.err) }
func (e *corruptStateError) Unwrap() error { return e.err }

// readState reads a state file into v. A missing file leaves v as it is;
// one that does not parse is a *corruptStateError. One of a newer version
// is a *newerStateError; v then has what is in this version's format, or
// nothing if the file does not decode as that.
func readState(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var hdr struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		return &corruptStateError{path: path, err: err}
	}
	if hdr.Version > stateVersion {
		if err := decodeWhole(b, v); err != nil {
			return fmt.Errorf("%w; nothing in it is used, it is not in this version's format: %v", &newerStateError{path, hdr.Version}, err)
		}
		return &newerStateError{path: path, version: hdr.Version}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &corruptStateError{path: path, err: err}
	}
	return nil
}

// decodeWhole decodes b into v, leaving v as it was if any of it fails.
func decodeWhole(b []byte, v any) error {
	tmp := reflect.New(reflect.TypeOf(v).Elem())
	if err := json.Unmarshal(b, tmp.Interface()); err != nil {
		return err
	}
	reflect.ValueOf(v).Elem().Set(tmp.Elem())
	return nil
}
