// Package weatherv2 is the second version of a test interface of package
// typed: its generated client and server are exercised across processes,
// and against weatherv1, the version before it.
package weatherv2

import (
	"context"
	"fmt"
)

//go:generate go -C ../../../gen/xpcgen run . -dir $PWD -type Weather,Progress

// Weather is a weather service.
type Weather interface {
	// Forecast returns the forecast for r's city, or a *NoSuchCityError.
	Forecast(ctx context.Context, r Request) (Forecast, error)
	// Report records a report; one-way.
	Report(ctx context.Context, city string, temp float64)
	// LastReport returns the last report's city and temperature.
	LastReport(ctx context.Context) (string, float64, error)
	// Watch reports progress for days days through p, then returns the
	// number of updates p accepted.
	Watch(ctx context.Context, city string, days int, p Progress) (int, error)
	// Caller returns the caller's pid, as the service saw it.
	Caller(ctx context.Context) (int, error)
	// Crash makes the service exit while the call is in progress.
	Crash(ctx context.Context) error
	// Alerts is new in version 2: the alerts for a city.
	Alerts(ctx context.Context, city string) ([]string, error)
}

// Progress receives progress reports.
type Progress interface {
	// Update reports that done of total steps are done.
	Update(ctx context.Context, done, total int) error
}

// Request asks for a forecast.
type Request struct {
	City string `xpc:"city"`
	Days int    `xpc:"days"`
	// Units is new in version 2: "C" (the default) or "F".
	Units string `xpc:"units,omitempty"`
}

// Forecast is a forecast.
type Forecast struct {
	City  string    `xpc:"city"`
	Temps []float64 `xpc:"temps"`
	// Units is new in version 2: the units of Temps.
	Units string `xpc:"units,omitempty"`
}

// NoSuchCityError is the error of a city the service does not know.
type NoSuchCityError struct {
	City string `xpc:"city"`
}

func (e *NoSuchCityError) Error() string { return fmt.Sprintf("no such city: %s", e.City) }

// ErrorDomain returns the weather service's domain.
func (e *NoSuchCityError) ErrorDomain() string { return "org.goxpc.test.weather" }

// ErrorCode returns 1.
func (e *NoSuchCityError) ErrorCode() int { return 1 }
