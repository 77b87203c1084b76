// Command activity-agent is a per-user agent that does work when it should,
// with no client ever connecting: xpcd launches it for a repeating activity
// and for a notification (see org.goxpc.example.activity.plist beside it).
//
// Its plist declares, under LaunchEvents:
//
//   - com.apple.xpc.activity → org.goxpc.example.activity.tick: every 3 s
//     (Interval), at Utility priority. (The default, Maintenance, is also
//     held back while the machine is under CPU, memory or I/O pressure, for
//     up to its GracePeriod, half the interval.)
//   - com.apple.notifyd.matching → config-changed: each post of
//     org.goxpc.example.config-changed (xpcctl notify post).
//
// and an idle-exit timeout of 1 s, so that the agent exits between runs
// and xpcd launches it again for the next: the schedule is xpcd's, not
// the process's. xpcctl shows what xpcd knows:
//
//	xpcctl activity list
//	xpcctl activity print org.goxpc.example.activity/org.goxpc.example.activity.tick
//	xpcctl activity run org.goxpc.example.activity/org.goxpc.example.activity.tick
//	xpcctl notify post --state 7 org.goxpc.example.config-changed
//	xpcctl print user/$(id -u)/org.goxpc.example.activity
//
// The agent logs each run and each event on its standard error.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/launchd"
)

// Tick is the identifier of the activity the plist declares.
const Tick = "org.goxpc.example.activity.tick"

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := serve(ctx)
	stop()
	if err != nil {
		log.Fatalf("activity-agent failed: %v", err)
	}
}

// serve checks in, sets the handlers and runs until xpcd stops the agent.
func serve(ctx context.Context) error {
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		return err
	}
	defer svc.Close()
	// Set the event handler first: the event this instance may have been
	// launched for waits in xpcd until it is set. Returning from the
	// handler acknowledges the event.
	onEvent := func(_ context.Context, ev *xpc.Event) {
		// The payload of a notification: its name and 64-bit state.
		if name, err := ev.Payload.String(launchd.NotificationKey); err == nil {
			state, _ := ev.Payload.Uint64("State")
			log.Printf("event descriptor=%s id=%d notification=%s state=%d", ev.Name, ev.ID, name, state)
		}
	}
	if err := svc.HandleEvents(ctx, launchd.StreamNotify, onEvent); err != nil {
		return err
	}
	// Criteria nil: check in for the activity the plist declares. The
	// handler is called once with ActivityCheckIn, then with ActivityRun
	// each time xpcd runs it; returning from a run says it is done.
	err = svc.RegisterActivity(ctx, Tick, nil, func(a *xpc.Activity) {
		if a.State() == xpc.ActivityRun {
			log.Printf("activity run id=%s pid=%d", a.Identifier(), os.Getpid())
		}
	})
	if err != nil {
		return err
	}
	log.Printf("activity-agent ready pid=%d", os.Getpid())
	select {
	case <-ctx.Done():
	case <-svc.Terminating():
	}
	return nil
}
