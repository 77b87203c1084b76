package xpcd

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// openFDs lists this process's descriptors. The runtime's poller keeps two
// (an epoll instance and an eventfd) from its first use on: it is made
// before they are listed, so that a test run alone, or first (go test -run),
// does not count them as its own leak (as leakCheck does in package xpc).
func openFDs(t *testing.T) map[int]string {
	t.Helper()
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	m := map[int]string{}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			m[fd] = target
		}
	}
	return m
}

// A whole lifecycle (launch, clients, crash, relaunch, bootout, close)
// leaves no descriptor open. Not parallel: it counts the process's
// descriptors, so it runs before the parallel tests start.
func TestNoDescriptorLeak(t *testing.T) {
	before := openFDs(t)
	func() {
		h := newHarness(t)
		h.writePlist(testJob{label: "test.leak", names: []string{"test.leak.svc"}, extra: map[string]any{"ThrottleInterval": 1}})
		h.writePlist(testJob{label: "test.leak2", names: []string{"test.leak2.svc"}, runAtLoad: true})
		d := h.start()
		c := h.mustLookup("test.leak.svc")
		ping(t, c)
		call(t, c, "crash")
		c.Cancel()
		h.lookupPing("test.leak.svc")
		h.waitState("test.leak2", "running")
		// A client that never gets served: its socket is closed at bootout.
		h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, h.target("test.leak2"))
		h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, h.target("test.leak"), bootstrap.KeyWait, true)
		h.close(d)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := openFDs(t)
		var leaked []string
		for fd, target := range after {
			if before[fd] != target {
				leaked = append(leaked, strconv.Itoa(fd)+" -> "+target)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("descriptors left open: %v", leaked)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
