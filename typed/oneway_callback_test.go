package typed_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/goxpc/xpc/typed/internal/feed"
)

// feeder puts 0..n-1 into its sink, one-way.
type feeder struct{}

func (feeder) Feed(ctx context.Context, n int, s feed.Sink) (int, error) {
	for i := range n {
		s.Put(ctx, i)
	}
	return n, nil
}

// sink records what was put into it.
type sink struct {
	mu  sync.Mutex
	got []int
}

func (s *sink) Put(ctx context.Context, i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, i)
}

// TestOneWayCallbacksRunBeforeTheCallReturns: the one-way calls a method
// makes through a callback before it returns have all run, in order, when
// the client's call returns: none is lost to the end of the callback's
// lifetime, none runs after the call.
func TestOneWayCallbacksRunBeforeTheCallReturns(t *testing.T) {
	ctx := testContext(t)
	f := feed.NewFeederClient(serveInProcess(t, feed.NewFeederServer(feeder{})))
	want := []int{0, 1, 2, 3, 4}
	for round := range 300 {
		var s sink
		n, err := f.Feed(ctx, len(want), &s)
		if err != nil || n != len(want) {
			t.Fatalf("round %d: Feed = %d, %v", round, n, err)
		}
		s.mu.Lock()
		got := slices.Clone(s.got)
		s.mu.Unlock()
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: when Feed returned, the sink had %v, want %v", round, got, want)
		}
	}
}
