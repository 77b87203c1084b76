package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestLineOf(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "d1ec155aabbccddeeff00112233"}, {Key: "vcs.modified", Value: "false"}}
	for _, c := range []struct {
		name string
		bi   debug.BuildInfo
		st   stamp
		want string
	}{
		{"tagged module", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.0"}, Settings: vcs},
			stamp{}, "xpcd v0.3.0 (commit d1ec155aabbc, go1.26.8)"},
		{"checkout with changes", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "d1ec155"}, {Key: "vcs.modified", Value: "true"}}},
			stamp{}, "xpcd (devel) (commit d1ec155, modified, go1.26.8)"},
		{"nothing known", debug.BuildInfo{GoVersion: "go1.26.8"}, stamp{}, "xpcd (devel) (go1.26.8)"},
		{"linker stamp", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			stamp{version: "v1.2.0-3-gabc", commit: "abc0123456789", modified: "true"},
			"xpcd v1.2.0-3-gabc (commit abc012345678, modified, go1.26.8)"},
		{"toolchain wins over the stamp", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.0"}, Settings: vcs},
			stamp{version: "v9", commit: "ffff", modified: "true"}, "xpcd v0.3.0 (commit d1ec155aabbc, go1.26.8)"},
		{"no build information", debug.BuildInfo{}, stamp{version: "v1.0.0"}, "xpcd v1.0.0"},
	} {
		if got := lineOf("xpcd", &c.bi, c.st); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestLine(t *testing.T) {
	if got := Line("x"); !strings.HasPrefix(got, "x ") || !strings.Contains(got, "go1.") {
		t.Errorf("Line: %q", got)
	}
}
