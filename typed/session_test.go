package typed_test

import (
	"errors"
	"testing"

	"github.com/goxpc/xpc"
	v1 "github.com/goxpc/xpc/typed/internal/weatherv1"
)

// A generated client works over an xpc.Session as over a Connection:
// results, restored errors, one-way calls in order, callbacks and the
// caller's identity. When the service goes, every later call fails with
// the session's error (a *xpc.SessionError that says whether to retry):
// the session does not come back by itself.
func TestGeneratedClientOverSession(t *testing.T) {
	ctx := testContext(t)
	l := listenInProcess(t, v1.NewWeatherServer(&weather1{}))
	ep, err := l.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	s, err := xpc.NewEndpointSession(ctx, ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Cancel)
	exerciseV1(t, ctx, s)

	for _, p := range l.Peers() {
		p.Cancel()
	}
	w := v1.NewWeatherClient(s)
	for i := range 2 {
		_, err := w.Forecast(ctx, v1.Request{City: "Paris", Days: 1})
		var se *xpc.SessionError
		if !errors.As(err, &se) {
			t.Fatalf("call %d after the service went: %v, want a *xpc.SessionError", i, err)
		}
		if !errors.Is(err, xpc.ErrInvalid) || !se.CanRetry {
			t.Errorf("call %d after the service went: %v (CanRetry %v), want ErrInvalid (an endpoint's peer does not come back) and CanRetry", i, err, se.CanRetry)
		}
	}
}
