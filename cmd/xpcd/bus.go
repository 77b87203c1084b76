package main

import (
	"fmt"
	"strings"

	"github.com/goxpc/xpc/internal/xpcd"
)

// The flags that name a D-Bus bus: --polkit-bus (polkit's authority,
// xpcd.Config.PolkitBus) and --login-bus (systemd-logind,
// xpcd.Config.LoginBus).

// checkBus checks the value v of bus flag --flag: "" (not given), system,
// none, or a unix: address.
func checkBus(flag, v string) error {
	switch {
	case v == "", v == xpcd.PolkitSystemBus, v == "none", strings.HasPrefix(v, "unix:"):
		return nil
	}
	return fmt.Errorf("--%s %.100q: want system, none or a unix: address", flag, v)
}

// busFor is the xpcd.Config value of a bus flag given as v: when v is ""
// (not given), the system bus for the system instance (system) and none
// for others.
func busFor(v string, system bool) string {
	switch {
	case v == "" && system:
		return xpcd.PolkitSystemBus
	case v == "" || v == "none":
		return ""
	}
	return v
}
