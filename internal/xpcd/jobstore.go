package xpcd

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// The job store knows where job definitions come from (the LaunchAgents and
// LaunchDaemons directories, and paths given to bootstrap) and reads them:
// a plist either loads whole or is rejected with the file, the key and the
// reason. Which jobs are loaded in which domain is the supervisor's.

// loadError is a job definition that was rejected.
type loadError struct {
	Domain string
	File   string
	Key    string
	Reason string
}

func (e loadError) String() string {
	s := e.File + ": "
	if e.Key != "" {
		s += e.Key + ": "
	}
	return s + e.Reason
}

// source is a directory of plists loaded into one domain at start.
type source struct {
	domain string
	owner  uint32
	dir    string
}

type jobStore struct {
	log     *slog.Logger
	sources []source

	// What start read, per domain: jobs in file-name order, and the
	// files that were rejected.
	initial       map[string][]*launchd.Job
	initialErrors map[string][]loadError
}

func newJobStore(sources []source, log *slog.Logger) *jobStore {
	return &jobStore{log: log, sources: sources}
}

func (s *jobStore) name() string { return "jobs" }

func (s *jobStore) start(context.Context) error {
	s.initial = map[string][]*launchd.Job{}
	s.initialErrors = map[string][]loadError{}
	for _, src := range s.sources {
		jobs, errs := s.scan(src)
		s.initial[src.domain] = append(s.initial[src.domain], jobs...)
		s.initialErrors[src.domain] = append(s.initialErrors[src.domain], errs...)
	}
	return nil
}

func (s *jobStore) close(context.Context) error { return nil }

// scan loads every *.plist in a source directory. A missing directory is
// an empty one.
func (s *jobStore) scan(src source) ([]*launchd.Job, []loadError) {
	ents, err := os.ReadDir(src.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		le := loadError{Domain: src.domain, File: src.dir, Reason: err.Error()}
		s.log.Error("jobs: cannot read directory", "domain", src.domain, "dir", src.dir, "err", err)
		return nil, []loadError{le}
	}
	var jobs []*launchd.Job
	var errs []loadError
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".plist") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		j, lerrs := loadPlist(src.domain, src.owner, filepath.Join(src.dir, e.Name()))
		if lerrs != nil {
			for _, le := range lerrs {
				s.log.Error("jobs: rejected", "domain", src.domain, "file", le.File, "key", le.Key, "reason", le.Reason)
			}
			errs = append(errs, lerrs...)
			continue
		}
		for _, w := range j.Warnings {
			s.log.Warn("jobs: ignored key", "domain", src.domain, "file", j.Path, "key", w.Key, "reason", w.Reason)
		}
		jobs = append(jobs, j)
	}
	return jobs, errs
}

// loadPlist reads one job definition for a domain owned by owner from a
// directory of xpcd's own (LaunchAgents, LaunchDaemons), as loadPlistFile
// does.
func loadPlist(domain string, owner uint32, path string) (*launchd.Job, []loadError) {
	if !filepath.IsAbs(path) {
		return nil, []loadError{{Domain: domain, File: path, Reason: "not an absolute path"}}
	}
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, []loadError{{Domain: domain, File: path, Reason: openReason(err)}}
	}
	defer f.Close()
	return loadPlistFile(domain, owner, f, path)
}

// loadPlistFile reads one job definition for a domain owned by owner from
// f, opened by whoever asked (xpcd for its own directories, the requester
// for bootstrap). Besides the launchd package's validation, the file must
// belong to root or the owner and be writable by nobody else
// (bootstrap.PlistFileProblem, which xpcctl's plist lint applies too).
func loadPlistFile(domain string, owner uint32, f *os.File, path string) (*launchd.Job, []loadError) {
	if fi, err := f.Stat(); err == nil {
		if why := bootstrap.PlistFileProblem(fi, owner, uint32(os.Geteuid())); why != "" {
			return nil, []loadError{{Domain: domain, File: path, Reason: why}}
		}
	}
	j, err := launchd.LoadFile(f, path)
	if err != nil {
		return nil, launchdErrors(domain, path, err)
	}
	if why := bootstrap.BundleProgramProblem(j.BundleProgram, j.Program); why != "" {
		return nil, []loadError{{Domain: domain, File: path, Key: "BundleProgram", Reason: why}}
	}
	return j, nil
}

// openReason is why a plist could not be opened, without the path the
// load error names already.
func openReason(err error) string {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// launchdErrors turns the launchd package's error for path into load
// errors.
func launchdErrors(domain, path string, err error) []loadError {
	var out []loadError
	for _, e := range launchd.Errors(err) {
		out = append(out, loadError{Domain: domain, File: orDefault(e.File, path), Key: e.Key, Reason: e.Reason})
	}
	if out == nil {
		out = []loadError{{Domain: domain, File: path, Reason: err.Error()}}
	}
	return out
}

// sortedLabels returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
