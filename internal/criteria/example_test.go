package criteria_test

import (
	"context"
	"fmt"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/criteria"
)

// An activity that needs the network and may not run on battery, on a
// machine on battery whose logind is absent.
func ExampleEvaluate() {
	s := criteria.NewFake()
	s.SetFact(criteria.OnBattery, criteria.Fact{Known: true, Value: true, Source: "/sys/class/power_supply", Why: "BAT0 discharging"})
	s.SetFact(criteria.Network, criteria.Fact{Known: true, Value: true, Source: "kernel routes", Why: "default route via eth0 up"})
	s.SetFact(criteria.UserIdle, criteria.Fact{Source: "logind", Why: "logind is not on the system bus"})
	c := xpc.ActivityCriteria{RequireNetwork: true, RequireUserIdle: true, Priority: xpc.PriorityUtility}
	for _, u := range criteria.Evaluate(context.Background(), s, c, 1000, false) {
		fmt.Println(u)
	}
	// Output:
	// AllowBattery: on-battery (/sys/class/power_supply: BAT0 discharging)
	// RequireUserIdle: unknown, no source (logind: logind is not on the system bus)
}
