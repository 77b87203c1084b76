package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
)

// dist is a set of timings.
type dist []time.Duration

// pct returns the q-th percentile (0 < q <= 100), nearest rank.
func (d dist) pct(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (d dist) max() time.Duration { return d.pct(100) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ping is the message every round trip sends.
func ping(i int) *xpc.Dictionary { return xpc.Dict("op", "ping", "i", int64(i)) }

// dialService makes an active connection to name through the instance's
// xpcd, as a client would.
func dialService(in *instance, name string) (*xpc.Connection, error) {
	return dialServiceWith(name, xpc.WithBootstrapSocket(in.sock))
}

func dialServiceWith(name string, opt xpc.Option) (*xpc.Connection, error) {
	c, err := xpc.NewServiceConnection(name, opt)
	if err != nil {
		return nil, err
	}
	c.Activate()
	return c, nil
}

// cancelWait cancels a connection and waits until it has ended, so that
// one iteration's teardown does not overlap the next one's timing.
func cancelWait(c *xpc.Connection) {
	c.Cancel()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
	}
}

// lookupResult is what measureLookup measured.
type lookupResult struct {
	connect dist // NewServiceConnection + Activate + first SendWithReply
	// connect again, the connections made WithBootstrap(one Bootstrap).
	connectShared dist
	roundtrip     dist // SendWithReply on an established connection
	dial          dist // breakdown: connect to the bootstrap socket
	lookup        dist // breakdown: the lookup request, on that connection
	first         dist // breakdown: first round trip on the new service socket
	// The lookup and first round trip again, with one bootstrap connection
	// kept open for all lookups instead of one per connection.
	reusedLookup, reusedFirst dist

	// CPU time spent per connection and per round trip, in the client
	// (this process), xpcd and the service, from the kernel's per-thread
	// accounting: unlike the timings, this hardly depends on what else the
	// machine is doing.
	connectCPU, roundtripCPU cpuSplit
}

// cpuSplit is, per operation, the CPU time used and the number of times
// a thread was scheduled in (a wake-up, or a preemption), in each process.
type cpuSplit struct {
	client, xpcd, service    time.Duration
	clientN, xpcdN, serviceN float64
}

// cpuSample is the CPU time used so far, and the number of times threads
// were scheduled in, by the client, xpcd and service.
type cpuSample struct {
	cpu  [3]time.Duration
	runs [3]int64
}

func sampleCPU(pids [3]int) cpuSample {
	var s cpuSample
	for i, pid := range pids {
		s.cpu[i], s.runs[i] = cpuTime(pid)
	}
	return s
}

// add adds the difference b-a to s.
func (s *cpuSample) add(a, b cpuSample) {
	for i := range s.cpu {
		s.cpu[i] += b.cpu[i] - a.cpu[i]
		s.runs[i] += b.runs[i] - a.runs[i]
	}
}

func (s cpuSample) per(n int) cpuSplit {
	if n == 0 {
		return cpuSplit{}
	}
	d, f := time.Duration(n), float64(n)
	return cpuSplit{s.cpu[0] / d, s.cpu[1] / d, s.cpu[2] / d,
		float64(s.runs[0]) / f, float64(s.runs[1]) / f, float64(s.runs[2]) / f}
}

// cpuTime returns the CPU time pid's threads have run and how many times
// they were scheduled in, summed from /proc/PID/task/*/schedstat
// (nanoseconds on the CPU, nanoseconds waiting to run, timeslices).
// Threads that have already exited are not counted; Go rarely ends any.
func cpuTime(pid int) (time.Duration, int64) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	var total time.Duration
	var runs int64
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			total += time.Duration(n)
			r, _ := strconv.ParseInt(f[2], 10, 64)
			runs += r
		}
	}
	return total, runs
}

// measureLookup times n connections to a running service, each a new
// connection whose first message is a request, against n round trips on
// one established connection. The two kinds run in alternating blocks so
// that both see the same background load. Then it times the three steps
// of a connection separately, with the same calls the library makes.
func measureLookup(ctx context.Context, l *lab, in *instance, name string, n int) (lookupResult, error) {
	var res lookupResult
	// Start the service and warm up both paths.
	est, err := dialService(in, name)
	if err != nil {
		return res, err
	}
	defer cancelWait(est)
	warm := min(100, max(10, n/10))
	r, err := est.SendWithReply(ctx, ping(-1))
	if err != nil {
		return res, fmt.Errorf("first request to %s: %w", name, err)
	}
	pid, _ := r.Int64("pid")
	l.sawService(pid)

	const block = 100
	boot, err := xpc.NewBootstrap(xpc.WithBootstrapSocket(in.sock))
	if err != nil {
		return res, err
	}
	defer boot.Close()
	connectWith := func(i int, opt xpc.Option) (time.Duration, error) {
		t0 := time.Now()
		c, err := dialServiceWith(name, opt)
		if err != nil {
			return 0, err
		}
		_, err = c.SendWithReply(ctx, ping(i))
		d := time.Since(t0)
		cancelWait(c)
		if err != nil {
			return 0, fmt.Errorf("connection %d to %s: %w", i, name, err)
		}
		return d, nil
	}
	connect := func(i int) (time.Duration, error) { return connectWith(i, xpc.WithBootstrapSocket(in.sock)) }
	connectShared := func(i int) (time.Duration, error) { return connectWith(i, xpc.WithBootstrap(boot)) }
	roundtrip := func(i int) (time.Duration, error) {
		t0 := time.Now()
		_, err := est.SendWithReply(ctx, ping(i))
		d := time.Since(t0)
		if err != nil {
			return 0, fmt.Errorf("round trip %d to %s: %w", i, name, err)
		}
		return d, nil
	}
	for i := range warm {
		if _, err := connect(i); err != nil {
			return res, err
		}
		if _, err := roundtrip(i); err != nil {
			return res, err
		}
		if _, err := connectShared(i); err != nil {
			return res, err
		}
	}
	pids := [3]int{os.Getpid(), in.cmd.Process.Pid, int(pid)}
	var connCPU, rtCPU cpuSample
	for done := 0; done < n; done += block {
		c0 := sampleCPU(pids)
		for i := done; i < min(n, done+block); i++ {
			d, err := connect(i)
			if err != nil {
				return res, err
			}
			res.connect = append(res.connect, d)
		}
		c1 := sampleCPU(pids)
		for i := done; i < min(n, done+block); i++ {
			d, err := roundtrip(i)
			if err != nil {
				return res, err
			}
			res.roundtrip = append(res.roundtrip, d)
		}
		c2 := sampleCPU(pids)
		connCPU.add(c0, c1)
		rtCPU.add(c1, c2)
		for i := done; i < min(n, done+block); i++ {
			d, err := connectShared(i)
			if err != nil {
				return res, err
			}
			res.connectShared = append(res.connectShared, d)
		}
	}
	res.connectCPU = connCPU.per(n)
	res.roundtripCPU = rtCPU.per(n)
	for i := range warm + n {
		dial, lookup, first, err := connectSteps(ctx, in, nil, name, i)
		if err != nil {
			return res, err
		}
		if i >= warm {
			res.dial = append(res.dial, dial)
			res.lookup = append(res.lookup, lookup)
			res.first = append(res.first, first)
		}
	}
	bc, err := xpc.DialUnix(ctx, in.sock)
	if err != nil {
		return res, err
	}
	defer bc.Cancel()
	bc.Activate()
	for i := range warm + n {
		_, lookup, first, err := connectSteps(ctx, in, bc, name, i)
		if err != nil {
			return res, err
		}
		if i >= warm {
			res.reusedLookup = append(res.reusedLookup, lookup)
			res.reusedFirst = append(res.reusedFirst, first)
		}
	}
	return res, nil
}

// connectSteps does what NewServiceConnection's first send does
// (service.go, lookupService), with the public API, timing each step:
// connect to the bootstrap socket; send {"op":"lookup"} with one end of a
// new socket pair and wait for xpcd's reply; the first round trip with the
// service on the other end. The last step wraps the socket with
// NewConnectionFromFile, which also reads the peer's credentials: a few
// microseconds the library's own path does not spend. With bc not nil, the
// lookup goes on bc, a bootstrap connection kept open, and dial is 0.
func connectSteps(ctx context.Context, in *instance, bc *xpc.Connection, name string, i int) (dial, lookup, first time.Duration, err error) {
	t0 := time.Now()
	own := bc == nil
	if own {
		if bc, err = xpc.DialUnix(ctx, in.sock); err != nil {
			return 0, 0, 0, err
		}
		bc.Activate()
	}
	t1 := time.Now()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		if own {
			bc.Cancel()
		}
		return 0, 0, 0, err
	}
	mine := os.NewFile(uintptr(fds[0]), "mine")
	defer mine.Close()
	end := xpc.NewFD(os.NewFile(uintptr(fds[1]), "theirs"))
	req := xpc.Dict("op", "lookup", "name", name)
	req.Set("socket", end)
	_, err = bc.SendWithReply(ctx, req)
	end.Close()
	t2 := time.Now()
	if own {
		// As the library does: the bootstrap connection ends once the
		// lookup is answered.
		bc.Cancel()
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("lookup %s: %w", name, err)
	}
	c, err := xpc.NewConnectionFromFile(mine)
	if err != nil {
		return 0, 0, 0, err
	}
	c.Activate()
	_, err = c.SendWithReply(ctx, ping(i))
	t3 := time.Now()
	cancelWait(c)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("first request on the looked-up socket: %w", err)
	}
	return t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), nil
}

// coldResult is what measureCold measured.
type coldResult struct {
	cold      dist // first send on a service that does not run, to its reply
	toMain    dist // breakdown: that send to the service's main
	checkin   dist // breakdown: main to its listener checked in
	toReply   dist // breakdown: listener checked in to the reply at the client
	ownMain   dist // the service binary alone: exec to main
	ownExited dist // the service binary alone: exec to exit, reaped
}

// measureCold times n cold launches: the job does not run; a new client
// connection sends a request, xpcd launches the service, the service
// checks in and answers. The service is then told to exit, and the next
// launch waits until xpcd has seen it go (state "waiting"). Each launch is
// paired with one run of the same binary started directly, exiting as
// soon as main starts, so that both see the same load. One unrecorded
// round comes first.
func measureCold(ctx context.Context, l *lab, in *instance, label, name string, n int) (coldResult, error) {
	var res coldResult
	target := l.target(label)
	for i := -1; i < n; i++ {
		if err := in.waitState(ctx, target, "waiting"); err != nil {
			return res, err
		}
		t0 := time.Now()
		c, err := dialService(in, name)
		if err != nil {
			return res, err
		}
		r, err := c.SendWithReply(ctx, ping(i))
		t1 := time.Now()
		if err != nil {
			cancelWait(c)
			return res, fmt.Errorf("cold request %d to %s: %w", i, name, err)
		}
		pid, _ := r.Int64("pid")
		l.sawService(pid)
		mainNS, _ := r.Int64("main_ns")
		readyNS, _ := r.Int64("ready_ns")
		err = c.Send(ctx, xpc.Dict("exit", true))
		cancelWait(c)
		if err != nil {
			return res, fmt.Errorf("telling %s to exit: %w", name, err)
		}
		toMain, exited, err := ownStart(ctx, l.svcBin, l.procs)
		if err != nil {
			return res, err
		}
		if i < 0 {
			continue
		}
		res.cold = append(res.cold, t1.Sub(t0))
		res.toMain = append(res.toMain, time.Duration(mainNS-t0.UnixNano()))
		res.checkin = append(res.checkin, time.Duration(readyNS-mainNS))
		res.toReply = append(res.toReply, time.Duration(t1.UnixNano()-readyNS))
		res.ownMain = append(res.ownMain, toMain)
		res.ownExited = append(res.ownExited, exited)
	}
	return res, nil
}

// ownStart runs the service binary with XPCDBENCH_START_ONLY, so that it
// prints the time its main started and exits: the time from exec to main,
// and to its exit.
func ownStart(ctx context.Context, bin string, procs int) (toMain, exited time.Duration, err error) {
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(cleanEnv(), "XPCDBENCH_START_ONLY=1")
	if procs > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOMAXPROCS=%d", procs))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	line, rerr := bufio.NewReader(out).ReadString('\n')
	werr := cmd.Wait()
	exited = time.Since(t0)
	if rerr != nil || werr != nil {
		return 0, 0, fmt.Errorf("%s with XPCDBENCH_START_ONLY: %v %v", bin, rerr, werr)
	}
	mainNS, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("%s with XPCDBENCH_START_ONLY printed %q", bin, line)
	}
	return time.Duration(mainNS - t0.UnixNano()), exited, nil
}

// floorResult is what cmd/xpcdbench/floor prints.
type floorResult struct {
	ConnectP50   int64 `json:"connect_p50_ns"`
	ConnectP99   int64 `json:"connect_p99_ns"`
	RoundtripP50 int64 `json:"roundtrip_p50_ns"`
	RoundtripP99 int64 `json:"roundtrip_p99_ns"`
}

// lookupConnect is the floor's lookup+connect p50, measured as xpcdbench
// measures goxpc's: connect and first reply, less a round trip.
func (f floorResult) lookupConnect() time.Duration {
	return time.Duration(f.ConnectP50 - f.RoundtripP50)
}

// measureFloor runs the floor baseline: the brokered design with blocking
// system calls only, n round trips and n connections.
func measureFloor(ctx context.Context, l *lab, n int) (floorResult, error) {
	var res floorResult
	cmd := exec.CommandContext(ctx, l.floor, strconv.Itoa(n))
	cmd.Env = cleanEnv()
	if l.procs > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOMAXPROCS=%d", l.procs))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	if err := json.Unmarshal(out, &res); err != nil || res.ConnectP50 <= 0 {
		return res, fmt.Errorf("floor printed %q: %v", out, err)
	}
	return res, nil
}

// jobsResult is what measureJobs measured.
type jobsResult struct {
	jobs       int
	start      dist  // xpcd with the jobs: exec to its first list answer
	startCPU   dist  // CPU time xpcd had used then
	rssKiB     []int // VmRSS right after that answer
	peakKiB    []int // VmHWM then
	emptyStart dist  // the same with no jobs
	emptyCPU   dist
	emptyRSS   []int
	list       dist // a list request answering all the jobs
	lookup     lookupResult
}

// measureJobs starts xpcd reps times on a fresh root holding njobs jobs
// (and, alternating, on an empty one), timing the start and reading its
// memory. On the last instance with jobs it times list requests and
// connections to one of the jobs.
func measureJobs(ctx context.Context, l *lab, njobs, reps, nlookup int) (jobsResult, error) {
	res := jobsResult{jobs: njobs}
	var last *instance
	for rep := range reps {
		root, err := l.newRoot(fmt.Sprintf("empty-%d", rep))
		if err != nil {
			return res, err
		}
		in, sr, err := l.start(ctx, root)
		if err != nil {
			return res, err
		}
		l.stop(in)
		res.emptyStart = append(res.emptyStart, sr.ready)
		res.emptyCPU = append(res.emptyCPU, sr.cpu)
		res.emptyRSS = append(res.emptyRSS, int(sr.rssKiB))

		root, err = l.newRoot(fmt.Sprintf("jobs%d-%d", njobs, rep))
		if err != nil {
			return res, err
		}
		for i := range njobs {
			label := fmt.Sprintf("bench.job.%04d", i)
			if err := l.writeJob(root, label, label); err != nil {
				return res, err
			}
		}
		in, sr, err = l.start(ctx, root)
		if err != nil {
			return res, err
		}
		if sr.jobs != njobs {
			l.stop(in)
			return res, fmt.Errorf("xpcd loaded %d jobs of %d; its log:\n%s", sr.jobs, njobs, tail(in.log))
		}
		res.start = append(res.start, sr.ready)
		res.startCPU = append(res.startCPU, sr.cpu)
		res.rssKiB = append(res.rssKiB, int(sr.rssKiB))
		res.peakKiB = append(res.peakKiB, int(sr.peakKiB))
		if rep < reps-1 {
			l.stop(in)
		} else {
			last = in
		}
	}
	if last == nil {
		return res, nil
	}
	defer l.stop(last)
	for i := range 20 {
		t0 := time.Now()
		if _, err := last.adminCall(ctx, "op", "list"); err != nil {
			return res, fmt.Errorf("list: %w", err)
		}
		if i >= 2 {
			res.list = append(res.list, time.Since(t0))
		}
	}
	if njobs > 0 && nlookup > 0 {
		name := fmt.Sprintf("bench.job.%04d", njobs/2)
		lr, err := measureLookup(ctx, l, last, name, nlookup)
		if err != nil {
			return res, err
		}
		res.lookup = lr
	}
	return res, nil
}

func median(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// ctxSwitches sums voluntary_ctxt_switches and nonvoluntary_ctxt_switches
// over pid's threads (/proc/PID/task/*/status), and counts the threads. A
// thread that ended in between takes its count with it; xpcd's threads
// are the Go runtime's, which it keeps, except the short ones that act as
// a job's user (none here: the jobs are root's).
func ctxSwitches(pid int) (vol, inv int64, threads int) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, 0
	}
	for _, e := range ents {
		f, err := os.Open(dir + "/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch k {
			case "voluntary_ctxt_switches":
				vol += n
			case "nonvoluntary_ctxt_switches":
				inv += n
			}
		}
		f.Close()
		threads++
	}
	return vol, inv, threads
}
