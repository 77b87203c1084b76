package bundle

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goxpc/xpc/launchd"
)

// Limits on what Read accepts.
const (
	// MaxServices is the most XPC services a bundle may hold.
	MaxServices = 32
	// MaxLaunchPlists is the most plists each of Library/LaunchAgents and
	// Library/LaunchDaemons may hold.
	MaxLaunchPlists = 64
	// MaxInfoPlistSize is the largest Info.plist read, in bytes.
	MaxInfoPlistSize = 1 << 20
	// MaxBundleBytes bounds the plists of one bundle together (its
	// Info.plists and job plists), in bytes: each may be as large as
	// MaxInfoPlistSize or launchd.MaxFileSize, but not all of them, which
	// would make one Read hold hundreds of megabytes.
	MaxBundleBytes = 4 << 20
	// maxDirEntries bounds the entries of a directory Read lists
	// (XPCServices, LaunchAgents, LaunchDaemons), ignored ones included.
	maxDirEntries = 1024
	// maxVersionLen bounds CFBundleVersion, in bytes.
	maxVersionLen = 255
)

// Layout is where a bundle keeps its files.
type Layout int

// The layouts.
const (
	// Flat is the Linux layout: ROOT/Info.plist, ROOT/EXECUTABLE,
	// ROOT/XPCServices, ROOT/Library.
	Flat Layout = 1
	// Contents is the macOS layout: ROOT/Contents/Info.plist,
	// ROOT/Contents/MacOS/EXECUTABLE, ROOT/Contents/XPCServices,
	// ROOT/Contents/Library.
	Contents Layout = 2
)

// String returns "Flat" or "Contents".
func (l Layout) String() string {
	switch l {
	case Flat:
		return "Flat"
	case Contents:
		return "Contents"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// base is where the layout keeps Info.plist, XPCServices and Library,
// relative to the root: "" or "Contents/".
func (l Layout) base() string {
	if l == Contents {
		return "Contents/"
	}
	return ""
}

// exeDir is where the layout keeps executables, relative to base.
func (l Layout) exeDir() string {
	if l == Contents {
		return "Contents/MacOS/"
	}
	return ""
}

// ServiceType says how many instances of an XPC service run, and for whom
// (the XPCService ServiceType key).
type ServiceType int

// The service types.
const (
	// Application: one instance per client application (the default).
	Application ServiceType = 0
	// User: one instance per user.
	User ServiceType = 1
	// System: one instance per machine.
	System ServiceType = 2
)

// String returns "Application", "User" or "System".
func (t ServiceType) String() string {
	switch t {
	case Application:
		return "Application"
	case User:
		return "User"
	case System:
		return "System"
	}
	return fmt.Sprintf("ServiceType(%d)", int(t))
}

// ParseServiceType reads a ServiceType as Info.plist spells it.
func ParseServiceType(s string) (ServiceType, error) {
	switch s {
	case "Application":
		return Application, nil
	case "User":
		return User, nil
	case "System":
		return System, nil
	}
	return 0, fmt.Errorf("%w: ServiceType %q: want Application, User or System", ErrBadBundle, s)
}

// Bundle is an application bundle as Read found it. All paths are
// absolute and inside Root.
type Bundle struct {
	Root       string // absolute, cleaned, as given (symbolic links not resolved)
	Layout     Layout
	Identifier string // CFBundleIdentifier
	Version    string // CFBundleVersion, "" if none
	Executable string // absolute path of the main executable
	// Services are the bundle's XPC services, sorted by Identifier; at
	// most MaxServices.
	Services []*Service
	// Agents are the job plists of Library/LaunchAgents, sorted by Name;
	// at most MaxLaunchPlists.
	Agents []*LaunchPlist
	// Daemons are the job plists of Library/LaunchDaemons, sorted by
	// Name; at most MaxLaunchPlists.
	Daemons []*LaunchPlist
}

// Service is an XPC service of a bundle: a NAME.xpc directory of
// XPCServices.
type Service struct {
	Identifier string // its CFBundleIdentifier: the name its clients look up
	Name       string // the directory name without ".xpc"
	Dir        string // absolute path of the .xpc directory
	Executable string // absolute path of its executable
	Type       ServiceType
	// Environment is XPCService.EnvironmentVariables, nil if none.
	Environment map[string]string
	// JoinExistingSession is XPCService.JoinExistingSession: xpcd gives an
	// Application service with it its application's session.
	JoinExistingSession bool
	// IdleExitTimeout is XPCService.IdleExitTimeout; 0: the default of
	// whoever runs the service.
	IdleExitTimeout time.Duration
}

// LaunchPlist is a job plist of a bundle's Library/LaunchAgents or
// Library/LaunchDaemons.
type LaunchPlist struct {
	Name string // file name, e.g. "com.example.agent.plist"
	Path string // absolute
	// Job is the parsed job; Program is the absolute path its
	// BundleProgram names.
	Job *launchd.Job
}

// Service returns the service whose CFBundleIdentifier is identifier, or
// nil.
func (b *Bundle) Service(identifier string) *Service {
	i, ok := slices.BinarySearchFunc(b.Services, identifier, func(s *Service, id string) int { return strings.Compare(s.Identifier, id) })
	if !ok {
		return nil
	}
	return b.Services[i]
}

// Agent returns the plist of Library/LaunchAgents named name (a file name,
// such as "com.example.agent.plist"), or nil.
func (b *Bundle) Agent(name string) *LaunchPlist { return findPlist(b.Agents, name) }

// Daemon returns the plist of Library/LaunchDaemons named name, or nil.
func (b *Bundle) Daemon(name string) *LaunchPlist { return findPlist(b.Daemons, name) }

func findPlist(list []*LaunchPlist, name string) *LaunchPlist {
	i, ok := slices.BinarySearchFunc(list, name, func(p *LaunchPlist, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return nil
	}
	return list[i]
}

// Read reads the application bundle in the directory dir and validates
// all of it: its Info.plist, its main executable, each XPC service, and
// each plist of Library/LaunchAgents and Library/LaunchDaemons (see the
// package documentation for the rules). It needs no privilege beyond
// reading the bundle, and follows no symbolic link inside it.
//
// Errors are *Error, wrapping ErrNotBundle when neither layout's
// Info.plist is there, ErrBadBundle when something breaks a rule, or the
// file system's error (fs.ErrNotExist, fs.ErrPermission, ...).
func Read(dir string) (*Bundle, error) {
	if dir == "" {
		return nil, &Error{Path: dir, Err: fmt.Errorf("%w: no directory given", ErrNotBundle)}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, &Error{Path: dir, Err: err}
	}
	rd, err := openRoot(abs)
	if err != nil {
		return nil, err
	}
	defer rd.close()
	layout, err := detectLayout(rd)
	if err != nil {
		return nil, err
	}
	if layout == Flat && filepath.Base(abs) == "Contents" {
		// The inside of a Contents-layout bundle, given for the bundle
		// (Find never takes such a directory for a root either).
		return nil, &Error{Path: abs, Err: fmt.Errorf("%w: a directory named Contents is the inside of a bundle, not one: give the bundle, %s", ErrBadBundle, filepath.Dir(abs))}
	}
	b := &Bundle{Root: abs, Layout: layout}
	r := reader{root: rd, layout: layout, left: MaxBundleBytes}
	if err := r.main(b); err != nil {
		return nil, err
	}
	if b.Services, err = r.services(b); err != nil {
		return nil, err
	}
	if b.Agents, err = r.launchPlists("LaunchAgents"); err != nil {
		return nil, err
	}
	if b.Daemons, err = r.launchPlists("LaunchDaemons"); err != nil {
		return nil, err
	}
	return b, nil
}

// detectLayout finds which layout's Info.plist the root holds.
func detectLayout(rd *dir) (Layout, error) {
	contents, err := rd.exists("Contents/Info.plist")
	if err != nil {
		return 0, err
	}
	flat, err := rd.exists("Info.plist")
	if err != nil {
		return 0, err
	}
	switch {
	case contents && flat:
		return 0, &Error{Path: rd.path, Err: fmt.Errorf("%w: both Info.plist and Contents/Info.plist: which layout is meant?", ErrBadBundle)}
	case contents:
		return Contents, nil
	case flat:
		return Flat, nil
	}
	return 0, &Error{Path: rd.path, Err: fmt.Errorf("%w: no Info.plist or Contents/Info.plist", ErrNotBundle)}
}

// reader reads the parts of one bundle.
type reader struct {
	root   *dir
	layout Layout
	left   int64 // of MaxBundleBytes
}

// read reads the regular file rel of d, at most max bytes, and at most
// what is left of MaxBundleBytes.
func (r *reader) read(d *dir, rel string, max int64) ([]byte, error) {
	if r.left < max {
		if r.left <= 0 {
			return nil, &Error{Path: d.join(rel), Err: fmt.Errorf("%w: the bundle's plists are larger than %d bytes together", ErrBadBundle, MaxBundleBytes)}
		}
		data, err := d.readFile(rel, r.left)
		var tl tooLarge
		if errors.As(err, &tl) {
			return nil, &Error{Path: d.join(rel), Err: fmt.Errorf("%w: the bundle's plists are larger than %d bytes together", ErrBadBundle, MaxBundleBytes)}
		}
		r.left -= int64(len(data))
		return data, err
	}
	data, err := d.readFile(rel, max)
	r.left -= int64(len(data))
	return data, err
}

func (r *reader) main(b *Bundle) error {
	in, err := readInfo(r, r.root, r.layout.base()+"Info.plist", false)
	if err != nil {
		return err
	}
	b.Identifier, b.Version = in.identifier, in.version
	b.Executable, err = r.root.checkExecutable(r.layout.exeDir() + in.executable)
	return err
}

// services reads XPCServices.
func (r *reader) services(b *Bundle) ([]*Service, error) {
	rel := r.layout.base() + "XPCServices"
	names, sd, err := r.list(rel, ".xpc", MaxServices, "XPC services")
	if sd == nil || err != nil {
		return nil, err
	}
	defer sd.close()
	var out []*Service
	for _, n := range names {
		s, err := r.service(sd, n)
		if err != nil {
			return nil, err
		}
		if s.Identifier == b.Identifier {
			return nil, &Error{Path: s.Dir, Err: fmt.Errorf("%w: the service's CFBundleIdentifier %s is the application's", ErrBadBundle, s.Identifier)}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Service) int { return strings.Compare(a.Identifier, b.Identifier) })
	for i := 1; i < len(out); i++ {
		if out[i].Identifier == out[i-1].Identifier {
			return nil, &Error{Path: out[i].Dir, Err: fmt.Errorf("%w: CFBundleIdentifier %s is also that of %s", ErrBadBundle, out[i].Identifier, out[i-1].Dir)}
		}
	}
	return out, nil
}

// service reads the service in the directory name of sd.
func (r *reader) service(sd *dir, name string) (*Service, error) {
	xd, err := sd.openDir(name)
	if err != nil {
		return nil, err
	}
	defer xd.close()
	in, err := readInfo(r, xd, r.layout.base()+"Info.plist", true)
	if err != nil {
		return nil, err
	}
	exe, err := xd.checkExecutable(r.layout.exeDir() + in.executable)
	if err != nil {
		return nil, err
	}
	return &Service{
		Identifier:          in.identifier,
		Name:                strings.TrimSuffix(name, ".xpc"),
		Dir:                 xd.path,
		Executable:          exe,
		Type:                in.svc.typ,
		Environment:         in.svc.env,
		JoinExistingSession: in.svc.joinSession,
		IdleExitTimeout:     in.svc.idleExit,
	}, nil
}

// launchPlists reads Library/<sub>.
func (r *reader) launchPlists(sub string) ([]*LaunchPlist, error) {
	names, ld, err := r.list(r.layout.base()+"Library/"+sub, ".plist", MaxLaunchPlists, "plists")
	if ld == nil || err != nil {
		return nil, err
	}
	defer ld.close()
	out := make([]*LaunchPlist, 0, len(names))
	labels := map[string]string{}
	for _, n := range names {
		lp, err := r.launchPlist(ld, n)
		if err != nil {
			return nil, err
		}
		if other, dup := labels[lp.Job.Label]; dup {
			return nil, &Error{Path: lp.Path, Err: fmt.Errorf("%w: Label %s is also that of %s", ErrBadBundle, lp.Job.Label, other)}
		}
		labels[lp.Job.Label] = lp.Name
		out = append(out, lp)
	}
	return out, nil
}

// launchPlist reads the job plist name of ld, and resolves its
// BundleProgram.
func (r *reader) launchPlist(ld *dir, name string) (*LaunchPlist, error) {
	data, err := r.read(ld, name, launchd.MaxFileSize)
	if err != nil {
		return nil, err
	}
	p := ld.join(name)
	// Path "": the *Error names the file once.
	j, err := launchd.Parse("", data)
	if err != nil {
		return nil, &Error{Path: p, Err: fmt.Errorf("%w: %w", ErrBadBundle, err)}
	}
	j.Path = p
	switch {
	case j.BundleProgram == "":
		return nil, &Error{Path: p, Err: fmt.Errorf("%w: no BundleProgram: a bundle's job names its executable with BundleProgram, relative to the bundle", ErrBadBundle)}
	case j.Program != "":
		return nil, &Error{Path: p, Err: fmt.Errorf("%w: Program beside BundleProgram: a bundle's job names its executable with BundleProgram only", ErrBadBundle)}
	}
	if j.Program, err = r.root.checkExecutable(j.BundleProgram); err != nil {
		return nil, err
	}
	return &LaunchPlist{Name: name, Path: p, Job: j}, nil
}

// list returns the sorted names in the directory rel of the root that end
// in suffix, and the open directory; a nil directory and no error when
// rel does not exist. More than max such names is an error, as is a
// directory of more than maxDirEntries entries.
func (r *reader) list(rel, suffix string, max int, what string) ([]string, *dir, error) {
	d, err := r.root.openDir(rel)
	if err != nil {
		if isNotExist(err) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	var names []string
	seen := 0
	for {
		ents, err := d.f.ReadDir(64)
		for _, e := range ents {
			seen++
			n := e.Name()
			if len(n) > len(suffix) && strings.HasSuffix(n, suffix) {
				names = append(names, n)
			}
		}
		switch {
		case len(names) > max:
			d.close()
			return nil, nil, &Error{Path: d.path, Err: fmt.Errorf("%w: more than %d %s", ErrBadBundle, max, what)}
		case seen > maxDirEntries:
			d.close()
			return nil, nil, &Error{Path: d.path, Err: fmt.Errorf("%w: more than %d entries", ErrBadBundle, maxDirEntries)}
		case err != nil && len(ents) == 0:
			if isEOF(err) {
				slices.Sort(names)
				return names, d, nil
			}
			d.close()
			return nil, nil, &Error{Path: d.path, Err: fsErr("readdir", err)}
		}
	}
}
