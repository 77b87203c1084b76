package main

import (
	"bytes"
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
	if want := " command: /opt/A.app/d -v\n"; !strings.Contains(out.String(), want) {
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

// One daemon's huge argument must not push another daemon's environment
// (its LD_PRELOAD, say) screens to the right: commands and environments
// are lines of their own after the table.
func TestHostileApprovalHugeCellHidesOthers(t *testing.T) {
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
	shown := false
	for line := range strings.Lines(out.String()) {
		if strings.HasPrefix(line, "bbbbbbbb") {
			if i := strings.Index(line, "LD_PRELOAD"); i > 1000 {
				t.Errorf("the daemon's LD_PRELOAD is at column %d of its line, pushed there by another row's argument", i)
			} else if i >= 0 {
				shown = true
			}
		}
	}
	if !shown {
		t.Errorf("the daemon's LD_PRELOAD is not shown:\n%.2000s", out.String())
	}
}
