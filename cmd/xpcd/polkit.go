package main

import (
	"fmt"
	"strings"

	"github.com/goxpc/xpc/internal/xpcd"
)

// checkPolkitBus checks --polkit-bus: "" (not given), system, none, or a
// unix: address.
func checkPolkitBus(v string) error {
	switch {
	case v == "", v == xpcd.PolkitSystemBus, v == "none", strings.HasPrefix(v, "unix:"):
		return nil
	}
	return fmt.Errorf("--polkit-bus %.100q: want system, none or a unix: address", v)
}

// polkitBus is xpcd.Config.PolkitBus for --polkit-bus v: when v is ""
// (not given), the system bus for the system instance (system) and none
// for others.
func polkitBus(v string, system bool) string {
	switch {
	case v == "" && system:
		return xpcd.PolkitSystemBus
	case v == "" || v == "none":
		return ""
	}
	return v
}
