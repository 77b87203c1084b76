package xpcd

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// Alive answers while the loop turns and times out while it is stuck in a
// step, which is what keeps cmd/xpcd from pinging systemd's watchdog then.
func TestAliveStuckLoop(t *testing.T) {
	h := newHarness(t)
	d := h.start()
	if err := d.Alive(testCtx(t)); err != nil {
		t.Fatalf("Alive: %v", err)
	}
	release := make(chan struct{})
	d.sup.post(func() { <-release })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err := d.Alive(ctx)
	cancel()
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Alive with the loop stuck: %v, want context.DeadlineExceeded", err)
	}
	if err := d.Alive(testCtx(t)); err != nil {
		t.Fatalf("Alive after the loop went on: %v", err)
	}
	h.close(d)
	if err := d.Alive(testCtx(t)); err == nil {
		t.Fatal("Alive after Close: nil")
	}
}

// BenchmarkAlive is what one watchdog probe costs: a closure through the
// loop and back.
func BenchmarkAlive(b *testing.B) {
	dir, err := os.MkdirTemp("", "xpcd")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	paths := bootstrap.ForRoot(dir, true)
	d, err := New(Config{Paths: paths, Logger: discardLogger(), PressureInterval: -1, UpgradeInterval: -1, JournalSocket: "-"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer d.Close(ctx)
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Alive(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
