package typed_test

import (
	"context"
	"errors"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/typed"
	v2 "github.com/goxpc/xpc/typed/internal/weatherv2"
)

// quietWeather implements the interface without doing anything: the fuzz
// target tests the dispatch, not a service.
type quietWeather struct{}

func (quietWeather) Forecast(ctx context.Context, r v2.Request) (v2.Forecast, error) {
	return v2.Forecast{City: r.City}, nil
}
func (quietWeather) Report(ctx context.Context, city string, temp float64) {}
func (quietWeather) LastReport(ctx context.Context) (string, float64, error) {
	return "", 0, nil
}
func (quietWeather) Watch(ctx context.Context, city string, days int, p v2.Progress) (int, error) {
	return 0, nil
}
func (quietWeather) Caller(ctx context.Context) (int, error)                   { return 0, nil }
func (quietWeather) Crash(ctx context.Context) error                           { return nil }
func (quietWeather) Alerts(ctx context.Context, city string) ([]string, error) { return nil, nil }

// FuzzDispatch gives the generated server hostile requests: whatever the
// dictionary holds, dispatch must not panic, and a request it refuses must
// fail with ErrBadArguments or ErrUnimplemented.
func FuzzDispatch(f *testing.F) {
	seeds := []*xpc.Dictionary{
		xpc.Dict(typed.MethodKey, "Forecast", "arg0", map[string]any{"city": "Paris", "days": 3}),
		xpc.Dict(typed.MethodKey, "Forecast", "arg0", "Paris"),
		xpc.Dict(typed.MethodKey, "Report", "arg0", "Oslo", "arg1", 1.5),
		xpc.Dict(typed.MethodKey, "Watch", "arg0", "Rome", "arg1", 2),
		xpc.Dict(typed.MethodKey, "Alerts", "arg0", []any{1, "x"}),
		xpc.Dict(typed.MethodKey, "Nope"),
		xpc.Dict(typed.MethodKey, 1),
		xpc.Dict("arg0", "x"),
	}
	for _, d := range seeds {
		b, err := xpc.Marshal(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	srv := v2.NewWeatherServer(quietWeather{})
	f.Fuzz(func(t *testing.T, body []byte) {
		obj, err := xpc.Decode(body)
		if err != nil {
			return
		}
		d, ok := obj.(*xpc.Dictionary)
		if !ok {
			return
		}
		reply, err := srv.Dispatch(context.Background(), nil, d)
		if err != nil {
			if !errors.Is(err, typed.ErrBadArguments) && !errors.Is(err, typed.ErrUnimplemented) {
				t.Fatalf("dispatch of %v failed with %v, want ErrBadArguments or ErrUnimplemented", d, err)
			}
			return
		}
		if reply == nil {
			t.Fatalf("dispatch of %v: no reply and no error", d)
		}
	})
}
