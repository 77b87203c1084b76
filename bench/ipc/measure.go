package ipc

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// caller makes send-with-reply calls of the ping on one connection.
type caller interface {
	call(ctx context.Context, seq int64) error
	close() error
}

// percentiles returns the median, 99th percentile and mean of ds, in
// microseconds. It sorts ds.
func percentiles(ds []time.Duration) (p50, p99, mean float64) {
	n := len(ds)
	if n == 0 {
		return 0, 0, 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	slices.Sort(ds)
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	return us(ds[n/2]), us(ds[min(n-1, n*99/100)]), us(sum / time.Duration(n))
}

// runConcurrent runs one requester per caller (the same caller may appear
// several times, to share a connection), each calling in a loop for d. It
// returns the calls made and the time until the last requester finished.
func runConcurrent(ctx context.Context, callers []caller, d time.Duration) (int64, time.Duration, error) {
	var total atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	start := time.Now()
	deadline := start.Add(d)
	for g, c := range callers {
		wg.Go(func() {
			var i int64
			for time.Now().Before(deadline) {
				if err := c.call(ctx, int64(g)<<40|i); err != nil {
					once.Do(func() { first = err })
					break
				}
				i++
			}
			total.Add(i)
		})
	}
	wg.Wait()
	return total.Load(), time.Since(start), first
}
