package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// The strings of a registration are a user's (a bundle's directory name,
// its identifier, its job's label, its program's path): rendered for root
// by app list and approval list, a newline, a tab or an escape in one of
// them cannot forge another row, shift a column or reach the terminal.
func TestRenderRegsHostileStrings(t *testing.T) {
	forged := "/home/u/A.app\n0badc0de  true  0  system/org.example.trusted  org.example.trusted\t\x1b]0;pwned\a"
	reg := xpc.Dict(
		bootstrap.KeyAppKind, bootstrap.AppKindDaemon,
		bootstrap.KeyAppIdentifier, "org.example.x\nforged",
		bootstrap.KeyAppBundle, forged,
		bootstrap.KeyDomain, "system",
		bootstrap.KeyLabel, "org.example.x\tlabel",
		bootstrap.KeyAppProgram, forged,
		bootstrap.KeyAppArguments, xpc.Array{xpc.String("x"), xpc.String(forged)},
		bootstrap.KeyAppEnvironment, xpc.Dict("K\n0badc0de", forged),
		bootstrap.KeyStatus, bootstrap.AppStatusRequiresApproval,
		bootstrap.KeyApprovalID, "1234abcd",
	)
	for _, c := range []struct {
		key       string
		approvals bool
		lines     int // header and row; of approvals, a blank line, command and environment too
	}{{bootstrap.KeyRegistrations, false, 2}, {bootstrap.KeyApprovals, true, 5}} {
		var out bytes.Buffer
		renderRegs(terminal{&out}, xpc.Dict(c.key, xpc.Array{reg}), c.key, c.approvals)
		s := out.String()
		if n := strings.Count(s, "\n"); n != c.lines {
			t.Errorf("%s: %d lines for one registration:\n%s", c.key, n, s)
		}
		if strings.ContainsAny(s, "\t\x1b\a") {
			t.Errorf("%s: a control character reached the output: %q", c.key, s)
		}
	}
}

// approval list writes what a daemon runs as a shell would read it: each
// argument and variable one word, quoted when it must be.
func TestRenderApprovalCommand(t *testing.T) {
	reg := xpc.Dict(
		bootstrap.KeyApprovalID, "1234abcd",
		bootstrap.KeyDomain, "system",
		bootstrap.KeyLabel, "org.example.d",
		bootstrap.KeyAppProgram, "/opt/A.app/bin/d",
		bootstrap.KeyAppArguments, xpc.Array{xpc.String("d"), xpc.String("--mode"), xpc.String("a b"), xpc.String("it's")},
		bootstrap.KeyAppEnvironment, xpc.Dict("LD_PRELOAD", "/home/u/x.so", "A", "1 2"),
	)
	var out bytes.Buffer
	renderRegs(terminal{&out}, xpc.Dict(bootstrap.KeyApprovals, xpc.Array{reg}), bootstrap.KeyApprovals, true)
	for _, want := range []string{"  root\n", `1234abcd command: exec -a d /opt/A.app/bin/d --mode 'a b' 'it'\''s'` + "\n", `1234abcd environment: 'A=1 2' LD_PRELOAD=/home/u/x.so` + "\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("approval list:\n%s\nwant %q in it", out.String(), want)
		}
	}
}
