package ipc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/goxpc/xpc"
)

// subject is one system under measurement: its server child, the client
// connection, and the figures gathered so far.
type subject struct {
	name   string
	ch     *child
	ep     *xpc.Endpoint // goxpc: the server's endpoint
	c      caller
	conc   []caller // the concurrent requesters
	owned  []caller // connections to close (c and raw's extra ones)
	labels context.Context

	lat            []time.Duration
	clientMallocs  uint64
	serverMallocs  uint64
	clientCPU      int64
	serverCPU      int64
	concCalls      int64
	concElapsed    time.Duration
	row            Row
	stopServerProf bool
}

// runSetting measures the systems under one GOMAXPROCS setting. All the
// servers run at once, and the sequential and concurrent phases go round
// by round, each system in turn, so that a change in the machine's load
// during the run touches every system alike.
func runSetting(ctx context.Context, cfg *Config, systems []string, procs, n int, dir string, bus *dbusDaemon) (rows []Row, err error) {
	var subs []*subject
	defer func() {
		for _, s := range subs {
			s.stop()
		}
	}()
	for _, name := range systems {
		s, err := startSubject(ctx, cfg, name, procs, dir, bus)
		if err != nil {
			return nil, err
		}
		subs = append(subs, s)
	}

	stopProfiles, err := startProfiles(cfg, subs, n)
	if err != nil {
		return nil, err
	}
	err = errors.Join(pingPhases(cfg, subs), stopProfiles())
	if err != nil {
		return nil, err
	}
	if err := bulkPhase(ctx, cfg, subs); err != nil {
		return nil, err
	}
	for _, s := range subs {
		r := &s.row
		r.P50US, r.P99US, r.MeanUS = percentiles(s.lat)
		r.ClientAllocs = float64(s.clientMallocs) / float64(len(s.lat))
		r.ServerAllocs = float64(s.serverMallocs) / float64(len(s.lat))
		r.ClientCPUUS = float64(s.clientCPU) / 1e3 / float64(len(s.lat))
		r.ServerCPUUS = float64(s.serverCPU) / 1e3 / float64(len(s.lat))
		cps := float64(s.concCalls) / s.concElapsed.Seconds()
		if isRaw(s.name) {
			r.CallsPerS8Conns = &cps
		} else {
			r.CallsPerS = &cps
		}
		rows = append(rows, *r)
	}
	return rows, nil
}

// startSubject starts a system's server and connects to it: one
// connection, and for raw-unix one more per concurrent requester. Work
// done for the system in this process carries the pprof label
// system=NAME, and so do the goroutines it starts.
func startSubject(ctx context.Context, cfg *Config, name string, procs int, dir string, bus *dbusDaemon) (*subject, error) {
	args := []string{"-dir", dir}
	if name == sysDBus {
		args = append(args, "-bus", bus.addr)
	}
	ch, err := startChild(cfg.Exe, name, procs, cfg.Log, nil, args...)
	if err != nil {
		return nil, err
	}
	s := &subject{name: name, ch: ch, labels: pprof.WithLabels(ctx, pprof.Labels("system", name))}
	s.row = Row{Name: name, ServerGOMAXPROCS: ch.rd.GOMAXPROCS, RequestBytes: requestBytes(name)}
	if name == sysGoxpc {
		if len(ch.fds) != 1 {
			s.stop()
			return nil, errors.New("goxpc server sent no endpoint")
		}
		s.ep = endpointFromFD(ch.fds[0])
		ch.fds = nil
	}
	s.conc = make([]caller, cfg.Concurrency)
	err = s.labelled(func(ctx context.Context) error {
		c, err := s.dial()
		if err != nil {
			return err
		}
		s.c = c
		s.owned = append(s.owned, c)
		for i := range s.conc {
			if !isRaw(name) {
				s.conc[i] = c
				continue
			}
			// Raw datagrams carry no request id: one connection each.
			rc, err := s.dial()
			if err != nil {
				return err
			}
			s.owned = append(s.owned, rc)
			s.conc[i] = rc
		}
		// Warm up, which also makes each connection.
		for i := range cfg.Warmup {
			if err := c.call(ctx, int64(-1-i)); err != nil {
				return err
			}
		}
		_, _, err = runConcurrent(ctx, s.conc, cfg.Duration/10)
		return err
	})
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

func (s *subject) dial() (caller, error) {
	switch s.name {
	case sysGoxpc:
		return dialGoxpc(s.ep)
	case sysRaw:
		return dialRaw(s.ch.rd.Addr, *requestBytes(sysRaw))
	case sysRawHandoff:
		return dialRawHandoff(s.ch.rd.Addr, *requestBytes(sysRaw))
	case sysRawNoSched:
		return dialRawNoSched(s.ch.rd.Addr, *requestBytes(sysRaw))
	case sysRawEpoll:
		return dialRawEpoll(s.ch.rd.Addr, *requestBytes(sysRaw))
	case sysRawStream:
		return dialRawStream(s.ch.rd.Addr, *requestBytes(sysRaw))
	case sysDBus:
		return dialDBus(s.ch.rd.Addr)
	case sysGRPC:
		return dialGRPC(s.ch.rd.Addr)
	case sysTTRPC:
		return dialTTRPC(s.ch.rd.Addr)
	}
	return nil, fmt.Errorf("unknown system %q", s.name)
}

// labelled runs fn with this goroutine carrying the system's pprof label.
func (s *subject) labelled(fn func(ctx context.Context) error) error {
	var err error
	pprof.Do(s.labels, pprof.Labels(), func(ctx context.Context) { err = fn(ctx) })
	return err
}

func (s *subject) stop() {
	for _, c := range s.owned {
		c.close()
	}
	s.owned = nil
	if s.ep != nil {
		s.ep.Close()
		s.ep = nil
	}
	if s.ch != nil {
		s.ch.stop()
		s.ch = nil
	}
}

// rounds is how many turns the ping phases are split into.
func (c *Config) rounds() int { return max(1, min(c.Rounds, c.Calls)) }

// pingPhases runs the sequential and the concurrent phase, each split into
// rounds, every system taking its turn in each round.
func pingPhases(cfg *Config, subs []*subject) error {
	r := cfg.rounds()
	for round := range r {
		calls := cfg.Calls / r
		if round < cfg.Calls%r {
			calls++
		}
		for _, s := range subs {
			if err := s.labelled(func(ctx context.Context) error { return s.latencyTurn(ctx, calls) }); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}
	d := cfg.Duration / time.Duration(r)
	for range r {
		for _, s := range subs {
			err := s.labelled(func(ctx context.Context) error {
				// A short warm-up: the previous turn was another system's.
				if _, _, err := runConcurrent(ctx, s.conc, d/10); err != nil {
					return err
				}
				k, el, err := runConcurrent(ctx, s.conc, d)
				s.concCalls += k
				s.concElapsed += el
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}
	return nil
}

// latencyTurn makes n timed sequential calls, counting the allocations of
// both processes meanwhile.
func (s *subject) latencyTurn(ctx context.Context, n int) error {
	// Settle the previous turn's garbage so that a collection it owes
	// is not charged to this one.
	runtime.GC()
	s0, err := s.ch.stats(false)
	if err != nil {
		return err
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0, err := cpuTime()
	if err != nil {
		return err
	}
	seq := int64(len(s.lat))
	for range n {
		t := time.Now()
		if err := s.c.call(ctx, seq); err != nil {
			return err
		}
		s.lat = append(s.lat, time.Since(t))
		seq++
	}
	cpu1, err := cpuTime()
	if err != nil {
		return err
	}
	runtime.ReadMemStats(&m1)
	s1, err := s.ch.stats(false)
	if err != nil {
		return err
	}
	s.clientCPU += cpu1 - cpu0
	s.serverCPU += s1.CPUNanos - s0.CPUNanos
	s.clientMallocs += m1.Mallocs - m0.Mallocs
	s.serverMallocs += s1.Mallocs - s0.Mallocs
	return nil
}

// startProfiles starts, if asked for, a CPU profile of this process
// (client-gmpN.pprof, samples labelled system=NAME) and of every server
// (server-SYSTEM-gmpN.pprof) for the ping phases, and returns the function
// that stops them all.
func startProfiles(cfg *Config, subs []*subject, n int) (func() error, error) {
	if cfg.CPUProfileDir == "" {
		return func() error { return nil }, nil
	}
	dir, err := filepath.Abs(cfg.CPUProfileDir)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("client-gmp%d.pprof", n)))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	stop := func() error {
		pprof.StopCPUProfile()
		errs := []error{f.Close()}
		for _, s := range subs {
			if s.stopServerProf {
				errs = append(errs, s.ch.profile(""))
				s.stopServerProf = false
			}
		}
		return errors.Join(errs...)
	}
	for _, s := range subs {
		if err := s.ch.profile(filepath.Join(dir, fmt.Sprintf("server-%s-gmp%d.pprof", s.name, n))); err != nil {
			stop()
			return nil, err
		}
		s.stopServerProf = true
	}
	return stop, nil
}

// isRaw tells the raw systems, whose datagrams carry no request id: each
// concurrent requester needs its own connection.
func isRaw(name string) bool {
	return name == sysRaw || name == sysRawHandoff || name == sysRawNoSched || name == sysRawEpoll || name == sysRawStream
}
