package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestBusFlags: --polkit-bus and --login-bus default to the system bus
// for the system instance only, take none and unix: addresses, and refuse
// anything else as a usage error.
func TestBusFlags(t *testing.T) {
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
		if got := busFor(tc.flag, tc.system); got != tc.want {
			t.Errorf("busFor(%q, system %v) = %q, want %q", tc.flag, tc.system, got, tc.want)
		}
	}
	for _, flag := range []string{"--polkit-bus", "--login-bus"} {
		for _, v := range []string{"tcp:host=localhost,port=1", "System", "session"} {
			var stderr bytes.Buffer
			if code := run([]string{"--user", flag, v}, io.Discard, &stderr); code != exitUsage ||
				!strings.Contains(stderr.String(), flag) {
				t.Errorf("xpcd --user %s %s: exit %d\n%s", flag, v, code, stderr.String())
			}
		}
		var stdout bytes.Buffer
		if code := run([]string{"-h"}, &stdout, io.Discard); code != exitOK || !strings.Contains(stdout.String(), flag+" BUS") {
			t.Errorf("xpcd -h does not name %s BUS:\n%s", flag, stdout.String())
		}
	}
}
