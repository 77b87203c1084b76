package xpcd

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/launchd"
)

// A domain's directories are those its plists load from: LaunchDaemons
// for system, LaunchAgents for a user domain (jobstore.go, ensure). They
// are xpcd's own directories, read with xpcd's rights as the job store
// reads them. enable and disable look in them for a label that is not
// loaded (knownLabel); plistgone.go watches them for plists deleted.

// domainDirs returns the directories whose plists load into the domain
// dom, cleaned, without repeats. It reads only what never changes after
// New, so it may be called off the loop.
func (m *supervisor) domainDirs(dom string) []string {
	var dirs []string
	add := func(dir string) {
		if dir == "" {
			return
		}
		if dir = filepath.Clean(dir); !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	if m.jobs != nil {
		for _, src := range m.jobs.sources {
			if src.domain == dom {
				add(src.dir)
			}
		}
	}
	if !m.userMode && dom != DomainSystem {
		add(m.agentsDir)
	}
	return dirs
}

// allDomainDirs returns every directory plists load from, in any domain.
func (m *supervisor) allDomainDirs() []string {
	var dirs []string
	if m.jobs != nil {
		for _, src := range m.jobs.sources {
			dirs = append(dirs, filepath.Clean(src.dir))
		}
	}
	if !m.userMode && m.agentsDir != "" {
		dirs = append(dirs, filepath.Clean(m.agentsDir))
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// inDomainDir reports whether path is a plist directly in one of dirs.
func inDomainDir(path string, dirs []string) bool {
	return path != "" && slices.Contains(dirs, filepath.Dir(filepath.Clean(path)))
}

// knownLabel refuses (reason not-found) enable or disable of a label the
// target's domain does not know: not loaded, with no plist of that Label
// in the domain's directories and, for enable, no override already (so
// that a stale override can still be removed). Permission has been
// checked; nothing is changed here. The directories are read on the
// session, off the loop.
func (ss *session) knownLabel(t Target, disable bool) *opError {
	var known bool
	var dirs []string
	var oe *opError
	if e := ss.do(func() {
		m := ss.m
		d := m.domains[t.Domain]
		if m.userMode && d == nil {
			_, oe = m.served(t.Domain, t.UID)
			return
		}
		_, hasOverride := m.overrides[t.Domain][t.Label]
		known = (d != nil && d.jobs[t.Label] != nil) || (!disable && hasOverride)
		dirs = m.domainDirs(t.Domain)
	}); e != nil {
		return e
	}
	if oe != nil || known || labelInDirs(t.Label, dirs) {
		return oe
	}
	if len(dirs) == 0 {
		return notFound("no job %s in %s: not loaded, and no plist directory loads into %s", t.Label, t.Domain, t.Domain)
	}
	return notFound("no job %s in %s: not loaded and in no plist of %s", t.Label, t.Domain, strings.Join(dirs, " or "))
}

// labelInDirs reports whether a plist in one of dirs (as the job store
// scans them: *.plist, not hidden) declares label: LABEL.plist is looked
// at first, then the others. A plist counts whether or not it loads.
func labelInDirs(label string, dirs []string) bool {
	for _, dir := range dirs {
		first := label + ".plist"
		if !strings.HasPrefix(first, ".") && plistLabel(filepath.Join(dir, first)) == label {
			return true
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			n := e.Name()
			if n == first || !strings.HasSuffix(n, ".plist") || strings.HasPrefix(n, ".") {
				continue
			}
			if plistLabel(filepath.Join(dir, n)) == label {
				return true
			}
		}
	}
	return false
}

// plistLabel returns the Label a plist declares, "" if it is not a
// regular file of at most launchd.MaxFileSize bytes whose root is a
// dictionary with a string Label.
func plistLabel(path string) string {
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() > launchd.MaxFileSize {
		return ""
	}
	data, err := io.ReadAll(io.LimitReader(f, launchd.MaxFileSize+1))
	if err != nil || len(data) > launchd.MaxFileSize {
		return ""
	}
	obj, _, err := xpc.FromPlist(data)
	if err != nil {
		return ""
	}
	d, ok := obj.(*xpc.Dictionary)
	if !ok {
		return ""
	}
	label, _ := d.String("Label")
	return label
}

// plistDeletedText says what became of a marked job, for refusals.
func plistDeletedText(j *job) string {
	return fmt.Sprintf("job %s: its plist %s was deleted; it is not launched again, and is unloaded when its instance exits", j.target(), j.gone)
}
