package criteria

import (
	"context"
	"testing"
)

// BenchmarkRead reads each condition from this machine's /sys and /proc,
// and the session ones from a fake logind with two sessions of the uid on
// a private dbus-daemon.
func BenchmarkRead(b *testing.B) {
	bus := startBus(b, "")
	m := startLogind(b, bus)
	m.add("2", 1000, "user", "x11")
	m.add("3", 1000, "user", "tty")
	l, err := NewLinux(context.Background(), Config{SystemBus: bus.Addr})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for _, c := range []Condition{OnBattery, Network, CPUPressure, UserIdle, ScreenLocked} {
		b.Run(string(c), func(b *testing.B) {
			for b.Loop() {
				l.Read(context.Background(), c, 1000)
			}
		})
	}
}
