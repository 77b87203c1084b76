package xpc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/xpctest"
)

// The sessions' service: the test binary, run by xpcd with
// GOXPC_SESSION_SERVICE=1. It appends its pid to the file
// GOXPC_SESSION_LAUNCHES names, accepts each session of sessionName
// (answering with its pid) and rejects each of sessionRejectName.
const (
	sessionServiceEnv  = "GOXPC_SESSION_SERVICE"
	sessionLaunchesEnv = "GOXPC_SESSION_LAUNCHES"
	sessionName        = "org.goxpc.test.session"
	sessionRejectName  = "org.goxpc.test.session.reject"
	sessionRejection   = "closed for maintenance"
)

func init() {
	if os.Getenv(sessionServiceEnv) == "1" {
		os.Exit(sessionService())
	}
}

func sessionService() int {
	ctx := context.Background()
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f, err := os.OpenFile(os.Getenv(sessionLaunchesEnv), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(f, os.Getpid())
	f.Close()
	for _, name := range []string{sessionName, sessionRejectName} {
		l, err := svc.Listen(ctx, name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		reject := name == sessionRejectName
		l.SetSessionHandler(func(r *xpc.SessionRequest) {
			if reject {
				r.Reject(sessionRejection)
				return
			}
			r.Accept(xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
				m.Reply(ctx, xpc.Dict("pid", os.Getpid(), "peer_pid", r.Peer().PID))
			}))
		})
		l.Activate()
	}
	<-svc.Terminating()
	return 0
}

// sessionServer starts an xpcd serving the sessions' service and returns
// it with the path of the service's launch log.
func sessionServer(t *testing.T) (*xpctest.Server, string) {
	launches := filepath.Join(t.TempDir(), "launches")
	plist := xpctest.AgentPlist("org.goxpc.test.session", []string{os.Args[0]},
		[]string{sessionName, sessionRejectName},
		map[string]any{"EnvironmentVariables": map[string]string{sessionServiceEnv: "1", sessionLaunchesEnv: launches},
			"ThrottleInterval": 1})
	return xpctest.NewServer(t, xpctest.WithPlist("session.plist", plist)), launches
}

// launchCount returns how many times the service was started.
func launchCount(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(strings.Fields(string(b)))
}

func asSessionError(t *testing.T, err error) *xpc.SessionError {
	t.Helper()
	var se *xpc.SessionError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *SessionError", err, err)
	}
	return se
}

// TestSessionServiceKilled: a session reaches one instance of its service;
// when that instance is killed the session is over (ErrInterrupted, the
// signal as reason, CanRetry true): later sends fail at once and the
// service is not launched again by it. A new session reaches a new
// instance.
func TestSessionServiceKilled(t *testing.T) {
	srv, launches := sessionServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := xpc.NewSession(ctx, sessionName, nil, xpc.WithBootstrapSocket(srv.Socket))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cancel()
	reply, err := s.SendWithReply(ctx, xpc.NewDictionary(0))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := reply.Int64("pid")
	if peer, _ := reply.Int64("peer_pid"); peer != int64(os.Getpid()) {
		t.Errorf("the service saw the session's peer as pid %d, want %d", peer, os.Getpid())
	}
	if p := s.Peer(); p == nil || int64(p.PID) != pid {
		t.Errorf("Peer() = %v, want pid %d", p, pid)
	}

	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err = s.SendWithReply(ctx, xpc.NewDictionary(0))
	se := asSessionError(t, err)
	if !errors.Is(err, xpc.ErrInterrupted) || !se.CanRetry || se.Reason.Code != xpc.ReasonSignaled || se.Reason.Signal != 9 {
		t.Errorf("after the kill: %v, CanRetry %v, reason %+v", err, se.CanRetry, se.Reason)
	}
	start := time.Now()
	for range 3 {
		if err := s.Send(ctx, xpc.NewDictionary(0)); err != error(se) {
			t.Errorf("later send: %v, want the session's error", err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("later sends took %v", d)
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("the session is not done")
	}
	time.Sleep(300 * time.Millisecond) // a launch would have happened by now
	if n := launchCount(t, launches); n != 1 {
		t.Fatalf("the service was launched %d times, want once", n)
	}

	s2, err := xpc.NewSession(ctx, sessionName, nil, xpc.WithBootstrapSocket(srv.Socket))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Cancel()
	reply, err = s2.SendWithReply(ctx, xpc.NewDictionary(0))
	if err != nil {
		t.Fatal(err)
	}
	if pid2, _ := reply.Int64("pid"); pid2 == pid {
		t.Errorf("the new session reached the killed pid %d", pid)
	}
	if n := launchCount(t, launches); n != 2 {
		t.Errorf("the service was launched %d times, want twice", n)
	}
	s2.Cancel()
	if err := s2.Send(ctx, xpc.NewDictionary(0)); !errors.Is(err, xpc.ErrCanceled) || asSessionError(t, err).CanRetry {
		t.Errorf("send after Cancel: %v", err)
	}
}

// TestSessionRefusedEndToEnd: a service that rejects the session, and a
// name xpcd does not know, end the session with an error that says so,
// with CanRetry false.
func TestSessionRefusedEndToEnd(t *testing.T) {
	srv, _ := sessionServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		kind error
		code string
	}{
		{sessionRejectName, xpc.ErrSessionRejected, xpc.ReasonSessionRejected},
		{"org.goxpc.test.session.missing", xpc.ErrServiceNotFound, xpc.ReasonNotFound},
	} {
		s, err := xpc.NewSession(ctx, tc.name, nil, xpc.WithBootstrapSocket(srv.Socket))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.SendWithReply(ctx, xpc.NewDictionary(0))
		se := asSessionError(t, err)
		if !errors.Is(err, tc.kind) || !errors.Is(err, xpc.ErrInvalid) || se.CanRetry || se.Reason.Code != tc.code {
			t.Errorf("%s: %v, CanRetry %v, reason %+v", tc.name, err, se.CanRetry, se.Reason)
		}
		if tc.kind == xpc.ErrSessionRejected && se.Reason.Description != sessionRejection {
			t.Errorf("%s: description %q, want %q", tc.name, se.Reason.Description, sessionRejection)
		}
		s.Cancel()
	}

	// A client that is not a session gets the rejection as well.
	c := srv.Connect(t, sessionRejectName)
	_, err := c.SendWithReply(ctx, xpc.NewDictionary(0))
	var ce *xpc.ConnError
	if !errors.Is(err, xpc.ErrSessionRejected) || !errors.As(err, &ce) || ce.Reason.Description != sessionRejection {
		t.Errorf("a plain connection to a rejecting service: %v", err)
	}
}

// TestSessionsConcurrent: sessions started together with one service are
// each accepted with their own handler.
func TestSessionsConcurrent(t *testing.T) {
	srv, _ := sessionServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			s, err := xpc.NewSession(ctx, sessionName, nil, xpc.WithBootstrapSocket(srv.Socket))
			if err != nil {
				errs <- err
				return
			}
			defer s.Cancel()
			reply, err := s.SendWithReply(ctx, xpc.NewDictionary(0))
			if err == nil {
				if peer, _ := reply.Int64("peer_pid"); peer != int64(os.Getpid()) {
					err = fmt.Errorf("the service saw pid %d", peer)
				}
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
