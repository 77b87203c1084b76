package typed_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	v1 "github.com/goxpc/xpc/typed/internal/weatherv1"
)

// stuckProgress is a client's callback that never answers until released.
type stuckProgress struct{ release chan struct{} }

func (p stuckProgress) Update(ctx context.Context, done, total int) error {
	<-p.release
	return nil
}

// A client whose callback never answers does not hold the method: the
// call through the callback proxy ends at the server's callback timeout,
// the method returns, and the caller gets its error well before its own
// deadline.
func TestCallbackTimeout(t *testing.T) {
	srv := v1.NewWeatherServer(&weather1{})
	srv.SetCallbackTimeout(300 * time.Millisecond)
	c := serveInProcess(t, srv)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	w := v1.NewWeatherClient(c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := w.Watch(ctx, "Paris", 2, stuckProgress{release})
	var re *xpc.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("Watch with a callback that never answers: %v, want the method's error", err)
	}
	if elapsed := time.Since(start); elapsed > 4*time.Second {
		t.Errorf("the method returned after %v", elapsed)
	}
}
