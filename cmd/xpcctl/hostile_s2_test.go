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
	if want := "  /opt/A.app/d -v  "; !strings.Contains(out.String(), want) {
		t.Errorf("approval list:\n%s\nwant %q in it", out.String(), want)
	}
}
