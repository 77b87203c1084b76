package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestLineOf(t *testing.T) {
	for _, c := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "d1ec155aabbccddeeff00112233"}, {Key: "vcs.modified", Value: "false"}}},
			"xpcd v0.3.0 (commit d1ec155aabbc, go1.26.8)"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "d1ec155"}, {Key: "vcs.modified", Value: "true"}}},
			"xpcd (devel) (commit d1ec155, modified, go1.26.8)"},
		{debug.BuildInfo{GoVersion: "go1.26.8"}, "xpcd (devel) (go1.26.8)"},
	} {
		if got := lineOf("xpcd", &c.bi); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

// A test binary has build information: the line names the Go version.
func TestLine(t *testing.T) {
	if got := Line("x"); !strings.HasPrefix(got, "x ") || !strings.Contains(got, "go1.") {
		t.Errorf("Line: %q", got)
	}
}
