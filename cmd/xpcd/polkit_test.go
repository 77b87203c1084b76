package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestPolkitBusFlag: --polkit-bus defaults to the system bus for the
// system instance only, takes none and unix: addresses, and refuses
// anything else as a usage error.
func TestPolkitBusFlag(t *testing.T) {
	for _, tc := range []struct {
		flag   string
		system bool
		want   string
	}{
		{"", true, "system"},
		{"", false, ""},
		{"none", true, ""},
		{"system", false, "system"},
		{"unix:path=/run/bus", false, "unix:path=/run/bus"},
	} {
		if got := polkitBus(tc.flag, tc.system); got != tc.want {
			t.Errorf("polkitBus(%q, system %v) = %q, want %q", tc.flag, tc.system, got, tc.want)
		}
	}
	for _, v := range []string{"tcp:host=localhost,port=1", "System", "session"} {
		var stderr bytes.Buffer
		if code := run([]string{"--user", "--polkit-bus", v}, io.Discard, &stderr); code != exitUsage ||
			!strings.Contains(stderr.String(), "--polkit-bus") {
			t.Errorf("xpcd --user --polkit-bus %s: exit %d\n%s", v, code, stderr.String())
		}
	}
	var stdout bytes.Buffer
	if code := run([]string{"-h"}, &stdout, io.Discard); code != exitOK || !strings.Contains(stdout.String(), "--polkit-bus BUS") {
		t.Errorf("xpcd -h does not name --polkit-bus BUS:\n%s", stdout.String())
	}
}
