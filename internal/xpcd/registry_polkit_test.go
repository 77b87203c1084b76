package xpcd

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/dbustest"
	"github.com/goxpc/xpc/internal/polkit"
	"github.com/goxpc/xpc/internal/polkit/polkittest"
)

// A daemon a user registers is approved by polkit (a fake authority on a
// private bus) when it says yes; it is asked about the registering
// process, with the bundle's identifier and the daemon's program.
func TestAppDaemonPolkit(t *testing.T) {
	b := dbustest.Start(t, "")
	f := polkittest.Start(t, b, polkittest.Authorized)
	h := newSystemHarness(t)
	h.cfg.PolkitBus = b.Addr
	h.start()
	id := "org.example.regpolkit"
	root := daemonBundle(t, appsDir(t, h), id)
	plist := id + ".daemon.plist"
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, root, bootstrap.AppKindDaemon, plist)
	waitFor(t, "polkit's yes to approve the daemon", func() bool {
		return u.status(root, bootstrap.AppKindDaemon, plist) == bootstrap.AppStatusEnabled
	})
	waitFor(t, "the daemon to run", func() bool { return h.stateOfTarget(DomainSystem+"/"+id+".daemon") == "running" })
	checks := f.Checks()
	if len(checks) != 1 {
		t.Fatalf("polkit was asked %d times", len(checks))
	}
	c := checks[0]
	uid := fmt.Sprint(c.Subject.Details["uid"].Value())
	pid := fmt.Sprint(c.Subject.Details["pid"].Value())
	if c.Action != polkit.ActionApproveDaemon || c.Details["identifier"] != id || uid != strconv.Itoa(regUser) || pid != strconv.Itoa(os.Getpid()) {
		t.Fatalf("polkit was asked %+v", c)
	}
}
