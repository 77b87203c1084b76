package typed_test

import (
	"context"
	"os"
	"sync"

	"github.com/goxpc/xpc/typed"
	v1 "github.com/goxpc/xpc/typed/internal/weatherv1"
	v2 "github.com/goxpc/xpc/typed/internal/weatherv2"
)

// weather1 implements version 1 of the test interface.
type weather1 struct {
	mu       sync.Mutex
	lastCity string
	lastTemp float64
}

func (w *weather1) Forecast(ctx context.Context, r v1.Request) (v1.Forecast, error) {
	if r.City == "Atlantis" {
		return v1.Forecast{}, &v1.NoSuchCityError{City: r.City}
	}
	f := v1.Forecast{City: r.City}
	for i := range r.Days {
		f.Temps = append(f.Temps, float64(20+i))
	}
	return f, nil
}

func (w *weather1) Report(ctx context.Context, city string, temp float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastCity, w.lastTemp = city, temp
}

func (w *weather1) LastReport(ctx context.Context) (string, float64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastCity, w.lastTemp, nil
}

func (w *weather1) Watch(ctx context.Context, city string, days int, p v1.Progress) (int, error) {
	n := 0
	for i := range days {
		if err := p.Update(ctx, i+1, days); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (w *weather1) Caller(ctx context.Context) (int, error) {
	p := typed.PeerFromContext(ctx)
	if p == nil || typed.ConnectionFromContext(ctx) == nil {
		return 0, errNoPeer
	}
	return int(p.PID), nil
}

func (w *weather1) Crash(ctx context.Context) error {
	os.Exit(3)
	return nil
}

// weather2 implements version 2: Forecast knows units, and Alerts is new.
type weather2 struct {
	w1 weather1
}

func (w *weather2) Forecast(ctx context.Context, r v2.Request) (v2.Forecast, error) {
	if r.City == "Atlantis" {
		return v2.Forecast{}, &v2.NoSuchCityError{City: r.City}
	}
	units := r.Units
	if units == "" {
		units = "C" // what a version 1 client, which sends no units, means
	}
	f := v2.Forecast{City: r.City, Units: units}
	for i := range r.Days {
		t := float64(20 + i)
		if units == "F" {
			t = t*9/5 + 32
		}
		f.Temps = append(f.Temps, t)
	}
	return f, nil
}

func (w *weather2) Report(ctx context.Context, city string, temp float64) {
	w.w1.Report(ctx, city, temp)
}

func (w *weather2) LastReport(ctx context.Context) (string, float64, error) {
	return w.w1.LastReport(ctx)
}

func (w *weather2) Watch(ctx context.Context, city string, days int, p v2.Progress) (int, error) {
	return w.w1.Watch(ctx, city, days, p)
}

func (w *weather2) Caller(ctx context.Context) (int, error) { return w.w1.Caller(ctx) }

func (w *weather2) Crash(ctx context.Context) error { return w.w1.Crash(ctx) }

func (w *weather2) Alerts(ctx context.Context, city string) ([]string, error) {
	return []string{"storm over " + city}, nil
}

// progress1 records the updates it is given.
type progress1 struct {
	mu      sync.Mutex
	updates [][2]int
}

func (p *progress1) Update(ctx context.Context, done, total int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.updates = append(p.updates, [2]int{done, total})
	return nil
}

func (p *progress1) got() [][2]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][2]int(nil), p.updates...)
}
