package criteria

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/goxpc/xpc/internal/dbusdial"
)

// DefaultSystemBus is the system bus's address when
// DBUS_SYSTEM_BUS_ADDRESS is not set (the D-Bus specification's).
const DefaultSystemBus = dbusdial.DefaultSystemBus

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

// resolved is c with its defaults filled in, or an error wrapping
// ErrBadConfig.
func (c Config) resolved() (Config, error) {
	if c.Root == "" {
		c.Root = "/"
	}
	if c.SystemBus == "" {
		c.SystemBus = os.Getenv("DBUS_SYSTEM_BUS_ADDRESS")
	}
	if c.SystemBus == "" {
		c.SystemBus = DefaultSystemBus
	}
	for _, t := range []struct {
		name string
		v    *float64
		def  float64
	}{{"CPUPressure", &c.CPUPressure, DefaultCPUPressure}, {"MemoryPressure", &c.MemoryPressure, DefaultMemoryPressure}, {"IOPressure", &c.IOPressure, DefaultIOPressure}} {
		if *t.v == 0 {
			*t.v = t.def
		}
		if !(*t.v > 0 && *t.v <= 100) {
			return c, fmt.Errorf("%w: %s: want a percentage above 0 and at most 100, have %v", ErrBadConfig, t.name, *t.v)
		}
	}
	if c.Retry < 0 {
		return c, fmt.Errorf("%w: Retry: negative (%v)", ErrBadConfig, c.Retry)
	}
	if c.Retry == 0 {
		c.Retry = DefaultRetry
	}
	return c, nil
}
