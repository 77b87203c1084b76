package xpc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
)

func TestActivityStateString(t *testing.T) {
	for st, want := range map[ActivityState]string{
		ActivityCheckIn: "check-in", ActivityWait: "wait", ActivityRun: "run",
		ActivityDefer: "defer", ActivityContinue: "continue", ActivityDone: "done", 17: "ActivityState(17)",
	} {
		if got := st.String(); got != want {
			t.Errorf("%d: %q, want %q", int(st), got, want)
		}
	}
}

// Transitions other than from run or continue to continue, done or defer
// fail with ErrActivityState, and tell xpcd nothing.
func TestActivitySetStateTransitions(t *testing.T) {
	s := &Service{}
	ctx := context.Background()
	for _, c := range []struct{ from, to ActivityState }{
		{ActivityCheckIn, ActivityDone}, {ActivityRun, ActivityRun}, {ActivityRun, ActivityWait},
		{ActivityDone, ActivityDefer}, {ActivityDefer, ActivityContinue}, {ActivityContinue, ActivityCheckIn},
	} {
		a := &Activity{s: s, id: "x", state: c.from}
		if err := a.SetState(ctx, c.to); !errors.Is(err, ErrActivityState) {
			t.Errorf("%s -> %s: %v", c.from, c.to, err)
		}
		if a.State() != c.from {
			t.Errorf("%s -> %s: state changed to %s", c.from, c.to, a.State())
		}
	}
	// A valid one is taken, and fails only for want of a channel.
	a := &Activity{s: s, id: "x", state: ActivityRun}
	if err := a.SetState(ctx, ActivityDefer); errors.Is(err, ErrActivityState) || !errors.Is(err, ErrInterrupted) || a.State() != ActivityDefer {
		t.Errorf("run -> defer: %v, state %s", err, a.State())
	}
}

func TestRegisterActivityBadCriteria(t *testing.T) {
	s := &Service{}
	err := s.RegisterActivity(context.Background(), "x", &ActivityCriteria{Interval: 1500 * time.Millisecond}, func(*Activity) {})
	if !errors.Is(err, ErrBadCriteria) {
		t.Errorf("half-second interval: %v", err)
	}
}

// xpcd's refusals map to typed errors: a limit is an *ActivityError naming
// its rule, matched by ErrDenied; bad criteria ErrBadCriteria; an unknown
// activity ErrActivityNotFound.
func TestActivityErrors(t *testing.T) {
	refusal := func(reason, rule string) error {
		r := &Reason{Code: reason, Rule: rule, Description: "refused"}
		return &RemoteError{Object: r.Object()}
	}
	err := activityError("x", refusal(bootstrap.ReasonDenied, bootstrap.RuleActivityLimit))
	var ae *ActivityError
	if !errors.As(err, &ae) || ae.Reason.Rule != bootstrap.RuleActivityLimit || !errors.Is(err, ErrDenied) {
		t.Errorf("limit: %v", err)
	}
	if err := activityError("x", refusal(bootstrap.ReasonBadCriteria, "")); !errors.Is(err, ErrBadCriteria) {
		t.Errorf("bad criteria: %v", err)
	}
	if err := activityError("x", refusal(bootstrap.ReasonNotFound, "")); !errors.Is(err, ErrActivityNotFound) || errors.Is(err, ErrDenied) {
		t.Errorf("not found: %v", err)
	}
}
