package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
)

// lab holds the binaries and every process the benchmark started, so that
// close can stop them all, whatever went wrong.
type lab struct {
	tmp     string // temporary directory: binaries and instance roots
	xpcdBin string
	svcBin  string
	floor   string // the lookup+connect baseline (cmd/xpcdbench/floor)
	uid     int
	procs   int // GOMAXPROCS for xpcd and the services; 0: Go's default

	mu        sync.Mutex
	instances []*instance
	services  map[int]bool // service pids seen in replies
}

// instance is one running xpcd with its own XPCD_ROOT.
type instance struct {
	root  string
	sock  string
	cmd   *exec.Cmd
	log   string // xpcd's standard error
	done  chan struct{}
	admin *xpc.Connection // a bootstrap connection for list and print

	stopped bool
}

// findDirs returns the repository root (the main module) and the bench
// module's directory, from the module the go command sees in the current
// directory: the bench module (run from bench/) or the main module (run
// from the root).
func findDirs(ctx context.Context) (root, bench string, err error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", "", errors.New("not inside a Go module: run from the repository or its bench directory")
	}
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", "", err
	}
	dir := filepath.Dir(gomod)
	switch modulePath(data) {
	case "github.com/goxpc/xpc/bench":
		return filepath.Dir(dir), dir, nil
	case "github.com/goxpc/xpc":
		return dir, filepath.Join(dir, "bench"), nil
	}
	return "", "", fmt.Errorf("%s is neither goxpc's module nor its bench module: run from the repository or its bench directory", gomod)
}

func modulePath(gomod []byte) string {
	for line := range bytes.Lines(gomod) {
		f := strings.Fields(string(line))
		if len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// build compiles xpcd (from the commands' module), the benchmark's service
// and the floor baseline (from the bench module) into l.tmp.
func (l *lab) build(ctx context.Context, root, bench string) error {
	l.xpcdBin = filepath.Join(l.tmp, "xpcd")
	l.svcBin = filepath.Join(l.tmp, "service")
	l.floor = filepath.Join(l.tmp, "floor")
	dir, pkg := xpcdPackage(root)
	for _, b := range []struct{ dir, out, pkg string }{
		{dir, l.xpcdBin, pkg},
		{bench, l.svcBin, "./cmd/xpcdbench/service"},
		{bench, l.floor, "./cmd/xpcdbench/floor"},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.out, b.pkg)
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s in %s: %v\n%s", b.pkg, b.dir, err, out)
		}
	}
	return nil
}

// buildBase builds xpcd at git revision rev of the repository root (from
// `git archive`, which leaves the repository as it is) into l.tmp.
func (l *lab) buildBase(ctx context.Context, root, rev string) (string, error) {
	src := filepath.Join(l.tmp, "base-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", rev)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	var stderr strings.Builder
	archive.Stderr = &stderr
	if err := archive.Start(); err != nil {
		return "", fmt.Errorf("git archive %s: %w", rev, err)
	}
	if out, err := untar.CombinedOutput(); err != nil {
		archive.Wait()
		return "", fmt.Errorf("tar: %v\n%s", err, out)
	}
	if err := archive.Wait(); err != nil {
		return "", fmt.Errorf("git archive %s: %v\n%s", rev, err, stderr.String())
	}
	bin := filepath.Join(l.tmp, "xpcd-base")
	dir, pkg := xpcdPackage(src)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/xpcd at %s: %v\n%s", rev, err, out)
	}
	return bin, nil
}

// xpcdPackage says where to build xpcd in the repository at root: in cmd,
// a module of its own since the commands moved there, or, for a revision
// from before that, at the root, whose module then held cmd/xpcd.
func xpcdPackage(root string) (dir, pkg string) {
	if _, err := os.Stat(filepath.Join(root, "cmd", "go.mod")); err == nil {
		return filepath.Join(root, "cmd"), "./xpcd"
	}
	return root, "./cmd/xpcd"
}

// plist is a job definition: the service binary, listening for name. It
// is launched on demand only, and ThrottleInterval 0 lets the cold-launch
// benchmark relaunch it as soon as it has exited.
const plistText = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>%s</string>
	<key>ProgramArguments</key>
	<array>
		<string>%s</string>
		<string>%s</string>
	</array>
	<key>MachServices</key>
	<dict>
		<key>%s</key>
		<true/>
	</dict>
	<key>ThrottleInterval</key>
	<integer>0</integer>
%s</dict>
</plist>
`

func xmlText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeJob writes DIR/LaunchAgents/LABEL.plist for a job serving name.
func (l *lab) writeJob(root, label, name string) error { return l.writeJobExtra(root, label, name, "") }

// writeJobExtra is writeJob with more keys (plist XML, in the job's dict).
func (l *lab) writeJobExtra(root, label, name, extra string) error {
	dir := filepath.Join(root, "LaunchAgents")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	env := ""
	if l.procs > 0 {
		env = fmt.Sprintf("\t<key>EnvironmentVariables</key>\n\t<dict>\n\t\t<key>GOMAXPROCS</key>\n\t\t<string>%d</string>\n\t</dict>\n", l.procs)
	}
	text := fmt.Sprintf(plistText, xmlText(label), xmlText(l.svcBin), xmlText(name), xmlText(name), env+extra)
	return os.WriteFile(filepath.Join(dir, label+".plist"), []byte(text), 0o644)
}

// newRoot makes a fresh instance root under l.tmp.
func (l *lab) newRoot(name string) (string, error) {
	root := filepath.Join(l.tmp, name)
	if err := os.MkdirAll(filepath.Join(root, "LaunchAgents"), 0o755); err != nil {
		return "", err
	}
	return root, nil
}

// target names a job of the instance's user domain, for print.
func (l *lab) target(label string) string { return fmt.Sprintf("user/%d/%s", l.uid, label) }

// startResult is what starting xpcd measured.
type startResult struct {
	ready   time.Duration // exec to the answer of the first list request
	jobs    int           // jobs in that answer
	rssKiB  int64         // VmRSS right after that answer
	peakKiB int64         // VmHWM then
	cpu     time.Duration // CPU time xpcd had used then, all threads
}

// start runs xpcd --root root and waits until its bootstrap socket
// accepts a connection and answers a list request.
func (l *lab) start(ctx context.Context, root string) (*instance, startResult, error) {
	return l.startBin(ctx, l.xpcdBin, root)
}

// instanceFlags are the flags that name the instance for bin: --system
// for an xpcd that has it (and then starts nothing without it), none for
// an older one, built from a base revision, whose default it was.
func instanceFlags(bin string) []string {
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	if strings.Contains(string(out), "--system") {
		return []string{"--system"}
	}
	return nil
}

// startBin is start with another xpcd binary.
func (l *lab) startBin(ctx context.Context, bin, root string) (*instance, startResult, error) {
	in := &instance{
		root: root,
		sock: filepath.Join(root, "run", "bootstrap.sock"),
		log:  filepath.Join(root, "xpcd.log"),
		done: make(chan struct{}),
	}
	logf, err := os.Create(in.log)
	if err != nil {
		return nil, startResult{}, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, append(instanceFlags(bin), "--root", root)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = cleanEnv()
	if l.procs > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOMAXPROCS=%d", l.procs))
	}
	// Its own process group, so that ^C reaches only us (we stop it), and
	// killed by the kernel if we die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	in.cmd = cmd

	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, startResult{}, fmt.Errorf("start xpcd: %w", err)
	}
	l.mu.Lock()
	l.instances = append(l.instances, in)
	l.mu.Unlock()
	go func() {
		cmd.Wait()
		close(in.done)
	}()

	var res startResult
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-in.done:
			return nil, res, fmt.Errorf("xpcd exited during start (%v); its log:\n%s", cmd.ProcessState, tail(in.log))
		case <-ctx.Done():
			return nil, res, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return nil, res, fmt.Errorf("xpcd did not answer on %s within 20 s; its log:\n%s", in.sock, tail(in.log))
		}
		c, err := xpc.DialUnix(ctx, in.sock)
		if err != nil {
			// Not bound or not listening yet.
			time.Sleep(100 * time.Microsecond)
			continue
		}
		c.Activate()
		reply, err := c.SendWithReply(ctx, xpc.Dict("op", "list"))
		res.ready = time.Since(t0)
		if err != nil {
			c.Cancel()
			return nil, res, fmt.Errorf("list: %w", err)
		}
		in.admin = c
		if jobs, ok := reply.Get("jobs").(xpc.Array); ok {
			res.jobs = len(jobs)
		}
		break
	}
	res.cpu, _ = cpuTime(cmd.Process.Pid)
	res.rssKiB, res.peakKiB, err = memory(cmd.Process.Pid)
	return in, res, err
}

// cleanEnv is our environment without what would make xpcd talk to
// anything but its own root.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "XPCD_ROOT" || k == "NOTIFY_SOCKET" || k == "GOMAXPROCS" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// memory reads VmRSS and VmHWM (KiB) from /proc/PID/status.
func memory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return rss, hwm, sc.Err()
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// admin sends an administrative request on the instance's bootstrap
// connection.
func (in *instance) adminCall(ctx context.Context, pairs ...any) (*xpc.Dictionary, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return in.admin.SendWithReply(ctx, xpc.Dict(pairs...))
}

// state returns a job's state and pid (0 if none), from print.
func (in *instance) state(ctx context.Context, target string) (string, int64, error) {
	d, err := in.adminCall(ctx, "op", "print", "target", target)
	if err != nil {
		return "", 0, fmt.Errorf("print %s: %w", target, err)
	}
	st, _ := d.String("state")
	pid, _ := d.Int64("pid")
	return st, pid, nil
}

// waitState polls print until the job is in state want.
func (in *instance) waitState(ctx context.Context, target, want string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, err := in.state(ctx, target)
		if err != nil {
			return err
		}
		if st == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is %q, not %q, after 10 s; xpcd's log:\n%s", target, st, want, tail(in.log))
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// sawService records a service pid for close.
func (l *lab) sawService(pid int64) {
	if pid <= 0 {
		return
	}
	l.mu.Lock()
	l.services[int(pid)] = true
	l.mu.Unlock()
}

// killService kills a service pid, and its process group, if it still runs
// our service binary.
func (l *lab) killService(pid int) {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil || exe != l.svcBin {
		return
	}
	syscall.Kill(-pid, syscall.SIGKILL) // xpcd makes each service a group leader
	syscall.Kill(pid, syscall.SIGKILL)
}

// stop kills the instance's services (xpcd leaves them running when it
// stops) and then xpcd.
func (l *lab) stop(in *instance) {
	if in.stopped {
		return
	}
	in.stopped = true
	if in.admin != nil {
		select {
		case <-in.done:
		default:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if d, err := in.adminCall(ctx, "op", "list"); err == nil {
				jobs, _ := d.Get("jobs").(xpc.Array)
				for _, j := range jobs {
					if jd, ok := j.(*xpc.Dictionary); ok {
						if pid, err := jd.Int64("pid"); err == nil && pid > 0 {
							l.killService(int(pid))
						}
					}
				}
			}
			cancel()
		}
		in.admin.Cancel()
	}
	select {
	case <-in.done:
		return
	default:
	}
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(5 * time.Second):
		in.cmd.Process.Kill()
		<-in.done
	}
}

// close stops every instance and every service pid seen, and removes the
// temporary directory unless keep.
func (l *lab) close(keep bool) {
	l.mu.Lock()
	instances := l.instances
	l.instances = nil
	l.mu.Unlock()
	for _, in := range instances {
		l.stop(in)
	}
	l.mu.Lock()
	for pid := range l.services {
		l.killService(pid)
	}
	l.mu.Unlock()
	if !keep {
		os.RemoveAll(l.tmp)
	}
}
