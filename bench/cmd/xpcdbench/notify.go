package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
)

// The notify measurement: a post reaching handlers registered in many
// processes (docs/XPCD.md, "Notifications"). -subscribers processes (this
// binary, re-executed) each register for one name with an xpc.Notifier;
// this process posts it with a new state, -notify times, and times each
// post from just before PostState to the moment the last subscriber's
// handler ran, as each subscriber reports it (CLOCK_MONOTONIC, which all
// processes share, written into one pipe). The baseline, in the same run
// and in alternating blocks: the same fan-out over raw AF_UNIX, this
// process writing the state into one SOCK_SEQPACKET socket per
// subscriber, each subscriber blocked in read(2), in as many processes
// of its own.
//
// Goal (issue 15): post to the last of 100 handlers, p50 at most 2 ms.

// subscribers is a set of subscriber processes and the read end of the
// pipe they report on.
type subscribers struct {
	procs []*exec.Cmd
	in    *os.File
	socks []int // raw: this process's end of each subscriber's socket
}

// startSubscribers starts n subscribers in mode ("xpc ..." or "raw") and
// waits until each is ready.
func (l *lab) startSubscribers(n int, mode string, reports *os.File, in *os.File) (*subscribers, error) {
	s := &subscribers{in: in}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	for range n {
		cmd := exec.Command(self)
		cmd.Env = append(cleanEnv(), notifySubEnv+"="+mode)
		if l.procs > 0 {
			cmd.Env = append(cmd.Env, fmt.Sprintf("GOMAXPROCS=%d", l.procs))
		}
		cmd.Stderr = os.Stderr
		cmd.ExtraFiles = []*os.File{reports}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		var theirs *os.File
		if mode == "raw" {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				s.stop()
				return nil, err
			}
			s.socks = append(s.socks, fds[0])
			theirs = os.NewFile(uintptr(fds[1]), "subscriber")
			cmd.ExtraFiles = append(cmd.ExtraFiles, theirs)
		}
		err := cmd.Start()
		if theirs != nil {
			theirs.Close()
		}
		if err != nil {
			s.stop()
			return nil, err
		}
		s.procs = append(s.procs, cmd)
	}
	for ready := 0; ready < n; {
		state, _, err := readReport(in)
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("subscribers: %w", err)
		}
		if state == notifyReady {
			ready++
		}
	}
	return s, nil
}

func readReport(r io.Reader) (state uint64, at int64, err error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, 0, err
	}
	return binary.LittleEndian.Uint64(b[:8]), int64(binary.LittleEndian.Uint64(b[8:])), nil
}

// last waits for every subscriber's report of state and returns the
// latest arrival.
func (s *subscribers) last(state uint64) (int64, error) {
	var latest int64
	for got := 0; got < len(s.procs); {
		st, at, err := readReport(s.in)
		if err != nil {
			return 0, err
		}
		if st == state {
			got++
			latest = max(latest, at)
		}
	}
	return latest, nil
}

func (s *subscribers) stop() {
	for _, fd := range s.socks {
		unix.Close(fd)
	}
	for _, p := range s.procs {
		p.Process.Kill()
		p.Wait()
	}
}

// notifyResult is what the notify measurement gives.
type notifyResult struct {
	xpcd, raw dist
}

// measureNotify times n posts to subs subscribers through xpcd, and n
// sends to as many over raw sockets, in alternating blocks of 50, after
// 20 of each unmeasured.
func measureNotify(ctx context.Context, l *lab, subs, n int) (notifyResult, error) {
	var res notifyResult
	root, err := l.newRoot("notify")
	if err != nil {
		return res, err
	}
	in, _, err := l.start(ctx, root)
	if err != nil {
		return res, err
	}
	defer l.stop(in)
	const name = "org.goxpc.bench.changed"
	// One pipe per kind: a slow report of one cannot be read as the other's.
	var pipes [2][2]*os.File
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			return res, err
		}
		defer r.Close()
		defer w.Close()
		pipes[i] = [2]*os.File{r, w}
	}
	xs, err := l.startSubscribers(subs, "xpc "+in.sock+" "+name, pipes[0][1], pipes[0][0])
	if err != nil {
		return res, err
	}
	defer xs.stop()
	rs, err := l.startSubscribers(subs, "raw", pipes[1][1], pipes[1][0])
	if err != nil {
		return res, err
	}
	defer rs.stop()
	poster, err := xpc.NewNotifier(ctx, xpc.WithBootstrapSocket(in.sock))
	if err != nil {
		return res, err
	}
	defer poster.Close()

	state := uint64(0)
	viaXPCD := func() (time.Duration, error) {
		state++
		t0 := monoNow()
		if err := poster.PostState(ctx, name, state); err != nil {
			return 0, err
		}
		t1, err := xs.last(state)
		return time.Duration(t1 - t0), err
	}
	viaRaw := func() (time.Duration, error) {
		state++
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], state)
		t0 := monoNow()
		for _, fd := range rs.socks {
			if _, err := unix.Write(fd, b[:]); err != nil {
				return 0, err
			}
		}
		t1, err := rs.last(state)
		return time.Duration(t1 - t0), err
	}
	for range 20 {
		if _, err := viaXPCD(); err != nil {
			return res, err
		}
		if _, err := viaRaw(); err != nil {
			return res, err
		}
	}
	for done := 0; done < n; {
		block := min(50, n-done)
		for _, m := range []struct {
			f func() (time.Duration, error)
			d *dist
		}{{viaXPCD, &res.xpcd}, {viaRaw, &res.raw}} {
			for range block {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				d, err := m.f()
				if err != nil {
					return res, err
				}
				*m.d = append(*m.d, d)
			}
		}
		done += block
	}
	if len(res.xpcd) == 0 {
		return res, fmt.Errorf("no posts measured")
	}
	return res, nil
}

// notifyRows measures and returns the table's rows.
func notifyRows(ctx context.Context, l *lab, subs, n int) ([]Row, error) {
	r, err := measureNotify(ctx, l, subs, n)
	if err != nil {
		return nil, err
	}
	met := ms(r.xpcd.pct(50)) <= 2
	return []Row{
		{"notify_fanout_p50_ms", ms(r.xpcd.pct(50)), "ms", "<= 2", &met,
			fmt.Sprintf("PostState to the last of %d handlers, each in its own process (xpc.Notifier)", subs)},
		{"notify_fanout_p99_ms", ms(r.xpcd.pct(99)), "ms", "", nil, "the same, p99"},
		{"raw_fanout_p50_ms", ms(r.raw.pct(50)), "ms", "", nil,
			fmt.Sprintf("baseline: one process writes to %d AF_UNIX sockets, to the last reader in %d processes", subs, subs)},
		{"raw_fanout_p99_ms", ms(r.raw.pct(99)), "ms", "", nil, "the same, p99"},
		{"notify_over_raw", float64(r.xpcd.pct(50)) / float64(r.raw.pct(50)), "x", "", nil, "notify_fanout_p50 / raw_fanout_p50"},
	}, nil
}
