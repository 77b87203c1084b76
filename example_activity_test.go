package xpc_test

import (
	"context"
	"fmt"
	"time"

	"github.com/goxpc/xpc"
)

// A service that refreshes a cache every hour, when the network is up:
// xpcd runs the activity when it is due, launching the service if it does
// not run. The work goes on after the handler returns (ActivityContinue)
// and ends with done, or with defer when xpcd says the criteria no longer
// hold.
func ExampleService_RegisterActivity() {
	ctx := context.Background()
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		fmt.Println(err) // not launched by xpcd
		return
	}
	defer svc.Close()
	crit := &xpc.ActivityCriteria{Interval: time.Hour, RequireNetwork: true}
	err = svc.RegisterActivity(ctx, "com.example.refresh", crit, func(a *xpc.Activity) {
		if a.State() != xpc.ActivityRun {
			return
		}
		if err := a.SetState(ctx, xpc.ActivityContinue); err != nil {
			return
		}
		go func() {
			for step := 0; step < 10; step++ {
				if a.ShouldDefer() {
					_ = a.SetState(ctx, xpc.ActivityDefer)
					return
				}
				time.Sleep(time.Second) // a step of the refresh
			}
			_ = a.SetState(ctx, xpc.ActivityDone)
		}()
	})
	if err != nil {
		fmt.Println(err)
	}
}
