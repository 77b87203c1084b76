package criteria

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRouteChangesSignalled brings loopback up in a network namespace of
// the test's own and expects Changed from the rtnetlink socket.
func TestRouteChangesSignalled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip command:", err)
	}
	noBusAddr := noBus(t)
	errc := make(chan string, 1)
	go func() {
		// Never unlocked: the thread, in a namespace of its own, ends
		// with the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- "unshare: " + err.Error()
			return
		}
		l, err := NewLinux(context.Background(), Config{SystemBus: noBusAddr})
		if err != nil {
			errc <- err.Error()
			return
		}
		defer l.Close()
		drain(l)
		if out, err := exec.Command(ip, "link", "set", "lo", "up").CombinedOutput(); err != nil {
			errc <- "ip link set lo up: " + err.Error() + ": " + string(out)
			return
		}
		select {
		case <-l.Changed():
			errc <- ""
		case <-time.After(10 * time.Second):
			errc <- "no Changed after loopback came up"
		}
	}()
	if msg := <-errc; msg != "" {
		t.Fatal(msg)
	}
}
