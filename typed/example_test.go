package typed_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/typed"
	weather "github.com/goxpc/xpc/typed/internal/weatherv1"
)

// A generated server served on an anonymous listener, and the generated
// client calling it through the listener's endpoint. A service started by
// xpcd serves the listener xpc.Service.Listen returns the same way, and a
// client connects with xpc.NewServiceConnection.
func Example() {
	ctx := context.Background()
	l, err := xpc.NewListener()
	if err != nil {
		panic(err)
	}
	defer l.Cancel()
	typed.ServeListener(l, weather.NewWeatherServer(&weather1{}))

	ep, err := l.Endpoint()
	if err != nil {
		panic(err)
	}
	defer ep.Close()
	conn, err := xpc.NewEndpointConnection(ep)
	if err != nil {
		panic(err)
	}
	conn.Activate()
	defer conn.Cancel()

	w := weather.NewWeatherClient(conn)
	f, err := w.Forecast(ctx, weather.Request{City: "Paris", Days: 3})
	fmt.Println(f.City, f.Temps, err)

	_, err = w.Forecast(ctx, weather.Request{City: "Atlantis"})
	var nsc *weather.NoSuchCityError
	fmt.Println(errors.As(err, &nsc), nsc.City)
	// Output:
	// Paris [20 21 22] <nil>
	// true Atlantis
}
