package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// A daemon's argv[0] is its ProgramArguments' first, which xpcd passes to
// its program as given: a multi-call program (busybox) runs what argv[0]
// names. approval list must show it when it is not the program, or a
// user's daemon that runs a root shell reads as something else.
func TestHostileApprovalArgv0(t *testing.T) {
	reg := xpc.Dict(
		bootstrap.KeyApprovalID, "1234abcd",
		bootstrap.KeyDomain, "system",
		bootstrap.KeyLabel, "org.example.d",
		bootstrap.KeyAppProgram, "/usr/bin/busybox",
		bootstrap.KeyAppArguments, xpc.Array{xpc.String("sh"), xpc.String("-c"), xpc.String("id")},
	)
	var out bytes.Buffer
	renderRegs(terminal{&out}, xpc.Dict(bootstrap.KeyApprovals, xpc.Array{reg}), bootstrap.KeyApprovals, true)
	if want := "exec -a sh /usr/bin/busybox -c id"; !strings.Contains(out.String(), want) {
		t.Errorf("approval list:\n%s\nwant %q in it: argv[0] decides what busybox runs", out.String(), want)
	}
	// The usual case, argv[0] the program, reads as before.
	reg.Set(bootstrap.KeyAppArguments, xpc.Array{xpc.String("/opt/A.app/d"), xpc.String("-v")})
	reg.Set(bootstrap.KeyAppProgram, xpc.String("/opt/A.app/d"))
	out.Reset()
	renderRegs(terminal{&out}, xpc.Dict(bootstrap.KeyApprovals, xpc.Array{reg}), bootstrap.KeyApprovals, true)
	if want := "  /opt/A.app/d -v  "; !strings.Contains(out.String(), want) {
		t.Errorf("approval list:\n%s\nwant %q in it", out.String(), want)
	}
}

// A word zsh would expand (=cmd is the path of cmd there) is quoted: the
// command reads the same in every shell an administrator might paste it
// into.
func TestHostileShellQuoteEquals(t *testing.T) {
	for _, s := range []string{"=sh", "=ls", "=x=y"} {
		if q := shellQuote(s); q != "'"+s+"'" {
			t.Errorf("shellQuote(%q) = %s, want it in single quotes (zsh reads %s as a path)", s, q, s)
		}
	}
	for _, s := range []string{"a=b", "/opt/A.app/d", "--x=1"} {
		if q := shellQuote(s); q != s {
			t.Errorf("shellQuote(%q) = %s, want it as it is", s, q)
		}
	}
}

// One daemon's huge argument pads the COMMAND column of every row, so
// another daemon's ENVIRONMENT (its LD_PRELOAD, say) lands screens to the
// right of its row. Known, not fixed here: the table's layout is the
// maintainers' to choose (XPCCTL_HOSTILE_S2_KNOWN=1 runs it).
func TestHostileApprovalHugeCellHidesOthers(t *testing.T) {
	if os.Getenv("XPCCTL_HOSTILE_S2_KNOWN") == "" {
		t.Skip("known defect: a long COMMAND cell pads every row's ENVIRONMENT (see hostile_s2 report)")
	}
	huge := xpc.Dict(
		bootstrap.KeyApprovalID, "aaaaaaaa", bootstrap.KeyDomain, "system", bootstrap.KeyLabel, "org.example.pad",
		bootstrap.KeyAppProgram, "/opt/A.app/pad",
		bootstrap.KeyAppArguments, xpc.Array{xpc.String("/opt/A.app/pad"), xpc.String(strings.Repeat(" ", 100<<10))},
	)
	evil := xpc.Dict(
		bootstrap.KeyApprovalID, "bbbbbbbb", bootstrap.KeyDomain, "system", bootstrap.KeyLabel, "org.example.d",
		bootstrap.KeyAppProgram, "/opt/A.app/d",
		bootstrap.KeyAppArguments, xpc.Array{xpc.String("/opt/A.app/d")},
		bootstrap.KeyAppEnvironment, xpc.Dict("LD_PRELOAD", "/home/u/x.so"),
	)
	var out bytes.Buffer
	renderRegs(terminal{&out}, xpc.Dict(bootstrap.KeyApprovals, xpc.Array{huge, evil}), bootstrap.KeyApprovals, true)
	for line := range strings.Lines(out.String()) {
		if strings.HasPrefix(line, "bbbbbbbb") {
			if i := strings.Index(line, "LD_PRELOAD"); i > 1000 {
				t.Errorf("the daemon's LD_PRELOAD is at column %d of its row, pushed there by another row's argument", i)
			}
		}
	}
}
