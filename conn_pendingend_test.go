package xpc

import (
	"context"
	"fmt"
	"testing"

	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// pendingConn returns an active peer connection over one end of a socket
// pair, the raw other end (which never reads), and n requests of the
// connection's own, all pending.
func pendingConn(t *testing.T, n int) (*Connection, int, []*Call) {
	t.Helper()
	a, raw, err := sock.Pair()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := newConfig(nil)
	if err != nil {
		unix.Close(a)
		unix.Close(raw)
		t.Fatal(err)
	}
	c, err := newPeerConnection(cfg, a)
	if err != nil {
		unix.Close(raw)
		t.Fatal(err)
	}
	c.SetHandler(HandlerFunc(func(context.Context, *Message) {}))
	c.Activate()
	calls := make([]*Call, n)
	for i := range calls {
		calls[i] = c.Go(testCtx(t), Dict("q", i))
	}
	for i, call := range calls {
		if call.isDone() {
			r, err := call.Result()
			t.Fatalf("request %d finished before the end: %v %v", i+1, r, err)
		}
	}
	return c, raw, calls
}

// checkSettled fails the test unless every call is finished.
func checkSettled(t *testing.T, calls []*Call, what string) {
	t.Helper()
	for i, call := range calls {
		select {
		case <-call.Done():
		default:
			t.Fatalf("%s: request %d still pending after the connection ended", what, i+1)
		}
		if _, err := call.Result(); err == nil {
			t.Fatalf("%s: request %d got a reply nobody sent", what, i+1)
		}
	}
}

// A connection is done only once every reply that was pending has failed,
// whoever ends its link: here Cancel, from a goroutine of its own, while
// the link's watcher, woken by its socket closing, reports the end. Over
// many rounds, any gap between the link's death being seen and its pending
// calls failing shows (a gap that once made FuzzConnFrames fail at random).
func TestPendingFailBeforeDoneCancel(t *testing.T) {
	leakCheck(t)
	for round := range pendingRounds() {
		c, raw, calls := pendingConn(t, 200)
		go c.Cancel()
		waitClosed(t, c.Done(), fmt.Sprint("round ", round, ": cancelled connection"))
		unix.Close(raw)
		checkSettled(t, calls, fmt.Sprint("round ", round, ": Cancel"))
	}
}

// The same when a goroutine the link's reader started ends the link: the
// peer's stalled frame has the reader grant credit back from a goroutine,
// whose send finds that the peer has stopped reading, while the reader,
// with nothing more to read, is woken by its socket closing (as in
// FuzzConnFrames, whose peer sends a stalled frame and goes).
func TestPendingFailBeforeDoneGrant(t *testing.T) {
	leakCheck(t)
	msg, err := Encode(Dict("op", "ping"))
	if err != nil {
		t.Fatal(err)
	}
	for round := range pendingRounds() {
		c, raw, calls := pendingConn(t, 200)
		if err := unix.Shutdown(raw, unix.SHUT_RD); err != nil {
			unix.Close(raw)
			t.Fatal(err)
		}
		for _, b := range [][]byte{
			frameOf(wire.KindMessage, 0, 0, 0, msg),
			frameOf(wire.KindStalled, 0, 0, 0, nil),
		} {
			if err := rawSend(t, raw, b); err != nil {
				unix.Close(raw)
				t.Fatal(err)
			}
		}
		waitClosed(t, c.Done(), fmt.Sprint("round ", round, ": connection whose peer stopped reading"))
		unix.Close(raw)
		checkSettled(t, calls, fmt.Sprint("round ", round, ": grant"))
	}
}

// pendingRounds is how many rounds TestPendingFailBeforeDoneCancel and
// TestPendingFailBeforeDoneGrant run: had a call a gap between leaving the
// reply table and finishing, they would fail within a few.
func pendingRounds() int {
	if testing.Short() {
		return 30
	}
	return 150
}
