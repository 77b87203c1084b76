// Package criteria answers the conditions an activity's criteria
// (xpc.ActivityCriteria) ask about: whether the machine runs on battery,
// has a network and whether it is metered, whether the user's session is
// idle or locked, and whether the machine is under CPU, memory or I/O
// pressure. Each answer comes from a source behind the Sources interface:
// the Linux ones (sysfs, the kernel's routes, logind and NetworkManager
// over D-Bus, /proc/pressure) and a Fake for tests.
//
// A condition whose source is absent on the machine is answered as unknown
// (Fact.Known false, with why), never as true or false; Evaluate counts an
// unknown condition as not met and says so.
package criteria
