package ipc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// bulkVariant is one way of moving the bulk buffer to a server: once moves
// it and checks the server's answer.
type bulkVariant struct {
	name  string
	dst   **float64
	once  func() error
	times []time.Duration
}

// bulkPhase measures every bulk variant of goxpc and raw-unix, interleaved:
// each variant once as a warm-up, then Config.BulkIters rounds in which
// every variant moves the buffer once. A variant's figure is the buffer's
// size over its median time, so that one slow call (the machine busy
// elsewhere) does not move it.
func bulkPhase(ctx context.Context, cfg *Config, subs []*subject) error {
	src, sum := bulkSource(cfg.BulkBytes)
	var vs []*bulkVariant
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for _, s := range subs {
		r := &s.row
		switch s.name {
		case sysGoxpc:
			g := s.c.(*goxpcCaller)
			shm, err := newBulkShm(g, src, sum)
			if err != nil {
				return err
			}
			closers = append(closers, shm.close)
			vs = append(vs,
				&bulkVariant{name: "goxpc shared memory", dst: &r.MBPerS16M, once: func() error { return shm.once(ctx) }},
				&bulkVariant{name: "goxpc sealed shared memory", dst: &r.MBPerS16MShmSealed, once: func() error { return bulkShmSealed(ctx, g, src, sum) }},
				&bulkVariant{name: "goxpc data echo", dst: &r.MBPerS16MDataEcho, once: func() error { return bulkData(ctx, g, src, sum, true) }},
				&bulkVariant{name: "goxpc data one way", dst: &r.MBPerS16MDataOneWay, once: func() error { return bulkData(ctx, g, src, sum, false) }},
			)
		case sysRaw:
			b, err := dialRawBulk(s.ch.rd.Addr2)
			if err != nil {
				return err
			}
			closers = append(closers, b.close)
			vs = append(vs,
				&bulkVariant{name: "raw echo", dst: &r.MBPerS16M, once: func() error { return b.once(src, sum, true) }},
				&bulkVariant{name: "raw one way", dst: &r.MBPerS16MOneWay, once: func() error { return b.once(src, sum, false) }},
			)
		}
	}
	if len(vs) == 0 {
		return nil
	}
	for round := -1; round < cfg.BulkIters; round++ {
		for _, v := range vs {
			t := time.Now()
			if err := v.once(); err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			if round >= 0 {
				v.times = append(v.times, time.Since(t))
			}
		}
	}
	for _, v := range vs {
		slices.Sort(v.times)
		med := v.times[len(v.times)/2]
		if med <= 0 {
			return errors.New(v.name + ": no time measured")
		}
		mbps := float64(cfg.BulkBytes) / med.Seconds() / 1e6
		*v.dst = &mbps
	}
	return nil
}
