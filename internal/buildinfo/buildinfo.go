package buildinfo

import (
	"runtime/debug"
	"strings"
)

// version and commit are set only by the linker (-X, see the package
// documentation) and never written at run time.
var (
	version  string
	commit   string
	modified string // "true" when the tree had changes
)

// Line is the --version line of the command called name: the name, the
// version ("(devel)" when none is known), and in parentheses the commit
// (with ", modified" when the tree had changes) and the Go version.
func Line(name string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	return lineOf(name, bi, stamp{version: version, commit: commit, modified: modified})
}

// stamp is what the linker was told.
type stamp struct {
	version, commit, modified string
}

func lineOf(name string, bi *debug.BuildInfo, st stamp) string {
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = st.version
	}
	if v == "" {
		v = "(devel)"
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
	if rev == "" {
		rev, modified = st.commit, st.modified
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
	if bi.GoVersion != "" {
		extra = append(extra, bi.GoVersion)
	}
	if len(extra) == 0 {
		return name + " " + v
	}
	return name + " " + v + " (" + strings.Join(extra, ", ") + ")"
}
