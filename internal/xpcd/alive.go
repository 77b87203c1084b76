package xpcd

import (
	"context"
	"fmt"
)

// Alive reports whether the supervisor loop is turning: it hands the loop
// a no-op and waits until the loop has run it, or ctx ends. A loop stuck
// in one step (which it must never be) makes it return ctx's error; a
// stopped one, an error too. cmd/xpcd asks it before each ping of
// systemd's watchdog, so that a stuck xpcd is restarted. It costs one
// closure on the loop.
func (d *Daemon) Alive(ctx context.Context) error {
	m := d.sup
	done := make(chan struct{})
	select {
	case m.events <- func() { close(done) }:
	case <-m.stopped:
		return fmt.Errorf("xpcd: supervisor loop: %w", errStopped)
	case <-ctx.Done():
		return fmt.Errorf("xpcd: supervisor loop did not take a probe: %w", ctx.Err())
	}
	select {
	case <-done:
		return nil
	case <-m.stopped:
		return fmt.Errorf("xpcd: supervisor loop: %w", errStopped)
	case <-ctx.Done():
		return fmt.Errorf("xpcd: supervisor loop did not answer a probe: %w", ctx.Err())
	}
}
