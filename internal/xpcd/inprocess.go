package xpcd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// In-process jobs: xpctest serves a Go handler under a name without
// starting a process. Config.InProcess names the jobs whose instances run
// inside xpcd's own process, on goroutines, each checked in over its own
// end of a check-in socket pair as a real process is; every other job is
// exec'd as usual. Only xpctest sets Config.InProcess (cmd/xpcd never
// does): it exists for tests, where xpcd runs inside the test binary.
//
// An in-process instance has no pid of its own: it is given a pseudo pid
// below zero (-1, -2, ...), which names no process, so that nothing xpcd
// does by pid (kill, pidfd_open, /proc) can reach the test process or
// another. Its process handle's signal stops the instance (any signal but
// 0) and its wait returns once the instance has stopped. An in-process
// instance never outlives the xpcd that started it: it is not adopted by
// the next one.

// InProcessFunc runs one instance of an in-process job: it checks in over
// checkin, the service's end of the instance's check-in socket pair (for
// instance with xpc.CheckInFile; checkin is closed once it returns), and
// serves until ctx ends (xpcd signalled the instance) or it is done. Its
// error is the instance's exit status: nil exits 0, an error 1.
type InProcessFunc func(ctx context.Context, checkin *os.File, label string) error

// InProcess is the set of jobs whose instances run in this process, by
// label, and the instances running. Its zero value is not usable: make
// one with NewInProcess. One InProcess may serve several daemons in turn
// (a test's restarted xpcd).
type InProcess struct {
	mu      sync.Mutex
	run     map[string]InProcessFunc
	lastPID int // the last pseudo pid given, counting down from 0
	procs   map[*inProcessProc]struct{}
	wg      sync.WaitGroup
}

// NewInProcess returns an empty set of in-process jobs.
func NewInProcess() *InProcess {
	return &InProcess{run: map[string]InProcessFunc{}, procs: map[*inProcessProc]struct{}{}}
}

// Add makes the job label (in any domain) run in process, by run, from its
// next launch on. It reports false, and changes nothing, if label runs in
// process already.
func (p *InProcess) Add(label string, run InProcessFunc) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.run[label]; ok {
		return false
	}
	p.run[label] = run
	return true
}

// Stop stops every in-process instance still running (those a daemon
// closed without stopping its services left) and waits, until ctx ends,
// for them to return.
func (p *InProcess) Stop(ctx context.Context) error {
	p.mu.Lock()
	for q := range p.procs {
		q.signal(syscall.SIGKILL)
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("xpcd: in-process services did not stop: %w", ctx.Err())
	}
}

func (p *InProcess) lookup(label string) InProcessFunc {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run[label]
}

// start starts an instance of spec's job, run by run, on a goroutine of
// its own; log hears of its failure.
func (p *InProcess) start(spec *spawnSpec, run InProcessFunc, log *slog.Logger) (*spawned, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("check-in socket pair: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "xpcd-checkin")
	theirs := os.NewFile(uintptr(fds[1]), "checkin")
	ctx, cancel := context.WithCancel(context.Background())
	q := &inProcessProc{cancel: cancel, done: make(chan struct{}), released: make(chan struct{})}
	p.mu.Lock()
	p.lastPID--
	q.pid = p.lastPID
	p.procs[q] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		err := run(ctx, theirs, spec.def.Label)
		if err != nil {
			log.Error("in-process service failed", "label", spec.def.Label, "pid", q.pid, "err", err)
		}
		theirs.Close()
		cancel()
		p.mu.Lock()
		delete(p.procs, q)
		p.mu.Unlock()
		q.exit(err)
	}()
	return &spawned{proc: q, pid: q.pid, checkin: mine}, nil
}

// inProcessLauncher starts the jobs p names in process and hands every
// other one to the exec launcher.
type inProcessLauncher struct {
	launcher
	p   *InProcess
	log *slog.Logger
}

func (l inProcessLauncher) launch(spec *spawnSpec) (*spawned, error) {
	if run := l.p.lookup(spec.def.Label); run != nil {
		return l.p.start(spec, run, l.log)
	}
	return l.launcher.launch(spec)
}

func (l inProcessLauncher) adopt(rec processRecord) (*spawned, error) {
	if rec.PID <= 0 {
		// A record of an in-process instance, which ended with the
		// xpcd that started it.
		return nil, fmt.Errorf("pid %d: an in-process instance does not outlive its xpcd", rec.PID)
	}
	return l.launcher.adopt(rec)
}

// inProcessProc is the process handle of an in-process instance.
type inProcessProc struct {
	pid      int
	cancel   context.CancelFunc
	done     chan struct{} // closed once run has returned and st is set
	released chan struct{} // closed by close
	once     sync.Once

	mu  sync.Mutex
	sig syscall.Signal // the first signal sent, 0 if none
	st  exitStatus
}

// signal stops the instance (any signal but 0, which only asks whether it
// runs). It never reaches a process.
func (q *inProcessProc) signal(sig syscall.Signal) error {
	select {
	case <-q.done:
		return unix.ESRCH
	default:
	}
	if sig != 0 {
		q.mu.Lock()
		if q.sig == 0 {
			q.sig = sig
		}
		q.mu.Unlock()
		q.cancel()
	}
	return nil
}

// killGroup is signal: the instance has no group.
func (q *inProcessProc) killGroup(sig syscall.Signal) error { return q.signal(sig) }

func (q *inProcessProc) exit(err error) {
	q.mu.Lock()
	switch {
	case q.sig != 0:
		q.st = exitStatus{known: true, signal: q.sig}
	case err != nil:
		q.st = exitStatus{known: true, code: 1}
	default:
		q.st = exitStatus{known: true}
	}
	q.mu.Unlock()
	close(q.done)
}

func (q *inProcessProc) wait(bool) (exitStatus, error) {
	select {
	case <-q.done:
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.st, nil
	case <-q.released:
		return exitStatus{}, errProcessClosed
	}
}

func (q *inProcessProc) exited() bool {
	select {
	case <-q.done:
		return true
	default:
		return false
	}
}

func (q *inProcessProc) close() { q.once.Do(func() { close(q.released) }) }
