package typed_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/typed"
	v1 "github.com/goxpc/xpc/typed/internal/weatherv1"
	"go.uber.org/goleak"
)

func TestArgAndResultKeys(t *testing.T) {
	for i, want := range map[int]string{0: "arg0", 7: "arg7", 9: "arg9", 10: "arg10", 123: "arg123"} {
		if got := typed.ArgKey(i); got != want {
			t.Errorf("ArgKey(%d) = %q, want %q", i, got, want)
		}
	}
	for i, want := range map[int]string{0: "result0", 9: "result9", 10: "result10"} {
		if got := typed.ResultKey(i); got != want {
			t.Errorf("ResultKey(%d) = %q, want %q", i, got, want)
		}
	}
}

// pipeFD returns an FD object for the read end of a new pipe, and a
// function reporting whether that descriptor has been closed.
func pipeFD(t *testing.T) (*xpc.FD, func() bool) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return xpc.NewFD(r), func() bool {
		_, err := r.Stat()
		return errors.Is(err, os.ErrClosed)
	}
}

// TestDispatchClosesDescriptors: descriptors no argument takes are closed
// once the method returns; those in arguments belong to the method.
func TestDispatchClosesDescriptors(t *testing.T) {
	srv := v1.NewWeatherServer(&weather1{})
	ctx := context.Background()

	stray, strayClosed := pipeFD(t)
	badArg, badArgClosed := pipeFD(t)
	_, err := srv.Dispatch(ctx, nil, xpc.Dict(typed.MethodKey, "Forecast", "arg0", xpc.Dict("city", badArg), "extra", stray))
	if !errors.Is(err, typed.ErrBadArguments) {
		t.Errorf("Forecast with a descriptor for a city: %v, want ErrBadArguments", err)
	}
	if !strayClosed() || !badArgClosed() {
		t.Errorf("descriptors of a refused request left open: stray closed %v, argument closed %v", strayClosed(), badArgClosed())
	}

	unknown, unknownClosed := pipeFD(t)
	if _, err := srv.Dispatch(ctx, nil, xpc.Dict(typed.MethodKey, "Nope", "arg0", unknown)); !errors.Is(err, typed.ErrUnimplemented) {
		t.Errorf("unknown method: %v", err)
	}
	if !unknownClosed() {
		t.Error("descriptor of a request for an unknown method left open")
	}

	stray, strayClosed = pipeFD(t)
	if _, err := srv.Dispatch(ctx, nil, xpc.Dict(typed.MethodKey, "LastReport", "arg5", stray)); err != nil {
		t.Errorf("LastReport: %v", err)
	}
	if !strayClosed() {
		t.Error("descriptor under a key no argument takes left open")
	}

	if _, err := srv.Dispatch(ctx, nil, nil); !errors.Is(err, typed.ErrBadArguments) {
		t.Errorf("Dispatch of no body: %v, want ErrBadArguments", err)
	}
}

// fdTaker takes a descriptor as an argument.
type fdTaker interface {
	Take(ctx context.Context, fd *xpc.FD) error
}

type fdTakerFunc func(fd *xpc.FD)

func (f fdTakerFunc) Take(ctx context.Context, fd *xpc.FD) error { f(fd); return nil }

func TestDispatchLeavesArgumentDescriptors(t *testing.T) {
	svc := typed.NewService[fdTaker]("FDTaker", typed.Method[fdTaker]{Name: "Take",
		Invoke: func(ctx context.Context, impl fdTaker, in *typed.Invocation) error {
			var a0 *xpc.FD
			if err := in.Args(&a0); err != nil {
				return err
			}
			return impl.Take(ctx, a0)
		}})
	var got *xpc.FD
	srv := typed.NewServer(svc, fdTaker(fdTakerFunc(func(fd *xpc.FD) { got = fd })))
	fd, closed := pipeFD(t)
	if _, err := srv.Dispatch(context.Background(), nil, xpc.Dict(typed.MethodKey, "Take", "arg0", fd)); err != nil {
		t.Fatal(err)
	}
	if got != fd || closed() {
		t.Errorf("the method's descriptor: got %v (want %v), closed %v (want open: the method owns it)", got, fd, closed())
	}
}

func TestNewServiceDuplicatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewService with a method twice did not panic")
		}
	}()
	m := typed.Method[fdTaker]{Name: "Take"}
	typed.NewService("FDTaker", m, m)
}

func TestContextOutsideMethod(t *testing.T) {
	ctx := context.Background()
	if typed.PeerFromContext(ctx) != nil || typed.ConnectionFromContext(ctx) != nil || typed.MessageFromContext(ctx) != nil {
		t.Error("a context no method was given reports a caller")
	}
}

// fakeConn replies with a fixed reply.
type fakeConn struct {
	reply *xpc.Dictionary
	sent  *xpc.Dictionary
}

func (c *fakeConn) Send(ctx context.Context, msg *xpc.Dictionary) error { c.sent = msg; return nil }
func (c *fakeConn) SendWithReply(ctx context.Context, msg *xpc.Dictionary) (*xpc.Dictionary, error) {
	c.sent = msg
	return c.reply, nil
}

// TestBadReply: a result that does not decode is ErrBadReply, and the
// caller gets the zero value with it.
func TestBadReply(t *testing.T) {
	c := &fakeConn{reply: xpc.Dict("result0", "not a forecast")}
	f, err := v1.NewWeatherClient(c).Forecast(context.Background(), v1.Request{City: "Paris"})
	if !errors.Is(err, typed.ErrBadReply) || f.City != "" || f.Temps != nil {
		t.Errorf("Forecast with a bad reply = %+v, %v, want the zero value and ErrBadReply", f, err)
	}
	if m, _ := c.sent.String(typed.MethodKey); m != "Forecast" {
		t.Errorf("request named %q", m)
	}
	c.reply = xpc.NewDictionary(0)
	city, temp, err := v1.NewWeatherClient(c).LastReport(context.Background())
	if err != nil || city != "" || temp != 0 {
		t.Errorf("LastReport with results missing = %q, %v, %v, want zero values", city, temp, err)
	}
}

func TestArgumentThatDoesNotConvert(t *testing.T) {
	c := &fakeConn{reply: xpc.NewDictionary(0)}
	req := typed.NewRequest(xpc.String("M"), make(chan int))
	if err := req.Call(context.Background(), c); err == nil || c.sent != nil {
		t.Errorf("Call with an argument that does not convert: %v, sent %v", err, c.sent)
	}
}

func TestOneWayRefusesLocal(t *testing.T) {
	c := &fakeConn{}
	req := typed.NewRequest(xpc.String("M"), typed.Local(v1.Progress(&progress1{}), v1.NewProgressServer))
	if err := req.Send(context.Background(), c); !errors.Is(err, typed.ErrBadArguments) || c.sent != nil {
		t.Errorf("Send with a local object: %v, sent %v", err, c.sent)
	}
}

// keeper keeps the Progress proxy a Watch call was given.
type keeper struct {
	weather1
	kept v1.Progress
}

func (k *keeper) Watch(ctx context.Context, city string, days int, p v1.Progress) (int, error) {
	k.kept = p
	return k.weather1.Watch(ctx, city, days, p)
}

// TestCallbackLifetime: a callback works during the call; a proxy kept
// after the call fails with ErrInvalid, and the call leaves no goroutine
// behind.
func TestCallbackLifetime(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := testContext(t)
	k := &keeper{}
	t.Run("call", func(t *testing.T) {
		c := serveInProcess(t, v1.NewWeatherServer(k))
		if _, err := v1.NewWeatherClient(c).Caller(ctx); err != nil {
			t.Fatal(err)
		}
		fds := openFDs(t)
		var p progress1
		if n, err := v1.NewWeatherClient(c).Watch(ctx, "Rome", 2, &p); err != nil || n != 2 {
			t.Fatalf("Watch = %d, %v", n, err)
		}
		waitFDs(t, fds)
		if err := k.kept.Update(ctx, 3, 2); !errors.Is(err, xpc.ErrInvalid) {
			t.Errorf("a callback after the call: %v, want ErrInvalid", err)
		}
		if len(p.got()) != 2 {
			t.Errorf("updates = %v, want the 2 made during the call", p.got())
		}
	})
}

// TestCallsFailWhenTheConnectionGoes: a call on a connection whose
// listener went away is the connection's typed error, not a hang.
func TestCallsFailWhenTheConnectionGoes(t *testing.T) {
	ctx := testContext(t)
	l := listenInProcess(t, v1.NewWeatherServer(&weather1{}))
	c := connectInProcess(t, l)
	w := v1.NewWeatherClient(c)
	if _, err := w.Caller(ctx); err != nil {
		t.Fatal(err)
	}
	l.Cancel()
	for _, p := range l.Peers() {
		p.Cancel()
	}
	if _, err := w.Caller(ctx); !errors.Is(err, xpc.ErrInvalid) {
		t.Errorf("call after the service went: %v, want ErrInvalid", err)
	}
	w.Report(ctx, "Oslo", 1) // one-way: returns, reports nothing
}

// TestRemoteArgLifetime: the server's proxy for a callback stops working
// when the method returns, even while the client's listener lives on.
func TestRemoteArgLifetime(t *testing.T) {
	ctx := testContext(t)
	var p progress1
	l := listenInProcess(t, v1.NewProgressServer(&p))
	ep, err := l.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	k := &keeper{}
	srv := v1.NewWeatherServer(k)
	if _, err := srv.Dispatch(ctx, nil, xpc.Dict(typed.MethodKey, "Watch", "arg0", "Rome", "arg1", 1, "arg2", ep)); err != nil {
		t.Fatal(err)
	}
	if err := k.kept.Update(ctx, 2, 1); !errors.Is(err, xpc.ErrInvalid) {
		t.Errorf("a callback after the method returned: %v, want ErrInvalid", err)
	}
	if len(p.got()) != 1 {
		t.Errorf("updates = %v, want the one made during the call", p.got())
	}
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// waitFDs waits (a generous while: connections close as their goroutines
// end) for the open descriptors to be back to n.
func waitFDs(t *testing.T, n int) {
	t.Helper()
	var got int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = openFDs(t); got <= n {
			return
		}
	}
	t.Errorf("%d descriptors open after the call, %d before", got, n)
}

// TestNilLocal: a nil local object crosses as no argument.
func TestNilLocal(t *testing.T) {
	c := &fakeConn{reply: xpc.NewDictionary(0)}
	req := typed.NewRequest(xpc.String("M"), typed.Local(v1.Progress(nil), v1.NewProgressServer))
	if err := req.Call(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if a := c.sent.Get(typed.ArgKey(0)); a != nil {
		t.Errorf("a nil local object was sent as %v", a)
	}
}

// TestResultThatDoesNotConvert: the client gets ErrBadResult.
func TestResultThatDoesNotConvert(t *testing.T) {
	svc := typed.NewService[fdTaker]("FDTaker", typed.Method[fdTaker]{Name: "Take",
		Invoke: func(ctx context.Context, impl fdTaker, in *typed.Invocation) error {
			return in.Results(nil, "fine", make(chan int))
		}})
	srv := typed.NewServer(svc, fdTaker(nil))
	if _, err := srv.Dispatch(context.Background(), nil, xpc.Dict(typed.MethodKey, "Take")); !errors.Is(err, typed.ErrBadResult) {
		t.Errorf("a result that does not convert: %v, want ErrBadResult", err)
	}
}

// troubled returns results and a plain error (one with no domain) at once.
type troubled struct{ weather1 }

func (*troubled) LastReport(ctx context.Context) (string, float64, error) {
	return "Oslo", 1, errors.New("plain trouble")
}

// TestPlainErrorAndExactlyOne: an error without a domain arrives as a
// *xpc.RemoteError with its text, and the results the method returned
// beside it do not reach the caller.
func TestPlainErrorAndExactlyOne(t *testing.T) {
	ctx := testContext(t)
	c := serveInProcess(t, v1.NewWeatherServer(&troubled{}))
	city, temp, err := v1.NewWeatherClient(c).LastReport(ctx)
	var re *xpc.RemoteError
	if !errors.As(err, &re) || re.Object.Description() != "plain trouble" || re.Domain() != "" {
		t.Errorf("LastReport error = %v, want a *xpc.RemoteError saying plain trouble, with no domain", err)
	}
	if city != "" || temp != 0 {
		t.Errorf("LastReport results with an error = %q, %v, want zero values", city, temp)
	}
}
