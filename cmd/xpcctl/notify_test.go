package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

// syncBuffer is a bytes.Buffer safe to write from one goroutine and read
// from another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// notify watch prints the posts notify post makes; notify get reads the
// state.
func TestNotifyCommands(t *testing.T) {
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, s.Root)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"notify", "watch", "--json", "com.example.a", "com.example.b"}, nil, &out, &errb)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(errb.String(), "watching") {
		if time.Now().After(deadline) {
			t.Fatalf("watch did not start: %s", errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := runCmd(t, nil, "notify", "post", "--state", "5", "com.example.a"); r.code != 0 {
		t.Fatalf("post: exit %d: %s", r.code, r.stderr)
	}
	if r := runCmd(t, nil, "notify", "post", "com.example.b"); r.code != 0 {
		t.Fatalf("post: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{`{"name":"com.example.a","state":5}`, `{"name":"com.example.b","state":0}`} {
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("watch printed %q, want %s", out.String(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("watch: exit %d: %s", code, errb.String())
	}
	if r := runCmd(t, nil, "notify", "get", "com.example.a"); r.code != 0 || r.stdout != "5\n" {
		t.Errorf("get: exit %d: %q %s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, "notify", "post", "--state", "-1", "n"); r.code != exitUsage {
		t.Errorf("a negative state: exit %d", r.code)
	}
	// A bad name is a bad request, and does not read like the refusal of
	// a rule (notify-post is one).
	if r := runCmd(t, nil, "notify", "post", "a b"); r.code != exitFail || !strings.Contains(r.stderr, bootstrap.ReasonBadRequest) ||
		strings.Contains(r.stderr, bootstrap.RuleNotifyPost) {
		t.Errorf("a bad name: exit %d: %s", r.code, r.stderr)
	}
	if r := runCmd(t, nil, "notify", "watch"); r.code != exitUsage {
		t.Errorf("watch of nothing: exit %d", r.code)
	}
}

// watchRun is a notify watch running in the background.
type watchRun struct {
	out, err syncBuffer
	done     chan int
	cancel   context.CancelFunc
	deadline time.Time
}

// startWatch runs notify watch with args and waits until it watches.
func startWatch(t *testing.T, args ...string) *watchRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &watchRun{done: make(chan int, 1), cancel: cancel, deadline: time.Now().Add(15 * time.Second)}
	go func() { w.done <- run(ctx, append([]string{"notify", "watch"}, args...), nil, &w.out, &w.err) }()
	w.waitFor(t, &w.err, "watching")
	return w
}

// waitFor waits until b, w's out or err, holds want.
func (w *watchRun) waitFor(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	for !strings.Contains(b.String(), want) {
		if time.Now().After(w.deadline) {
			t.Fatalf("printed %q, want %s (stderr: %s)", b.String(), want, w.err.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// notify watch keeps watching across an xpcd restart, and says on stderr
// that it reconnected.
func TestNotifyWatchAcrossRestart(t *testing.T) {
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, s.Root)
	w := startWatch(t, "--json", "com.example.r")
	s.Restart()
	w.waitFor(t, &w.err, "reconnected")
	// The call every reconnection makes, with the restarted xpcd's state.
	w.waitFor(t, &w.out, `{"name":"com.example.r","state":0}`)
	if r := runCmd(t, nil, "notify", "post", "--state", "3", "com.example.r"); r.code != 0 {
		t.Fatalf("post: exit %d: %s", r.code, r.stderr)
	}
	w.waitFor(t, &w.out, `{"name":"com.example.r","state":3}`)
	w.cancel()
	if code := <-w.done; code != exitOK {
		t.Errorf("watch: exit %d: %s", code, w.err.String())
	}
}
