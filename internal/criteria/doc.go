// Package criteria answers the conditions an activity's criteria
// (xpc.ActivityCriteria) ask about: whether the machine runs on battery,
// has a network and whether it is metered, whether the user's session is
// idle or locked, and whether the machine is under CPU, memory or I/O
// pressure. Each answer comes from a source behind the Sources interface:
// the Linux ones (Linux, from NewLinux) and a Fake for tests.
//
// A condition whose source is absent on the machine is answered as unknown
// (Fact.Known false, with why), never as true or false; Evaluate counts an
// unknown condition as not met and says so.
//
// # Linux sources
//
//	s, err := criteria.NewLinux(ctx, criteria.Config{Log: log})
//	if err != nil { ... } // only a bad Config fails: absent sources are unknown
//	defer s.Close()
//	unmet := criteria.Evaluate(ctx, s, c, uid, held)
//
// Which source answers which condition, what "absent" means for each, the
// default thresholds and what Changed signals are written once, in
// docs/XPCD.md, "Activity criteria: where answers come from". In short:
//
//	OnBattery                    /sys/class/power_supply (power.go)
//	Network                      NetworkManager, else /proc/net/route and
//	                             /proc/net/ipv6_route (networkmanager.go, routes.go)
//	InexpensiveNetwork           NetworkManager only
//	ScreenLocked, UserIdle       logind over the system bus (logind.go)
//	CPU/Memory/IOPressure        /proc/pressure (pressure.go)
//
// The files of sysfs and procfs are read on each Read, bounded in bytes.
// The system bus is one connection (bus.go), dialed at NewLinux and again
// on a Read at most once per Config.Retry while it is absent; every call
// on it has the Read's deadline. Two goroutines run until Close: one
// turning the bus's signals (match rules on logind's sessions and
// NetworkManager) into Changed, and one reading an rtnetlink socket of
// route and link changes (netlink.go; only when Config.Root is "/").
package criteria
