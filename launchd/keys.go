package launchd

import "strings"

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
	"BundleProgram":                reasonUnsupported,
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
		if d := editDistance(key, k, bestDist); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return "unknown key: ignored (did you mean " + best + "?)"
	}
	return reasonUnknown
}

// editDistance returns the Levenshtein distance between a and b, or limit
// if it is limit or more (or the strings are too long to bother).
func editDistance(a, b string, limit int) int {
	if len(a) > 64 || len(b) > 64 {
		return limit
	}
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
