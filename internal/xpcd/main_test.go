package xpcd

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: every daemon a
// test starts is closed by then, and closing must stop everything it ran.
func TestMain(m *testing.M) {
	if os.Getenv("XPCD_TEST_APPSVC") == "1" {
		os.Exit(helperMain()) // a bundle's XPC service (apps_e2e_test.go)
	}
	if os.Getenv("XPCD_TEST_HELPER") == "1" {
		os.Exit(m.Run()) // the service: TestHelperProcess exits itself
	}
	goleak.VerifyTestMain(m)
}
