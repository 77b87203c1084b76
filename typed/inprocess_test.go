package typed_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/typed"
	v1 "github.com/goxpc/xpc/typed/internal/weatherv1"
	v2 "github.com/goxpc/xpc/typed/internal/weatherv2"
)

var errNoPeer = errors.New("no peer in the method's context")

// serveInProcess serves h on an anonymous listener and returns an active
// connection to it; the test's cleanup cancels both.
func serveInProcess(tb testing.TB, h xpc.Handler) *xpc.Connection {
	return connectInProcess(tb, listenInProcess(tb, h))
}

// listenInProcess serves h on a new anonymous listener, which the test's
// cleanup cancels with its peers.
func listenInProcess(tb testing.TB, h xpc.Handler) *xpc.Listener {
	tb.Helper()
	l, err := xpc.NewListener()
	if err != nil {
		tb.Fatal(err)
	}
	typed.ServeListener(l, h)
	tb.Cleanup(func() {
		l.Cancel()
		for _, p := range l.Peers() {
			p.Cancel()
		}
	})
	return l
}

// connectInProcess returns an active connection to l, which the test's
// cleanup cancels.
func connectInProcess(tb testing.TB, l *xpc.Listener) *xpc.Connection {
	tb.Helper()
	ep, err := l.Endpoint()
	if err != nil {
		tb.Fatal(err)
	}
	defer ep.Close()
	c, err := xpc.NewEndpointConnection(ep)
	if err != nil {
		tb.Fatal(err)
	}
	c.Activate()
	tb.Cleanup(c.Cancel)
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// exerciseV1 runs the calls every version 1 client relies on against
// whatever serves c.
func exerciseV1(t *testing.T, ctx context.Context, c typed.Conn) {
	t.Helper()
	w := v1.NewWeatherClient(c)
	f, err := w.Forecast(ctx, v1.Request{City: "Paris", Days: 3})
	if err != nil || f.City != "Paris" || !reflect.DeepEqual(f.Temps, []float64{20, 21, 22}) {
		t.Errorf("Forecast = %+v, %v", f, err)
	}

	f, err = w.Forecast(ctx, v1.Request{City: "Atlantis"})
	var nsc *v1.NoSuchCityError
	if !errors.As(err, &nsc) || nsc.City != "Atlantis" {
		t.Errorf("Forecast(Atlantis) error = %v, want a *NoSuchCityError restored by errors.As", err)
	}
	if !reflect.DeepEqual(f, v1.Forecast{}) {
		t.Errorf("Forecast(Atlantis) result = %+v with an error, want the zero value", f)
	}

	w.Report(ctx, "Oslo", -3.5)
	city, temp, err := w.LastReport(ctx) // in order after the one-way Report
	if err != nil || city != "Oslo" || temp != -3.5 {
		t.Errorf("LastReport after Report = %q, %v, %v", city, temp, err)
	}

	var p progress1
	n, err := w.Watch(ctx, "Rome", 4, &p)
	if err != nil || n != 4 {
		t.Errorf("Watch = %d, %v, want 4", n, err)
	}
	if want := [][2]int{{1, 4}, {2, 4}, {3, 4}, {4, 4}}; !reflect.DeepEqual(p.got(), want) {
		t.Errorf("progress updates = %v, want %v", p.got(), want)
	}
	n, err = w.Watch(ctx, "Rome", 0, nil)
	if err != nil || n != 0 {
		t.Errorf("Watch with no days and a nil Progress = %d, %v", n, err)
	}

	pid, err := w.Caller(ctx)
	if err != nil || pid != os.Getpid() {
		t.Errorf("Caller = %d, %v, want this process's %d", pid, err, os.Getpid())
	}
}

func TestInProcessV1(t *testing.T) {
	ctx := testContext(t)
	c := serveInProcess(t, v1.NewWeatherServer(&weather1{}))
	exerciseV1(t, ctx, c)
}

// TestOldClientNewServiceInProcess: a version 1 client of a version 2 service gets
// what it asks for; the fields it does not send are their zero values.
func TestOldClientNewServiceInProcess(t *testing.T) {
	ctx := testContext(t)
	c := serveInProcess(t, v2.NewWeatherServer(&weather2{}))
	exerciseV1(t, ctx, c)
}

// TestNewClientOldServiceInProcess: a version 2 client of a version 1 service: new
// fields are ignored by the service and missing from the reply, the new
// method is unimplemented.
func TestNewClientOldServiceInProcess(t *testing.T) {
	ctx := testContext(t)
	c := serveInProcess(t, v1.NewWeatherServer(&weather1{}))
	exerciseNewOnOld(t, ctx, c)
}

func exerciseNewOnOld(t *testing.T, ctx context.Context, c typed.Conn) {
	t.Helper()
	w := v2.NewWeatherClient(c)
	f, err := w.Forecast(ctx, v2.Request{City: "Paris", Days: 1, Units: "F"})
	if err != nil || f.City != "Paris" || f.Units != "" || !reflect.DeepEqual(f.Temps, []float64{20}) {
		t.Errorf("Forecast on an old service = %+v, %v, want Celsius and no units", f, err)
	}
	alerts, err := w.Alerts(ctx, "Paris")
	if !errors.Is(err, typed.ErrUnimplemented) || alerts != nil {
		t.Errorf("Alerts on an old service = %v, %v, want ErrUnimplemented", alerts, err)
	}
	var de *xpc.DomainError
	if !errors.As(err, &de) || de.Domain != typed.Domain || de.Code != typed.ErrUnimplemented.Code {
		t.Errorf("Alerts error as a DomainError = %+v", de)
	}
	// The connection is unharmed.
	if _, err := w.Caller(ctx); err != nil {
		t.Errorf("Caller after an unimplemented method: %v", err)
	}
}

func TestNewClientNewServiceInProcess(t *testing.T) {
	ctx := testContext(t)
	c := serveInProcess(t, v2.NewWeatherServer(&weather2{}))
	w := v2.NewWeatherClient(c)
	f, err := w.Forecast(ctx, v2.Request{City: "Paris", Days: 1, Units: "F"})
	if err != nil || f.Units != "F" || !reflect.DeepEqual(f.Temps, []float64{68}) {
		t.Errorf("Forecast = %+v, %v", f, err)
	}
	alerts, err := w.Alerts(ctx, "Paris")
	if err != nil || !reflect.DeepEqual(alerts, []string{"storm over Paris"}) {
		t.Errorf("Alerts = %v, %v", alerts, err)
	}
}
