package criteria

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// Linux answers conditions from the Linux machine's sources:
// /sys/class/power_supply, the kernel's routes, /proc/pressure, and logind
// and NetworkManager over the system bus. docs/XPCD.md, "Activity
// criteria: where answers come from", says which source answers what.
// It is safe for concurrent use.
type Linux struct {
	cfg     Config
	log     *slog.Logger
	changed chan struct{}
	wg      sync.WaitGroup // the goroutines watching the bus and netlink

	mu       sync.Mutex
	closed   bool
	bus      *dbus.Conn    // nil: not connected
	dialing  chan struct{} // closed when the dial under way ends
	nextDial time.Time     // no dial before this
	dials    int           // dials tried, for tests
	busWhy   string        // why bus is nil, for Facts
	routes   io.Closer     // the rtnetlink socket, or nil
}

// NewLinux returns the Linux sources of cfg. It connects to the system bus
// within ctx, but a bus, logind, NetworkManager or PSI that is absent does
// not fail it: the conditions they answer are then unknown, and the bus is
// tried again on a later Read. It fails only for a bad cfg.
func NewLinux(ctx context.Context, cfg Config) (*Linux, error) {
	cfg, err := cfg.resolved()
	if err != nil {
		return nil, err
	}
	l := &Linux{cfg: cfg, log: cfg.Log, changed: make(chan struct{}, 1)}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if filepath.Clean(cfg.Root) == "/" {
		l.watchRoutes()
	}
	l.connect(ctx)
	return l, nil
}

// Read implements Sources.
func (l *Linux) Read(ctx context.Context, c Condition, uid uint32) Fact {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return Fact{Why: "the sources are closed"}
	}
	switch c {
	case OnBattery:
		return l.readPower()
	case Network:
		return l.readNetwork(ctx)
	case InexpensiveNetwork:
		return l.readMetered(ctx)
	case ScreenLocked, UserIdle:
		return l.readSessions(ctx, c, uid)
	case CPUPressure:
		return l.readPressure("cpu", l.cfg.CPUPressure)
	case MemoryPressure:
		return l.readPressure("memory", l.cfg.MemoryPressure)
	case IOPressure:
		return l.readPressure("io", l.cfg.IOPressure)
	}
	return Fact{Why: fmt.Sprintf("no source for condition %q", c)}
}

// Changed implements Sources. It is sent on when logind's sessions or
// their idle and lock hints change, when NetworkManager's properties
// change, when logind or NetworkManager come or go on the bus, when the
// bus is lost, and (Root "/") when the kernel's routes or links change.
// Battery and pressure are not signalled: a caller re-reads them.
func (l *Linux) Changed() <-chan struct{} { return l.changed }

// notify signals Changed without blocking.
func (l *Linux) notify() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// Close implements Sources: it closes the bus connection and the netlink
// socket and waits for the goroutines watching them. Reads after Close
// answer unknown.
func (l *Linux) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	bus, routes := l.bus, l.routes
	l.bus, l.routes = nil, nil
	l.mu.Unlock()
	var err error
	if bus != nil {
		err = bus.Close()
	}
	if routes != nil {
		if rerr := routes.Close(); err == nil {
			err = rerr
		}
	}
	l.wg.Wait()
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// path is p (a path from the machine's root, without the leading slash)
// under cfg.Root.
func (l *Linux) path(p string) string { return filepath.Join(l.cfg.Root, p) }
