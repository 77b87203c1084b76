package xpc

import (
	"errors"
	"strings"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// A service run by hand, not by xpcd, is told how it is meant to start.
func TestCheckInByHandSaysHow(t *testing.T) {
	t.Setenv(bootstrap.CheckinFDEnv, "")
	_, err := CheckIn(testCtx(t))
	if !errors.Is(err, ErrNotLaunched) || !strings.Contains(err.Error(), "xpcctl kickstart") {
		t.Errorf("CheckIn outside xpcd: %v", err)
	}
}
