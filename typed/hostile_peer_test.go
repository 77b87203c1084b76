package typed_test

import (
	"context"
	"errors"
	"os"
	"runtime/debug"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/typed"
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

// Descriptors a reply carries under keys the caller does not decode (a
// newer or a hostile service's extra results) are closed by the client,
// not left to the garbage collector.
func TestReplyExtraDescriptorsClosed(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	c := serveInProcess(t, xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
		m.Reply(ctx, xpc.Dict(typed.ResultKey(0), 7, "extra", xpc.NewFD(w)))
	}))
	cl := v1.NewWeatherClient(c)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	ctx := context.Background()
	if _, err := cl.Caller(ctx); err != nil { // the connection's own descriptors settle
		t.Fatal(err)
	}
	before := openFDs(t)
	for range 20 {
		if n, err := cl.Caller(ctx); err != nil || n != 7 {
			t.Fatalf("Caller: %d, %v", n, err)
		}
	}
	if after := openFDs(t); after > before+2 {
		t.Errorf("descriptors open: %d before 20 calls, %d after", before, after)
	}
}
