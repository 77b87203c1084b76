package criteria

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// DefaultSystemBus is the system bus's address when
// DBUS_SYSTEM_BUS_ADDRESS is not set (the D-Bus specification's).
const DefaultSystemBus = "unix:path=/run/dbus/system_bus_socket"

// Default pressure thresholds, in percent of "some avg10": the share of
// the last ten seconds in which at least one task stalled on the resource.
const (
	DefaultCPUPressure    = 40.0
	DefaultMemoryPressure = 10.0
	DefaultIOPressure     = 30.0
)

// DefaultRetry is how long Linux waits, after failing to reach the
// system bus or losing it, before a Read tries again.
const DefaultRetry = 10 * time.Second

// ErrBadConfig is the kind of error NewLinux gives for a Config it cannot
// honour.
var ErrBadConfig = errors.New("bad criteria config")

// Config configures Linux. Its zero value reads the machine's /sys and
// /proc, the system bus of DBUS_SYSTEM_BUS_ADDRESS or DefaultSystemBus,
// with the default thresholds, and logs nothing.
type Config struct {
	// Root is the directory /sys and /proc are read under ("" is "/");
	// tests point it at a fake tree. The kernel's route changes are
	// watched (rtnetlink) only when Root is "/".
	Root string
	// SystemBus is the system bus's address ("unix:path=..." or
	// "unix:abstract=...", several separated by ";"). "" is
	// $DBUS_SYSTEM_BUS_ADDRESS, or DefaultSystemBus when that is unset.
	SystemBus string
	// CPUPressure, MemoryPressure, IOPressure are the thresholds, in
	// percent (0 < t <= 100) of /proc/pressure's "some avg10", over which
	// the machine is under that pressure. 0 is the default
	// (DefaultCPUPressure, ...).
	CPUPressure, MemoryPressure, IOPressure float64
	// Retry is how long to wait before trying the system bus again after
	// it could not be reached or was lost; 0 is DefaultRetry.
	Retry time.Duration
	// Log receives what the sources learn about themselves (the bus came
	// or went); nil discards it.
	Log *slog.Logger
}

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
	routes   *os.File      // the rtnetlink socket, or nil
}

// NewLinux returns the Linux sources of cfg. It connects to the system bus
// within ctx, but a bus, logind, NetworkManager or PSI that is absent does
// not fail it: the conditions they answer are then unknown, and the bus is
// tried again on a later Read. It fails only for a bad cfg.
func NewLinux(ctx context.Context, cfg Config) (*Linux, error) {
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if cfg.SystemBus == "" {
		cfg.SystemBus = os.Getenv("DBUS_SYSTEM_BUS_ADDRESS")
	}
	if cfg.SystemBus == "" {
		cfg.SystemBus = DefaultSystemBus
	}
	for _, t := range []struct {
		name string
		v    *float64
		def  float64
	}{{"CPUPressure", &cfg.CPUPressure, DefaultCPUPressure}, {"MemoryPressure", &cfg.MemoryPressure, DefaultMemoryPressure}, {"IOPressure", &cfg.IOPressure, DefaultIOPressure}} {
		if *t.v == 0 {
			*t.v = t.def
		}
		if !(*t.v > 0 && *t.v <= 100) {
			return nil, fmt.Errorf("%w: %s: want a percentage above 0 and at most 100, have %v", ErrBadConfig, t.name, *t.v)
		}
	}
	if cfg.Retry < 0 {
		return nil, fmt.Errorf("%w: Retry: negative (%v)", ErrBadConfig, cfg.Retry)
	}
	if cfg.Retry == 0 {
		cfg.Retry = DefaultRetry
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
	var errs []error
	if bus != nil {
		errs = append(errs, bus.Close())
	}
	if routes != nil {
		errs = append(errs, routes.Close())
	}
	l.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// path is p (a path from the machine's root, without the leading slash)
// under cfg.Root.
func (l *Linux) path(p string) string { return filepath.Join(l.cfg.Root, p) }
