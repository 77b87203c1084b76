package xpcd

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// Processes are handled behind two small interfaces, so that the state
// machine can be tested with fakes: a launcher starts (or re-finds) a
// job's process, and a process is a handle on one, always through its
// pidfd, never by bare pid.

// launcher starts processes. launch and adopt may block (fork, exec, user
// lookups, opening files): they are never called on the supervisor's loop.
type launcher interface {
	launch(spec *spawnSpec) (*spawned, error)
	// adopt finds a process a previous xpcd launched, if it still runs
	// (same pid and same start time).
	adopt(rec processRecord) (*spawned, error)
	// marked lists the running processes that carry this xpcd's marker
	// (marker.go), oldest first: those it started, found without their
	// records.
	marked() ([]markedProcess, error)
}

// fileID identifies the contents of an executable well enough to notice
// that it was replaced.
type fileID struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
}

func statID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{Dev: st.Dev, Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano()}, nil
}

// spawnSpec is everything needed to start one instance of a job.
type spawnSpec struct {
	domain string
	owner  uint32 // the domain's owner; a user domain's jobs run as them when xpcd is root
	def    *launchd.Job
	env    []string // the base environment (before the job's own variables)
	marker string   // markerEnv's value
}

// spawned is a process that runs: started by launch or found by adopt.
type spawned struct {
	proc      process
	pid       int
	startTime uint64
	checkin   *os.File // xpcd's end of the check-in socket pair (nil when adopted)
	output    *output  // the FIFO its output goes to, nil if none
	exe       fileID
	marker    string // markerEnv's value in its environment, "" if unknown
}

// execLauncher is the real launcher: os/exec, pidfds, a SOCK_SEQPACKET
// check-in pair on descriptor 3.
type execLauncher struct {
	log       *slog.Logger
	root      bool     // xpcd runs as root: UserName/GroupName apply
	outputDir string   // where output FIFOs are made
	instance  string   // this xpcd's instance id (marker.go)
	logs      *jobLogs // the jobs' logs (joblog.go); nil: xpcd's log only
	// afterFork, if set, is called right after a process has started,
	// before anything is recorded of it: tests make xpcd die there.
	afterFork func(spec *spawnSpec, pid int)
}

func (l *execLauncher) launch(spec *spawnSpec) (_ *spawned, err error) {
	def := spec.def
	id, err := jobIdent(l.root, spec.domain, spec.owner, def, func(msg string) {
		l.log.Warn(msg, "label", def.Label, "UserName", def.UserName)
	})
	if err != nil {
		return nil, err
	}
	// The program is looked at as the job's user, who may have named any
	// path: what the checks say tells them nothing they could not see.
	var path string
	var argv []string
	var fid fileID
	if err := asUser(id, func() error {
		if err := l.checkProgram(spec); err != nil {
			return err
		}
		fid, _ = statID(def.Executable())
		var err error
		path, argv, err = spawnArgv(def)
		return err
	}); err != nil {
		return nil, err
	}
	var closers []*os.File
	defer func() {
		for _, f := range closers {
			f.Close()
		}
	}()
	stdio, out, err := l.openStdio(spec, id)
	closers = append(closers, stdio[:]...)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && out != nil {
			out.stop(true)
		}
	}()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("check-in socket pair: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "xpcd-checkin")
	theirs := os.NewFile(uintptr(fds[1]), "checkin")
	closers = append(closers, theirs)
	defer func() {
		if err != nil {
			mine.Close()
		}
	}()

	proc, err := l.start(spec, id, path, argv, stdio, theirs)
	if err != nil {
		return nil, err
	}
	pid := proc.pid
	// pid is our unreaped child: it cannot have been recycled.
	st, _ := startTime(pid)
	if out != nil {
		out.start(pid)
	}
	return &spawned{proc: proc, pid: pid, startTime: st, checkin: mine, output: out, exe: fid, marker: spec.marker}, nil
}

// start forks and execs the job's process with its environment, standard
// files and check-in socket (theirs), leading a process group of its own,
// and returns a handle on it.
func (l *execLauncher) start(spec *spawnSpec, id *ident, path string, argv []string, stdio [3]*os.File, theirs *os.File) (*pidfdProcess, error) {
	def := spec.def
	exe := def.Executable()
	pidfd := -1
	cmd := &exec.Cmd{
		Path:       path,
		Args:       argv,
		Env:        l.environment(spec, id),
		Dir:        orDefault(def.WorkingDirectory, "/"),
		Stdin:      stdio[0],
		Stdout:     stdio[1],
		Stderr:     stdio[2],
		ExtraFiles: []*os.File{theirs},
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:    true,
			PidFD:      &pidfd,
			Credential: id.credential(l.root),
		},
	}
	// A negative Nice is root's to give: in system (and root's own
	// domain), not in a user's.
	prio := priorityOf(def, spec.domain == DomainSystem || spec.owner == 0)
	if err := startWithPriority(prio, cmd.Start); err != nil {
		return nil, fmt.Errorf("spawn %s: %w", exe, err)
	}
	pid := cmd.Process.Pid
	if l.afterFork != nil {
		l.afterFork(spec, pid)
	}
	// Our pidfd is the handle; Go's own (a duplicate) is not needed.
	cmd.Process.Release()
	if pidfd < 0 {
		// No pidfd: the process runs, but could never be signalled
		// safely. Kernels without CLONE_PIDFD are not supported.
		return nil, fmt.Errorf("spawn %s: the kernel gave no pidfd (Linux 5.3 or later is needed)", exe)
	}
	return newPidfdProcess(pid, pidfd, true)
}

// openStdio opens the job's standard input, output and error: the files
// it names, opened as the job's user (id) so that it gets nothing it could
// not open itself, and created (0644, by the umask) as theirs; /dev/null
// for input it does not name; and for each output it does not name, a FIFO
// whose lines go to xpcd's log and the job's (output.go). The caller closes
// the three files; out is the FIFOs' reader, if one was made.
func (l *execLauncher) openStdio(spec *spawnSpec, id *ident) (stdio [3]*os.File, out *output, err error) {
	def := spec.def
	defer func() {
		if err != nil && out != nil {
			out.stop(true)
			out = nil
		}
	}()
	files := [3]struct {
		key, path string
		flag      int
	}{
		{"StandardInPath", orDefault(def.StandardInPath, os.DevNull), os.O_RDONLY},
		{"StandardOutPath", def.StandardOutPath, os.O_WRONLY | os.O_APPEND | os.O_CREATE},
		{"StandardErrorPath", def.StandardErrorPath, os.O_WRONLY | os.O_APPEND | os.O_CREATE},
	}
	var fifos [2]bool
	for i, f := range files {
		if f.path == "" {
			fifos[i-1] = true // (standard input is never "")
			continue
		}
		err = asUser(id, func() error {
			// O_NONBLOCK: opening a FIFO must not wait for its other
			// end (the flag is cleared below; files do not mind).
			var oerr error
			stdio[i], oerr = openNamed(f.path, f.flag|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0o644) // openpath.go
			return oerr
		})
		if err != nil {
			return stdio, out, fmt.Errorf("%s: %w", f.key, err)
		}
		if err := unix.SetNonblock(int(stdio[i].Fd()), false); err != nil {
			return stdio, out, fmt.Errorf("%s: %w", f.key, err)
		}
	}
	if fifos[0] || fifos[1] {
		var w [2]*os.File
		if out, w, err = newOutput(l.outputDir, l.sinkFor(logDomain(spec.domain, spec.owner), def.Label), fifos); err != nil {
			return stdio, nil, err
		}
		for i, f := range w {
			if f != nil {
				stdio[i+1] = f
			}
		}
	}
	return stdio, out, nil
}

// programOwners are the users who may own a job's program and the
// directories above it: root, and in a user domain its user; a xpcd that
// is not root also trusts its own user, as whom everything it starts runs.
func (l *execLauncher) programOwners(spec *spawnSpec) []uint32 {
	owners := []uint32{0}
	if spec.domain != DomainSystem && spec.owner != 0 {
		owners = append(owners, spec.owner)
	}
	if !l.root {
		owners = append(owners, uint32(os.Geteuid()))
	}
	return owners
}

// checkProgram refuses a program that someone other than its trusted owners
// could replace (bootstrap.RuleProgramOwner): a system daemon runs as root, so
// a program anyone could rewrite would run anyone's code as root. A program
// that does not exist, or that the job's user cannot reach, fails here as exec
// would, rather than be exec'd after someone made it in the meantime.
func (l *execLauncher) checkProgram(spec *spawnSpec) error {
	exe := spec.def.Executable()
	paths := []string{exe}
	if spec.def.Umask != nil {
		paths = append(paths, umaskShell)
	}
	for _, p := range paths {
		err := checkTrusted(p, l.programOwners(spec), false)
		switch {
		case errors.Is(err, errNotTrusted):
			return refusedBy(bootstrap.RuleProgramOwner, "program %s: %v", exe, err)
		case err != nil:
			return fmt.Errorf("spawn %s: %w", exe, unwrapPath(err))
		}
	}
	return nil
}

// unwrapPath is err without the path it names (a component of the
// program's path, which says more than exec's error would).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// environment is the job's environment: spec's base, the user's HOME, USER
// and LOGNAME, the job's EnvironmentVariables, then the check-in
// variables and the marker, which nothing overrides.
func (l *execLauncher) environment(spec *spawnSpec, id *ident) []string {
	env := append([]string(nil), spec.env...)
	if id != nil && id.name != "" {
		env = append(env, "HOME="+id.home, "USER="+id.name, "LOGNAME="+id.name)
	}
	for k, v := range spec.def.EnvironmentVariables {
		env = append(env, k+"="+v)
	}
	env = append(env, bootstrap.CheckinFDEnv+"=3", bootstrap.LabelEnv+"="+spec.def.Label)
	env = dedupEnv(env)
	if spec.marker == "" {
		return env
	}
	// The marker goes first, where a restarted xpcd reads it (markerOf),
	// and nothing the job's plist says replaces it.
	out := []string{markerEnv + "=" + spec.marker}
	for _, kv := range env {
		if k, _, _ := bytesCut(kv); k != markerEnv {
			out = append(out, kv)
		}
	}
	return out
}

// dedupEnv keeps the last value of each variable, in first-seen order.
func dedupEnv(env []string) []string {
	idx := map[string]int{}
	var out []string
	for _, kv := range env {
		k, _, _ := bytesCut(kv)
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

func bytesCut(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

func (l *execLauncher) adopt(rec processRecord) (*spawned, error) {
	fd, err := unix.PidfdOpen(rec.PID, 0)
	if err != nil {
		return nil, fmt.Errorf("pid %d: %w", rec.PID, err)
	}
	unix.CloseOnExec(fd)
	// The pidfd refers to whatever has the pid now. If it is alive after
	// its start time (and marker) were read, they were its own.
	st, err := startTime(rec.PID)
	if err == nil && (st != rec.StartTime || (rec.Marker != "" && !hasMarker(rec.PID, rec.Marker))) {
		err = fmt.Errorf("pid %d is another process now", rec.PID)
	}
	if err == nil && unix.PidfdSendSignal(fd, 0, nil, 0) != nil {
		err = fmt.Errorf("pid %d has ended", rec.PID)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	proc, err := newPidfdProcess(rec.PID, fd, false)
	if err != nil {
		return nil, err
	}
	sp := &spawned{proc: proc, pid: rec.PID, startTime: st, exe: rec.Exe, marker: rec.Marker}
	if rec.Output != "" {
		if o, err := reopenOutput(rec.Output, l.sinkFor(rec.Domain, rec.Label)); err == nil {
			o.start(rec.PID)
			sp.output = o
		}
	}
	return sp, nil
}

func (l *execLauncher) marked() ([]markedProcess, error) {
	return scanMarked(l.instance, l.outputDir)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// outputDirFor returns the directory for output FIFOs under runDir.
func outputDirFor(runDir string) string { return filepath.Join(runDir, "output") }

// umaskShell is the shell through which a job with a Umask is started: Go
// cannot set the umask of a child alone (SysProcAttr has no field for it,
// and xpcd's own umask is shared by all its goroutines), so the shell sets
// it and replaces itself with the program, keeping the pid.
const umaskShell = "/bin/sh"

// spawnArgv returns the path and argv to start def with. With a Umask the
// program is started through umaskShell, and its argv[0] is then its path
// (a POSIX shell cannot set argv[0] apart from the path it executes).
func spawnArgv(def *launchd.Job) (string, []string, error) {
	exe, argv := def.Executable(), def.Argv()
	if def.Umask == nil {
		return exe, argv, nil
	}
	// Fail as exec would, rather than as the shell's exit status 127.
	st, err := os.Stat(exe)
	switch {
	case err != nil:
		return "", nil, fmt.Errorf("spawn %s: %w", exe, err)
	case !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0:
		return "", nil, fmt.Errorf("spawn %s: not an executable file", exe)
	}
	if _, err := os.Stat(umaskShell); err != nil {
		return "", nil, fmt.Errorf("spawn %s: Umask needs %s: %w", exe, umaskShell, err)
	}
	script := fmt.Sprintf(`umask %04o && exec "$@"`, *def.Umask)
	args := append([]string{"sh", "-c", script, "sh", exe}, argv[1:]...)
	return umaskShell, args, nil
}

// Linux I/O priority (ioprio_set(2)).
const (
	ioprioWhoProcess = 1
	ioprioClassIdle  = 3
	ioprioClassShift = 13
	// backgroundNice is the nice value of a ProcessType Background job
	// that sets no Nice of its own.
	backgroundNice = 10
)

// priority is the scheduling and I/O priority of a job's process.
type priority struct {
	nice   int  // the nice value; 0 leaves xpcd's own
	idleIO bool // the idle I/O class
}

// priorityOf is the priority def's Nice and ProcessType ask for.
// Background: nice 10 (or its own Nice) and the idle I/O class, which gets
// the disk only when nobody else wants it. Standard, Adaptive and
// Interactive keep the normal class: Linux has no boost to give an
// interactive job without privileges, and Adaptive's boost while it serves
// requests is not done (it runs as Standard).
//
// A job whose definition is not root's (trusted false) gets no priority
// its user could not give itself: a negative Nice is ignored for it.
func priorityOf(def *launchd.Job, trusted bool) priority {
	p := priority{nice: def.Nice}
	if p.nice < 0 && !trusted {
		p.nice = 0
	}
	if def.ProcessType == launchd.ProcessTypeBackground {
		p.idleIO = true
		if p.nice == 0 {
			p.nice = backgroundNice
		}
	}
	return p
}

// startWithPriority calls start, which forks, on an OS thread of its own
// given priority p first, so that the new process starts with p. Linux
// keeps both values per thread, and a thread inherits them from the one
// that makes it: a process changed after the fork would keep the old
// values on the threads it had made by then (a Go program makes several
// before its main function runs). The thread is never unlocked: it ends
// with its goroutine, and p with it. Failures to set p are ignored, as
// launchd ignores them: the job runs either way.
func startWithPriority(p priority, start func() error) error {
	if p == (priority{}) {
		return start()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Who 0: the calling thread.
		if p.idleIO {
			unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, ioprioClassIdle<<ioprioClassShift)
		}
		if p.nice != 0 {
			unix.Setpriority(unix.PRIO_PROCESS, 0, p.nice)
		}
		done <- start()
	}()
	return <-done
}
