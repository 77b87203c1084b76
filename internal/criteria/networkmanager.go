package criteria

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"
)

const sourceNM = "NetworkManager"

// NetworkManager's values of Connectivity (NM_CONNECTIVITY_*) and Metered
// (NM_METERED_*).
const (
	nmConnectivityUnknown = 0
	nmConnectivityFull    = 4
	nmMeteredUnknown      = 0
	nmMeteredYes          = 1
	nmMeteredGuessYes     = 3
)

// nmProperty reads NetworkManager's uint32 property name.
func (l *Linux) nmProperty(ctx context.Context, name string) (uint32, error) {
	call, err := l.busCall(ctx, sourceNM, nmName, nmPath, propsIface+".Get", nmName, name)
	if err != nil {
		return 0, err
	}
	var v dbus.Variant
	if err := call.Store(&v); err != nil {
		return 0, fmt.Errorf("%s: %s: %w", sourceNM, name, err)
	}
	n, ok := v.Value().(uint32)
	if !ok {
		return 0, fmt.Errorf("%s: %s: want a uint32, have %s", sourceNM, name, v.Signature())
	}
	return n, nil
}

// nmValueName names NetworkManager's value v of property ("Connectivity"
// or "Metered"), or gives the number.
func nmValueName(property string, v uint32) string {
	names := []string{"unknown", "none", "portal", "limited", "full"}
	if property == "Metered" {
		names = []string{"unknown", "yes", "no", "guess-yes", "guess-no"}
	}
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprint(v)
}

// readNetwork answers Network: NetworkManager's Connectivity when it knows
// it (full: true; none, portal, limited: false), else the kernel's routes.
func (l *Linux) readNetwork(ctx context.Context) Fact {
	c, err := l.nmProperty(ctx, "Connectivity")
	if err == nil && c != nmConnectivityUnknown {
		return Fact{Known: true, Value: c == nmConnectivityFull, Source: sourceNM, Why: "connectivity " + nmValueName("Connectivity", c)}
	}
	f := l.readRoutes()
	if err != nil {
		f.Why += " (" + err.Error() + ")"
	} else {
		f.Why += " (NetworkManager: connectivity unknown)"
	}
	return f
}

// readMetered answers InexpensiveNetwork from NetworkManager's Metered:
// true unless it is yes or guess-yes. The kernel cannot tell whether a
// network is metered: without NetworkManager it is unknown.
func (l *Linux) readMetered(ctx context.Context) Fact {
	m, err := l.nmProperty(ctx, "Metered")
	if err != nil {
		return Fact{Source: sourceNM, Why: err.Error() + ", and the kernel cannot tell whether a network is metered"}
	}
	why := "metered " + nmValueName("Metered", m)
	if m == nmMeteredUnknown {
		why += " (counted as not metered)"
	}
	return Fact{Known: true, Value: m != nmMeteredYes && m != nmMeteredGuessYes, Source: sourceNM, Why: why}
}
