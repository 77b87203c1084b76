package xpcd

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeNotifier is a PressureNotifier the test drives.
type fakeNotifier struct {
	pressure atomic.Bool
	asked    atomic.Int64
	notes    chan struct{}
	fail     error
	stopped  atomic.Bool
}

func (f *fakeNotifier) UnderPressure() (bool, error) {
	f.asked.Add(1)
	return f.pressure.Load(), nil
}

func (f *fakeNotifier) NotifyPressure() (<-chan struct{}, func(), error) {
	if f.fail != nil {
		return nil, nil, f.fail
	}
	return f.notes, func() { f.stopped.Store(true) }, nil
}

// runPressure runs watchPressure until the test ends, counting presses.
func runPressure(t *testing.T, src PressureSource, interval time.Duration) *atomic.Int64 {
	var pressed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchPressure(stop, src, interval, slog.New(slog.NewTextHandler(io.Discard, nil)), func() { pressed.Add(1) })
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	return &pressed
}

// A source that notifies is asked once at start and then only around its
// notifications: an idle hour costs no look at it. After a notification
// it is asked every interval while it says yes, and for pressureLinger
// after the notification.
func TestPressureNotifiedNotPolled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeNotifier{notes: make(chan struct{}, 1)}
		pressed := runPressure(t, src, 5*time.Second)
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := src.asked.Load(); n != 1 {
			t.Fatalf("asked %d times in an idle hour, want once (at start)", n)
		}
		// A notification, no pressure by avg10 yet: asked at 0, 5 and 10 s.
		src.notes <- struct{}{}
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := src.asked.Load(); n != 4 {
			t.Errorf("asked %d times after a notification without pressure, want 1+3", n)
		}
		// Pressure: pressed every interval while it holds.
		src.pressure.Store(true)
		src.notes <- struct{}{}
		time.Sleep(30*time.Second + time.Millisecond)
		synctest.Wait()
		if n := pressed.Load(); n != 7 {
			t.Errorf("pressed %d times in 30 s of pressure, want 7 (0, 5, ... 30 s)", n)
		}
		src.pressure.Store(false)
		time.Sleep(time.Hour)
		synctest.Wait()
		n := src.asked.Load()
		time.Sleep(time.Hour)
		synctest.Wait()
		if m := src.asked.Load(); m != n || pressed.Load() != 7 {
			t.Errorf("still asked after the pressure ended: %d, then %d", n, m)
		}
	})
}

// A source that cannot notify, or whose notifications end, is asked on
// the timer, as one that is no PressureNotifier.
func TestPressureNotifierFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		failing := &fakeNotifier{fail: errors.New("no trigger")}
		runPressure(t, failing, 5*time.Second)
		ended := &fakeNotifier{notes: make(chan struct{})}
		runPressure(t, ended, 5*time.Second)
		plain := &fakeNotifier{}
		runPressure(t, PressureFunc(plain.UnderPressure), 5*time.Second)
		synctest.Wait()
		close(ended.notes)
		time.Sleep(time.Minute + time.Millisecond)
		synctest.Wait()
		if n := failing.asked.Load(); n != 12 {
			t.Errorf("a source that cannot notify: asked %d times a minute, want 12", n)
		}
		if n := plain.asked.Load(); n != 12 {
			t.Errorf("a PressureFunc: asked %d times a minute, want 12", n)
		}
		if n := ended.asked.Load(); n != 13 {
			t.Errorf("after its notifications ended: asked %d times, want 1 (start) + 12", n)
		}
	})
}

// The kernel's PSI trigger: made (here, as root), and released on stop.
func TestPSIMemoryNotify(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/pressure/memory"); err != nil {
		t.Skip("no PSI:", err)
	}
	c, stop, err := PSIMemory{}.NotifyPressure()
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skip("no trigger without privilege on this kernel:", err)
		}
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not return")
	}
	for range c { // drained, then closed by stop
	}
	if _, _, err := (PSIMemory{Path: "/nonexistent/pressure"}).NotifyPressure(); err == nil {
		t.Error("a trigger on a missing file")
	}
}
