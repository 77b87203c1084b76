package main

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

// print pid/PID shows a process's pid domain (empty for the test, which
// was not started from a bundle); verbs that change a domain refuse one,
// and kill names its jobs.
func TestPrintPIDDomain(t *testing.T) {
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, s.Root)
	dom := "pid/" + strconv.Itoa(os.Getpid())
	r := runCmd(t, nil, "print", dom)
	if r.code != 0 || !strings.Contains(r.stdout, "domain = "+dom+"\n") || !strings.Contains(r.stdout, "services = [") ||
		strings.Contains(r.stdout, "bundle = ") {
		t.Errorf("print %s: exit %d\n%s%s", dom, r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, nil, "bootout", dom+"/org.example.helper")
	if r.code == 0 || !strings.Contains(r.stderr, "pid or apps domain") {
		t.Errorf("bootout in %s: exit %d\n%s%s", dom, r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, nil, "kill", "TERM", dom+"/org.example.helper")
	if r.code == 0 || !strings.Contains(r.stderr, "not loaded") {
		t.Errorf("kill of a job %s does not have: exit %d\n%s%s", dom, r.code, r.stdout, r.stderr)
	}
}
