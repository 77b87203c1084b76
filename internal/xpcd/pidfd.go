package xpcd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"github.com/goxpc/xpc/launchd"
	"golang.org/x/sys/unix"
)

// A process xpcd launched or adopted, held by its pidfd, and what xpcd
// reads of /proc/PID/stat.

// process is a handle on a running process.
type process interface {
	// signal sends sig to the process, through its pidfd.
	signal(sig syscall.Signal) error
	// killGroup sends sig to the process's whole group; only for a child
	// that leads its own group and is not yet reaped (so the group id
	// cannot have been recycled).
	killGroup(sig syscall.Signal) error
	// wait blocks until the process has ended, kills what is left of its
	// group unless told to abandon it, reaps it if it is xpcd's child, and
	// returns how it ended. After close it returns errProcessClosed.
	wait(abandonGroup bool) (exitStatus, error)
	// exited reports, without waiting, whether the process has ended
	// (even if wait has not returned yet).
	exited() bool
	// close releases the handle without touching the process.
	close()
}

var errProcessClosed = errors.New("process handle closed")

// exitStatus is how a process ended.
type exitStatus struct {
	known  bool // false: not xpcd's child (adopted), so the status is unknown
	code   int
	signal syscall.Signal // non-zero: killed by this signal
}

func (s exitStatus) clean() bool   { return s.known && s.signal == 0 && s.code == 0 }
func (s exitStatus) crashed() bool { return s.signal != 0 && launchd.CrashSignal(s.signal) }

func (s exitStatus) String() string {
	switch {
	case !s.known:
		return "exited (status unknown: adopted process)"
	case s.signal != 0:
		return "killed by " + unix.SignalName(s.signal)
	}
	return "exited with status " + strconv.Itoa(s.code)
}

// pidfdProcess is a process held by its pidfd. Exit is seen by polling
// the pidfd (through Go's poller), without reaping, so that the group can
// be killed while the leader's pid is still reserved by its zombie.
type pidfdProcess struct {
	pid   int
	f     *os.File
	rc    syscall.RawConn
	child bool

	mu     sync.Mutex
	reaped bool
}

func newPidfdProcess(pid, fd int, child bool) (*pidfdProcess, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pidfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pidfd: %w", err)
	}
	return &pidfdProcess{pid: pid, f: f, rc: rc, child: child}, nil
}

func (p *pidfdProcess) signal(sig syscall.Signal) error {
	var serr error
	if err := p.rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), sig, nil, 0)
	}); err != nil {
		return err
	}
	return serr
}

func (p *pidfdProcess) killGroup(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.child || p.reaped {
		return p.signal(sig)
	}
	err := unix.Kill(-p.pid, sig)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

func (p *pidfdProcess) wait(abandonGroup bool) (exitStatus, error) {
	err := p.rc.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 0)
		return err == nil && n > 0
	})
	if err != nil {
		return exitStatus{}, errProcessClosed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.child && !abandonGroup {
		unix.Kill(-p.pid, unix.SIGKILL) // what the job left behind
	}
	var info unix.Siginfo
	var werr error
	p.rc.Control(func(fd uintptr) {
		for {
			werr = unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED, nil)
			if werr != unix.EINTR {
				break
			}
		}
	})
	p.reaped = true
	if werr != nil {
		// ECHILD: not ours to reap (adopted after a restart of xpcd).
		return exitStatus{}, nil
	}
	code, status := siginfoChild(&info)
	switch code {
	case 1: // CLD_EXITED
		return exitStatus{known: true, code: int(status)}, nil
	case 2, 3: // CLD_KILLED, CLD_DUMPED
		return exitStatus{known: true, signal: syscall.Signal(status)}, nil
	}
	return exitStatus{}, nil
}

func (p *pidfdProcess) exited() bool {
	gone := false
	p.rc.Control(func(fd uintptr) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 0)
		gone = err == nil && n > 0
	})
	return gone
}

func (p *pidfdProcess) close() { p.f.Close() }

// siginfoChild returns si_code and si_status of a SIGCHLD siginfo. The
// union after si_signo, si_errno and si_code starts at 16 bytes on 64-bit
// Linux and at 12 on 32-bit; si_status follows si_pid and si_uid.
func siginfoChild(info *unix.Siginfo) (code, status int32) {
	off := uintptr(12)
	if unsafe.Sizeof(uintptr(0)) == 8 {
		off = 16
	}
	return info.Code, *(*int32)(unsafe.Add(unsafe.Pointer(info), off+8))
}

// startTime returns a process's start time, field 22 of /proc/PID/stat.
func startTime(pid int) (uint64, error) {
	st, err := readStat(pid)
	return st.start, err
}

// procStat is what xpcd reads of /proc/PID/stat.
type procStat struct {
	pgid, sid int    // fields 5 and 6
	start     uint64 // field 22, clock ticks since boot
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold anything:
	// count fields after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	f := bytes.Fields(b[i+1:])
	const start = 22 - 3 // field 3 (state) is f[0]
	if i < 0 || len(f) <= start {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	var st procStat
	var errs [3]error
	st.pgid, errs[0] = strconv.Atoi(string(f[5-3]))
	st.sid, errs[1] = strconv.Atoi(string(f[6-3]))
	st.start, errs[2] = strconv.ParseUint(string(f[start]), 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}
