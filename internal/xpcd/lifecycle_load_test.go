package xpcd

import (
	"sync"
	"testing"

	"github.com/goxpc/xpc"
)

// A hundred clients, each with its own service connection (its own
// bootstrap connection and socket pair), look a cold service up at once:
// xpcd launches it exactly once and every client is served by that one
// process.
func TestLifecycleLoadColdLaunchOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(h.lcJob("test.load", []string{"test.load.svc"}, nil, nil, ""))
	h.start()
	if st := strOf(h.print("test.load"), "state"); st != "waiting" {
		t.Fatalf("state before any client = %q, want waiting", st)
	}

	const n = 100
	conns := make([]*xpc.Connection, n)
	for i := range conns {
		conns[i], _ = h.serviceConn("test.load.svc")
	}
	pids := make([]int, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := call(t, c, "ping")
			if err != nil {
				errs[i] = err
				return
			}
			pid, _ := r.Int64("pid")
			pids[i] = int(pid)
		}()
	}
	close(start)
	wg.Wait()

	served := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("client %d: %v", i, errs[i])
			continue
		}
		served++
		if pids[i] == 0 || pids[i] != pids[0] {
			t.Errorf("client %d served by pid %d, client 0 by %d: want one instance", i, pids[i], pids[0])
		}
	}
	if served != n {
		t.Fatalf("%d of %d clients served", served, n)
	}
	d := h.print("test.load")
	if runs := intOf(d, "runs"); runs != 1 {
		t.Errorf("runs = %d, want exactly one launch", runs)
	}
	if strOf(d, "state") != "running" || intOf(d, "pid") != pids[0] || strOf(d, "launch_reason") != "demand" {
		t.Errorf("job after the burst: %s", xpc.Format(d))
	}
	if intOf(d, "connections_total") != n || intOf(d, "queued") != 0 {
		t.Errorf("connections/queued after the burst: %s", xpc.Format(d))
	}
}
