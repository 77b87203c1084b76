package ipc

import (
	"errors"
	"os"
	"slices"
	"syscall"
)

// measureIdle opens cfg.IdleConns goxpc connections, one round trip each,
// and measures every process involved before and after. The client ends
// live in child processes of their own (goxpc-idle-client), so that
// nothing else in them moves the figures. goxpc holds three descriptors per
// client connection and two per server connection: when RLIMIT_NOFILE
// cannot be raised far enough (a container without CAP_SYS_RESOURCE), the
// connections are spread over several client and server pairs.
func measureIdle(cfg *Config, procs int, dir string) (*IdleResult, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, err
	}
	perProc := max(1, (int(lim.Cur)-64)/3)
	pairs := (cfg.IdleConns + perProc - 1) / perProc
	var servers, clients []*child
	defer func() {
		for _, c := range slices.Concat(clients, servers) {
			c.stop()
		}
	}()
	for range pairs {
		srv, err := startChild(cfg.Exe, sysGoxpc, procs, cfg.Log, nil, "-dir", dir)
		if err != nil {
			return nil, err
		}
		servers = append(servers, srv)
		if len(srv.fds) != 1 {
			return nil, errors.New("goxpc server sent no endpoint")
		}
		ep := os.NewFile(uintptr(srv.fds[0]), "endpoint")
		srv.fds = nil
		cli, err := startChild(cfg.Exe, sysIdleClient, procs, cfg.Log, ep)
		ep.Close()
		if err != nil {
			return nil, err
		}
		clients = append(clients, cli)
	}

	type snapshot struct {
		client, server procStats
		slab           int64
	}
	sum := func(cs []*child, into *procStats) error {
		for _, c := range cs {
			st, err := c.stats(true)
			if err != nil {
				return err
			}
			into.RSSKiB += st.RSSKiB
			into.HeapInuse += st.HeapInuse
			into.StackInuse += st.StackInuse
			into.Goroutines += st.Goroutines
		}
		return nil
	}
	snap := func() (s snapshot, err error) {
		if err = errors.Join(sum(clients, &s.client), sum(servers, &s.server)); err != nil {
			return
		}
		s.slab, err = statusKiB("/proc/meminfo", "Slab:")
		return
	}
	before, err := snap()
	if err != nil {
		return nil, err
	}
	var open float64
	for i, cli := range clients {
		n := cfg.IdleConns / pairs
		if i < cfg.IdleConns%pairs {
			n++
		}
		rep, err := cli.ask(request{Cmd: "open", N: n})
		if err != nil {
			return nil, err
		}
		open += rep.Seconds
	}
	after, err := snap()
	if err != nil {
		return nil, err
	}
	n := float64(cfg.IdleConns)
	heap := func(s procStats) float64 { return float64(s.HeapInuse + s.StackInuse) }
	r := &IdleResult{
		Conns:         cfg.IdleConns,
		Pairs:         pairs,
		ClientRSSKiB:  float64(after.client.RSSKiB-before.client.RSSKiB) / n,
		ServerRSSKiB:  float64(after.server.RSSKiB-before.server.RSSKiB) / n,
		ClientHeapKiB: (heap(after.client) - heap(before.client)) / 1024 / n,
		ServerHeapKiB: (heap(after.server) - heap(before.server)) / 1024 / n,
		StackKiB:      float64(after.client.StackInuse+after.server.StackInuse-before.client.StackInuse-before.server.StackInuse) / 1024 / n,
		Goroutines:    float64(after.client.Goroutines-before.client.Goroutines+after.server.Goroutines-before.server.Goroutines) / n,
		KernelSlabKiB: float64(after.slab-before.slab) / n,
		OpenSeconds:   open,
	}
	r.RSSKiB = r.ClientRSSKiB + r.ServerRSSKiB
	r.HeapKiB = r.ClientHeapKiB + r.ServerHeapKiB
	return r, nil
}
