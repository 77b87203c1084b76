package xpcd

import (
	"bytes"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/goxpc/xpc"
	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc/launchd"
)

// print's status keys: what systemctl status shows of a unit, added to a
// job's dictionary (jobDict) by print alone. The keys of the definition
// (that of the running instance, which an upgrade may have replaced since)
// are set on the loop by setStatusKeys; the running process's numbers are
// read from /proc off the loop, on the session, by addProcKeys.
//
//	arguments               array of strings: ProgramArguments (argv[0] included)
//	environment             dictionary: EnvironmentVariables, name to value,
//	                        for a caller who may change the job's domain
//	environment_names       array of strings: their names alone, for any
//	                        other caller (a system job's values are root's)
//	user_name, group_name   strings: UserName and GroupName, if set
//	working_directory       string: WorkingDirectory, or "/"
//	stdin, stdout, stderr   strings: StandardInPath (or /dev/null),
//	                        StandardOutPath, StandardErrorPath, or "xpcd log"
//	                        when xpcd keeps the output
//	started_at              date: when the running instance started
//
// Of the running process, read from /proc/PID (omitted for an in-process
// instance, which has no process of its own, and when the process has
// ended or could not be read):
//
//	uid, gid                int64: its real user and group
//	user, group             strings: their names, if they have one
//	rss_bytes               int64: its resident set (VmRSS)
//	threads                 int64
//	cpu_user_ms, cpu_system_ms  int64: CPU time spent in user and kernel mode
//	cgroup                  string: its cgroup (v2), if not xpcd's own
//	cgroup_memory_bytes     int64: that cgroup's memory.current
const (
	keyArguments   = "arguments"
	keyEnvironment = "environment"
	keyEnvNames    = "environment_names"
	keyStartedAt   = "started_at"
	xpcdLogOutput  = "xpcd log"
)

// procQuery is what addProcKeys needs of a running instance, copied on
// the loop.
type procQuery struct {
	pid       int
	startTime uint64 // field 22 of its /proc/PID/stat when it was launched or adopted
}

// setStatusKeys sets print's status keys of j's definition on d, on the
// loop; uid is the caller's. It returns the process whose numbers
// addProcKeys is to read, nil when nothing runs (or an in-process
// instance does).
func setStatusKeys(d *xpc.Dictionary, j *job, uid uint32) *procQuery {
	def := j.def
	inst := j.inst
	if inst != nil {
		def = inst.def
	}
	d.Set(keyArguments, strArray(def.Argv()))
	setEnvKeys(d, def, mayModify(uid, j.dom.name, j.dom.owner))
	if def.UserName != "" {
		d.Set("user_name", xpc.String(def.UserName))
	}
	if def.GroupName != "" {
		d.Set("group_name", xpc.String(def.GroupName))
	}
	d.Set("working_directory", xpc.String(orDefault(def.WorkingDirectory, "/")))
	d.Set("stdin", xpc.String(orDefault(def.StandardInPath, os.DevNull)))
	d.Set("stdout", xpc.String(orDefault(def.StandardOutPath, xpcdLogOutput)))
	d.Set("stderr", xpc.String(orDefault(def.StandardErrorPath, xpcdLogOutput)))
	if inst == nil || inst.spawning {
		return nil
	}
	d.Set(keyStartedAt, xpc.DateOf(inst.started))
	if inst.pid <= 0 {
		return nil // in process: no /proc of its own
	}
	return &procQuery{pid: inst.pid, startTime: inst.startTime}
}

// setEnvKeys sets environment (values shown) or environment_names.
func setEnvKeys(d *xpc.Dictionary, def *launchd.Job, values bool) {
	if len(def.EnvironmentVariables) == 0 {
		return
	}
	names := sortedKeys(def.EnvironmentVariables)
	if !values {
		d.Set(keyEnvNames, strArray(names))
		return
	}
	env := xpc.NewDictionary(len(names))
	for _, k := range names {
		env.Set(k, xpc.String(def.EnvironmentVariables[k]))
	}
	d.Set(keyEnvironment, env)
}

// procNumbers is what print shows of a running process.
type procNumbers struct {
	uid, gid       int64
	rss            int64 // bytes
	threads        int64
	utime, stime   int64 // ms
	cgroup         string
	cgroupMem      int64
	cgroupMemKnown bool
}

// addProcKeys reads q's process from /proc, off the loop, as the caller
// (id: what they could read of it themselves, under /proc's hidepid), and
// adds its numbers to d. Nothing is added when the process has ended or
// its pid is another process's now.
func addProcKeys(d *xpc.Dictionary, q *procQuery, id *ident) {
	if q == nil {
		return
	}
	var n procNumbers
	if err := asUser(id, func() error {
		var err error
		n, err = readProcNumbers(q)
		return err
	}); err != nil {
		return
	}
	d.Set("uid", xpc.Int64(n.uid))
	d.Set("gid", xpc.Int64(n.gid))
	if u, err := user.LookupId(strconv.FormatInt(n.uid, 10)); err == nil {
		d.Set("user", xpc.String(u.Username))
	}
	if g, err := user.LookupGroupId(strconv.FormatInt(n.gid, 10)); err == nil {
		d.Set("group", xpc.String(g.Name))
	}
	d.Set("rss_bytes", xpc.Int64(n.rss))
	d.Set("threads", xpc.Int64(n.threads))
	d.Set("cpu_user_ms", xpc.Int64(n.utime))
	d.Set("cpu_system_ms", xpc.Int64(n.stime))
	if n.cgroup != "" {
		d.Set("cgroup", xpc.String(n.cgroup))
		if n.cgroupMemKnown {
			d.Set("cgroup_memory_bytes", xpc.Int64(n.cgroupMem))
		}
	}
}

var errProcessChanged = errors.New("not the instance's process")

// readProcNumbers reads /proc/PID/stat and status. The process is held
// by a pidfd opened first: if it is still alive after the reads, and its
// start time is the instance's, the files read were the instance's (a
// pid is reused only once its process has ended).
func readProcNumbers(q *procQuery) (procNumbers, error) {
	fd, err := unix.PidfdOpen(q.pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return procNumbers{}, err
	}
	defer unix.Close(fd)
	dir := "/proc/" + strconv.Itoa(q.pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return procNumbers{}, err
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return procNumbers{}, err
	}
	cg, _ := os.ReadFile(dir + "/cgroup")
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 0); err != nil || n > 0 {
		return procNumbers{}, errProcessChanged // it has ended
	}
	var n procNumbers
	start, err := parseStatNumbers(stat, &n)
	if err != nil {
		return procNumbers{}, err
	}
	if start != q.startTime {
		return procNumbers{}, errProcessChanged
	}
	if err := parseStatusNumbers(status, &n); err != nil {
		return procNumbers{}, err
	}
	n.cgroup = ownCgroup(cg)
	if n.cgroup != "" {
		n.cgroupMem, n.cgroupMemKnown = cgroupMemory(n.cgroup)
	}
	return n, nil
}

// clockTick is the unit of /proc/PID/stat's times: USER_HZ, which Linux
// fixes at 100 for what it shows user space.
const clockTick = 100

// parseStatNumbers reads utime, stime, num_threads and starttime
// (fields 14, 15, 20 and 22) of /proc/PID/stat into n, and returns the
// start time.
func parseStatNumbers(b []byte, n *procNumbers) (uint64, error) {
	// The command name (field 2) is in parentheses and may hold anything:
	// count fields after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("/proc/PID/stat: malformed")
	}
	f := bytes.Fields(b[i+1:])
	field := func(k int) uint64 {
		if k-3 >= len(f) {
			return 0
		}
		v, _ := strconv.ParseUint(string(f[k-3]), 10, 64) // field 3 is f[0]
		return v
	}
	if len(f) <= 22-3 {
		return 0, errors.New("/proc/PID/stat: malformed")
	}
	n.utime = int64(field(14) * 1000 / clockTick)
	n.stime = int64(field(15) * 1000 / clockTick)
	n.threads = int64(field(20))
	return field(22), nil
}

// parseStatusNumbers reads the real uid and gid and VmRSS of
// /proc/PID/status into n.
func parseStatusNumbers(b []byte, n *procNumbers) error {
	var seen int
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		x, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "Uid":
			n.uid = x
			seen++
		case "Gid":
			n.gid = x
			seen++
		case "VmRSS":
			n.rss = x << 10 // kB
		}
	}
	if seen != 2 {
		return errors.New("/proc/PID/status: no Uid or Gid")
	}
	return nil
}

// ownCgroup returns the cgroup v2 path in a /proc/PID/cgroup, or "" if
// there is none or it is xpcd's own (whose memory is not the job's).
func ownCgroup(b []byte) string {
	path := cgroupV2(b)
	if path == "" {
		return ""
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	if cgroupV2(self) == path {
		return ""
	}
	return path
}

func cgroupV2(b []byte) string {
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok && strings.HasPrefix(p, "/") {
			return p
		}
	}
	return ""
}

// cgroupMemory reads memory.current of a cgroup v2 path, as the kernel
// names it.
func cgroupMemory(path string) (int64, bool) {
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", filepath.Clean(path), "memory.current"))
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}
