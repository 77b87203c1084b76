package xpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// A reason survives its trip through an error object (a refused frame),
// and the error made from it matches the kind its code stands for.
func TestReasonRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		r    Reason
		kind error
	}{
		{Reason{Code: ReasonNotFound, Description: "no service named a.b"}, ErrServiceNotFound},
		{Reason{Code: ReasonOtherDomain, Domain: "system", Description: "a.b is a system daemon"}, ErrOtherDomain},
		{Reason{Code: ReasonDenied, Rule: "domain-access", Description: "user/0 is root's"}, ErrDenied},
		{Reason{Code: ReasonRequirementFailed, Rule: "uid 0", Peer: "pid 1 uid 1000", Description: "requirement not met"}, ErrPeerRequirement},
		{Reason{Code: ReasonBusy, Description: "too many waiting"}, ErrDenied},
		{Reason{Code: "from-the-future", Description: "a newer xpcd"}, ErrDenied},
		{Reason{Code: ReasonExited, ExitStatus: 3, Signal: 0, Description: "exited"}, ErrDenied},
	} {
		got := ReasonFromObject(tc.r.Object())
		if *got != tc.r {
			t.Errorf("round trip of %+v: %+v", tc.r, *got)
		}
		err := refusalError(tc.r.Object(), "lookup")
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, tc.kind) {
			t.Errorf("%s: %v does not match %v", tc.r.Code, err, tc.kind)
		}
		for _, other := range []error{ErrServiceNotFound, ErrOtherDomain, ErrDenied, ErrPeerRequirement} {
			if other != tc.kind && errors.Is(err, other) {
				t.Errorf("%s: %v also matches %v", tc.r.Code, err, other)
			}
		}
		if !strings.Contains(err.Error(), tc.r.Description) {
			t.Errorf("%v does not say %q", err, tc.r.Description)
		}
		if tc.r.Rule != "" && !strings.Contains(err.Error(), tc.r.Rule) {
			t.Errorf("%v does not name the rule %q", err, tc.r.Rule)
		}
	}
	// An object without a code is a denial; one with fields of the
	// wrong type keeps the rest.
	eo := NewErrorObject("no")
	eo.Set("rule", Int64(3))
	eo.Set("signal", Int64(1000))
	if r := ReasonFromObject(eo); r.Code != ReasonDenied || r.Rule != "" || r.Signal != 0 || r.Description != "no" {
		t.Errorf("loose object: %+v", r)
	}
}

// Every connection has a reason once it has failed, the one its final
// error carries.
func TestConnectionReason(t *testing.T) {
	peers := make(chan *Connection, 1)
	l := serve(t, func(p *Connection) Handler {
		peers <- p
		return HandlerFunc(func(ctx context.Context, m *Message) { _ = m.Reply(ctx, NewDictionary(0)) })
	})
	c := dial(t, l, nil)
	if _, err := c.SendWithReply(testCtx(t), NewDictionary(0)); err != nil {
		t.Fatal(err)
	}
	if r := c.Reason(); r != nil {
		t.Fatalf("a live connection has a reason: %+v", r)
	}
	p := <-peers
	p.Cancel()
	<-c.Done()
	if r := c.Reason(); r == nil || r.Code != ReasonPeerGone {
		t.Fatalf("after the peer cancelled: %+v (err %v)", r, c.Err())
	}
	if r := p.Reason(); r == nil || r.Code != ReasonCanceled {
		t.Fatalf("after Cancel: %+v", r)
	}
}

// The reason is there as soon as a call has failed with it, not only once
// the handler has heard of the end.
func TestReasonWhenCallFails(t *testing.T) {
	other := MustParseRequirement(fmt.Sprintf("uid %d", os.Geteuid()+1))
	for i := range 50 {
		l := serve(t, handlerFor(func(ctx context.Context, m *Message) { _ = m.Reply(ctx, NewDictionary(0)) }), WithPeerRequirement(other))
		c := dial(t, l, nil)
		_, err := c.SendWithReply(testCtx(t), NewDictionary(0))
		if !errors.Is(err, ErrPeerRequirement) {
			t.Fatalf("round %d: %v, want the listener's refusal", i, err)
		}
		if r := c.Reason(); r == nil || r.Code != ReasonRequirementFailed {
			t.Fatalf("round %d: Reason() right after the call failed with %v: %+v", i, err, r)
		}
	}
}
