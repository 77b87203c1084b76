package typed_test

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/typed"
	v1 "github.com/goxpc/xpc/typed/internal/weatherv1"
	v2 "github.com/goxpc/xpc/typed/internal/weatherv2"
	"github.com/goxpc/xpc/xpctest"
)

// The services the test binary runs as, one per version of the interface.
const (
	weather1Name = "org.goxpc.typed.test.weather1"
	weather2Name = "org.goxpc.typed.test.weather2"
)

// TestHelperService is the service: the test binary, run by xpcd with
// TYPED_SERVE set to the version of the interface to serve.
func TestHelperService(t *testing.T) {
	version := os.Getenv("TYPED_SERVE")
	if version == "" {
		t.Skip("run by xpcd as a service")
	}
	ctx := context.Background()
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var h xpc.Handler
	name := weather1Name
	switch version {
	case "1":
		h = v1.NewWeatherServer(&weather1{})
	case "2":
		h, name = v2.NewWeatherServer(&weather2{}), weather2Name
	default:
		t.Fatalf("TYPED_SERVE=%q", version)
	}
	l, err := svc.Listen(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	typed.ServeListener(l, h)
	<-svc.Terminating()
	os.Exit(0)
}

func weatherPlist(label, version, name string) []byte {
	return xpctest.AgentPlist(label, []string{os.Args[0], "-test.run=^TestHelperService$"}, []string{name},
		map[string]any{"EnvironmentVariables": map[string]string{"TYPED_SERVE": version}, "ThrottleInterval": 1})
}

// newWeatherServer starts an xpcd serving both versions of the test
// interface, each in a process of its own.
func newWeatherServer(t *testing.T) *xpctest.Server {
	if testing.Short() {
		t.Skip("starts services")
	}
	return xpctest.NewServer(t,
		xpctest.WithPlist("weather1.plist", weatherPlist("org.goxpc.typed.test.weather1", "1", weather1Name)),
		xpctest.WithPlist("weather2.plist", weatherPlist("org.goxpc.typed.test.weather2", "2", weather2Name)))
}

// TestAcrossProcesses runs a generated client against a generated server
// in another process: results, remote errors restored by errors.As,
// one-way methods, callbacks, the caller's identity, and the versions of
// the interface against each other.
func TestAcrossProcesses(t *testing.T) {
	srv := newWeatherServer(t)
	ctx := testContext(t)
	t.Run("v1 client, v1 service", func(t *testing.T) { exerciseV1(t, ctx, srv.Connect(t, weather1Name)) })
	t.Run("v1 client, v2 service", func(t *testing.T) { exerciseV1(t, ctx, srv.Connect(t, weather2Name)) })
	t.Run("v2 client, v1 service", func(t *testing.T) { exerciseNewOnOld(t, ctx, srv.Connect(t, weather1Name)) })
	t.Run("unknown and malformed requests", func(t *testing.T) { exerciseMalformed(t, ctx, srv.Connect(t, weather2Name)) })
}

// exerciseMalformed sends requests no generated client sends: each gets
// its typed error, and the service goes on serving.
func exerciseMalformed(t *testing.T, ctx context.Context, c *xpc.Connection) {
	t.Helper()
	cases := []struct {
		name string
		req  *xpc.Dictionary
		want error
	}{
		{"unknown method", xpc.Dict(typed.MethodKey, "Tomorrow"), typed.ErrUnimplemented},
		{"no method", xpc.Dict("arg0", "Paris"), typed.ErrBadArguments},
		{"method not a string", xpc.Dict(typed.MethodKey, 7), typed.ErrBadArguments},
		{"argument of the wrong type", xpc.Dict(typed.MethodKey, "Forecast", "arg0", "Paris"), typed.ErrBadArguments},
		{"callback not an endpoint", xpc.Dict(typed.MethodKey, "Watch", "arg0", "Paris", "arg1", 2, "arg2", "call me"), typed.ErrBadArguments},
	}
	for _, tc := range cases {
		_, err := c.SendWithReply(ctx, tc.req)
		var re *xpc.RemoteError
		if !errors.Is(err, tc.want) || !errors.As(err, &re) {
			t.Errorf("%s: %v, want a remote error matching %v", tc.name, err, tc.want)
		}
	}
	if _, err := v2.NewWeatherClient(c).Caller(ctx); err != nil {
		t.Errorf("a call after the malformed ones: %v", err)
	}
}

// TestServiceKilledMidCall: a service that exits during a call fails the
// call with ErrInterrupted, not a hang; the next call reaches a new
// instance.
func TestServiceKilledMidCall(t *testing.T) {
	srv := newWeatherServer(t)
	ctx := testContext(t)
	c := srv.Connect(t, weather1Name)
	w := v1.NewWeatherClient(c)
	if _, err := w.Caller(ctx); err != nil {
		t.Fatal(err)
	}
	pid1 := c.Peer().PID
	if err := w.Crash(ctx); !errors.Is(err, xpc.ErrInterrupted) {
		t.Fatalf("Crash = %v, want ErrInterrupted", err)
	}
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err = w.Caller(ctx); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("after the crash: %v", err)
	}
	if c.Peer().PID == pid1 {
		t.Errorf("the crashed instance (pid %d) answered after the crash", pid1)
	}
	// A callback whose service dies mid-call ends the same way.
	var p progress1
	if _, err := w.Watch(ctx, "Rome", 2, killingProgress{&p, c}); !errors.Is(err, xpc.ErrInterrupted) {
		t.Errorf("Watch whose service died during a callback = %v, want ErrInterrupted", err)
	}
}

// killingProgress kills the service from inside a callback.
type killingProgress struct {
	*progress1
	c *xpc.Connection
}

func (p killingProgress) Update(ctx context.Context, done, total int) error {
	if err := p.c.Peer().Signal(syscall.SIGKILL); err != nil {
		return err
	}
	return p.progress1.Update(ctx, done, total)
}
