package launchd

import (
	"strings"

	"github.com/goxpc/xpc/internal/editdist"
)

// Reasons given in Warnings.
const (
	reasonUnknown     = "unknown key: ignored"
	reasonUnsupported = "supported by launchd but not by goxpc: ignored"
	reasonDeprecated  = "deprecated by launchd: ignored"
)

// unsupportedKeys are the top-level keys launchd.plist(5) documents (or
// launchd has honored) that goxpc reads past with a warning, and why.
var unsupportedKeys = map[string]string{
	"AssociatedBundleIdentifiers":  reasonUnsupported,
	"Debug":                        reasonUnsupported,
	"EnableGlobbing":               reasonUnsupported,
	"HardResourceLimits":           reasonUnsupported,
	"HopefullyExitsFirst":          reasonDeprecated,
	"HopefullyExitsLast":           reasonDeprecated,
	"InitGroups":                   reasonUnsupported,
	"JetsamProperties":             reasonUnsupported,
	"LaunchOnlyOnce":               reasonUnsupported,
	"LegacyTimers":                 reasonUnsupported,
	"LimitLoadFromHardware":        reasonUnsupported,
	"LimitLoadFromHosts":           reasonUnsupported,
	"LimitLoadToHardware":          reasonUnsupported,
	"LimitLoadToHosts":             reasonUnsupported,
	"LimitLoadToSessionType":       reasonUnsupported,
	"LowPriorityBackgroundIO":      reasonUnsupported,
	"LowPriorityIO":                reasonUnsupported,
	"MaterializeDatalessFiles":     reasonUnsupported,
	"OnDemand":                     "deprecated by launchd (use KeepAlive): ignored",
	"ParentProcessConstraint":      reasonUnsupported,
	"POSIXSpawnType":               reasonUnsupported,
	"ResponsibleProcessConstraint": reasonUnsupported,
	"RootDirectory":                reasonUnsupported,
	"ServiceDescription":           "descriptive only: ignored",
	"ServiceIPC":                   reasonDeprecated,
	"SessionCreate":                reasonUnsupported,
	"Sockets":                      reasonUnsupported,
	"SoftResourceLimits":           reasonUnsupported,
	"SpawnConstraint":              reasonUnsupported,
	"StartOnMount":                 reasonUnsupported,
	"TimeOut":                      reasonUnsupported + " (for idle exit, see XPCIdleExitTimeout)",
	"WaitForDebugger":              reasonUnsupported,
	"inetdCompatibility":           reasonUnsupported,
}

// unsupportedKeepAliveKeys are KeepAlive's dictionary keys goxpc ignores.
var unsupportedKeepAliveKeys = map[string]string{
	"AfterInitialDemand": reasonUnsupported,
	"NetworkState":       reasonDeprecated,
}

// unsupportedMachServiceKeys are the Mach-only options of a MachServices
// entry, which have no meaning without Mach ports.
var unsupportedMachServiceKeys = map[string]string{
	"DrainMessagesOnCrash": reasonUnsupported,
	"ExceptionServer":      reasonUnsupported,
	"HostSpecialPort":      reasonUnsupported,
	"TaskSpecialPort":      reasonUnsupported,
}

// unknownReason explains an unknown key, suggesting the key it was probably
// meant to be, from candidates (sorted, for a stable answer): the same key in
// other case (launchd's own matching was once case-insensitive; goxpc's is
// not), or one a typo or two away.
func unknownReason(key string, candidates []string) string {
	best, bestDist := "", 3
	if len(key) < 5 {
		bestDist = 2
	}
	for _, k := range candidates {
		if strings.EqualFold(k, key) {
			return "unknown key: ignored (keys are case-sensitive; did you mean " + k + "?)"
		}
		if d := editdist.Distance(key, k, bestDist); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return "unknown key: ignored (did you mean " + best + "?)"
	}
	return reasonUnknown
}
