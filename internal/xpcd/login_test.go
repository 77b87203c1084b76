package xpcd

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/dbustest"
	"github.com/goxpc/xpc/internal/login1/login1test"
)

// With logind on the bus, a user's domain is made when they log in: at
// start for those logind has, then at each login; the agents with
// RunAtLoad start, though nothing named the domain. A UserNew that logind
// did not send makes nothing.
func TestLoginMakesUserDomains(t *testing.T) {
	bus := dbustest.Start(t, "")
	logind := login1test.Start(t, bus, regUser)
	h := newSystemHarness(t)
	const label = "test.login.agent"
	plist := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>Label</key><string>%s</string>
<key>ProgramArguments</key><array><string>/bin/sleep</string><string>60</string></array>
<key>RunAtLoad</key><true/>
</dict></plist>`, label)
	if err := os.WriteFile(filepath.Join(h.paths.Agents, label+".plist"), []byte(plist), 0o644); err != nil {
		t.Fatal(err)
	}
	h.cfg.LoginBus = bus.Addr
	h.start()
	running := func(uid uint32) bool {
		d := listed(h)[UserDomain(uid)+"/"+label]
		return d != nil && strOf(d, bootstrap.KeyState) == "running"
	}
	waitFor(t, "the agent of the user logged in at start", func() bool { return running(regUser) })

	// regOther has no account: its agent is loaded (the domain made) and
	// refused a launch (unknown-account).
	logind.Login(t, regOther)
	waitFor(t, "the domain of the user who logged in", func() bool { return listed(h)[UserDomain(regOther)+"/"+label] != nil })

	calls := logind.Calls()
	if err := login1test.SendUserNew(bus.Connect(t), 4242); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "xpcd to ask logind after the forged UserNew", func() bool { return logind.Calls() > calls })
	for target := range listed(h) {
		if dom, _ := filepath.Split(target); dom == UserDomain(4242)+"/" {
			t.Errorf("%s loaded: only users logind lists get a domain at login", target)
		}
	}
}
