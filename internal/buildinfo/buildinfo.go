package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Line is one line for a command's --version: "NAME VERSION (commit
// REVISION[, modified], GOVERSION)", with "(devel)" for a version the
// toolchain did not know (a build from a checkout) and no commit when it
// recorded none (built with -buildvcs=false, or outside a repository).
func Line(name string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return name + " (no build information)"
	}
	return lineOf(name, bi)
}

func lineOf(name string, bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	var extra []string
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		c := "commit " + rev
		if modified == "true" {
			c += ", modified"
		}
		extra = append(extra, c)
	}
	extra = append(extra, bi.GoVersion)
	return name + " " + version + " (" + strings.Join(extra, ", ") + ")"
}
