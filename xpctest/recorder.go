package xpctest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
)

// Testing a Handler with no connection and no xpcd, as
// net/http/httptest.NewRecorder tests an http.Handler.

// ErrNotAnswered: the handler has not answered the message (yet).
var ErrNotAnswered = errors.New("not answered")

// Recorder records the answer a Handler gives to a message made by
// NewMessage: the reply, the error, or that it returned without replying,
// now or later (a deferred reply, from any goroutine).
type Recorder struct {
	done chan struct{} // closed once answered

	mu       sync.Mutex
	answered bool
	reply    *xpc.Dictionary
	err      error
}

// MessageOption configures NewMessage.
type MessageOption func(*messageConfig)

type messageConfig struct {
	peer    *xpc.Peer
	oneWay  bool
	selfSet bool
}

// FromPeer makes p the message's sender (Message.Peer), in place of this
// process. p stays the caller's (a Peer from xpc.PeerOfSocket, say).
func FromPeer(p *xpc.Peer) MessageOption {
	return func(c *messageConfig) { c.peer, c.selfSet = p, true }
}

// OneWay makes a message that wants no reply, as Connection.Send sends:
// its Reply returns xpc.ErrNoReplyWanted and the Recorder hears nothing.
func OneWay() MessageOption { return func(c *messageConfig) { c.oneWay = true } }

// NewMessage returns a message carrying body, as a Handler would receive
// it, and the Recorder of its answer. body is a *xpc.Dictionary, or a Go
// value converted as Connection.Invoke converts its request (a struct, a
// map with string keys; see xpc.ValueOf). The message wants a reply
// (unless OneWay), comes from no connection (Message.Connection is nil)
// and, unless FromPeer says otherwise, from this process (Message.Peer is
// this process, as the kernel names it). NewMessage fails the test if body
// does not convert.
//
// Hand the message to the handler with Handle; the Recorder then has what
// the caller of SendWithReply (or Invoke) would have got. (Calling the
// handler's HandleMessage directly works too, but a handler that returns
// without replying or deferring then leaves the message unanswered, where
// Handle answers it with no reply, as a connection does.)
func NewMessage(t testing.TB, body any, opts ...MessageOption) (*xpc.Message, *Recorder) {
	t.Helper()
	var cfg messageConfig
	for _, o := range opts {
		o(&cfg)
	}
	d, ok := body.(*xpc.Dictionary)
	if !ok || d == nil {
		obj, err := xpc.ValueOf(body)
		if d, ok = obj.(*xpc.Dictionary); err != nil || !ok {
			t.Fatalf("xpctest: NewMessage: the body %T is not a dictionary (%v)", body, err)
		}
	}
	if !cfg.selfSet {
		cfg.peer = selfPeer(t)
	}
	r := &Recorder{done: make(chan struct{})}
	return xpc.NewLocalMessage(d, cfg.peer, !cfg.oneWay, r.record), r
}

// selfPeer returns this process as the kernel names it to a peer, closed
// by t's cleanup.
func selfPeer(t testing.TB) *xpc.Peer {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("xpctest: %v", err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "self"), os.NewFile(uintptr(fds[1]), "self")
	defer a.Close()
	defer b.Close()
	p, err := xpc.PeerOfSocket(a)
	if err != nil {
		t.Fatalf("xpctest: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// Handle hands m, made by NewMessage, to h as a connection's dispatcher
// does: h.HandleMessage, and then, if h neither replied nor deferred, the
// answer with no reply (xpc.ErrNoReply at the caller). It returns when h
// has.
func Handle(ctx context.Context, h xpc.Handler, m *xpc.Message) { xpc.HandleLocal(ctx, h, m) }

func (r *Recorder) record(reply *xpc.Dictionary, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.answered {
		return
	}
	r.answered, r.reply, r.err = true, reply, err
	close(r.done)
}

// Done returns a channel closed once the message has been answered.
func (r *Recorder) Done() <-chan struct{} { return r.done }

// Result returns the answer as the caller's SendWithReply would: the
// reply, or the error (a *xpc.RemoteError for ReplyError, which errors.Is
// and errors.As match against the handler's error; one matching
// xpc.ErrReplyFailed for a reply that does not encode; one matching
// xpc.ErrNoReply when the handler returned without replying or
// deferring). Before the answer it returns ErrNotAnswered.
func (r *Recorder) Result() (*xpc.Dictionary, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.answered {
		return nil, ErrNotAnswered
	}
	return r.reply, r.err
}

// Wait waits for the answer, a deferred reply for instance, until ctx
// ends, and returns it as Result does; if ctx ends first, it returns
// ctx's error.
func (r *Recorder) Wait(ctx context.Context) (*xpc.Dictionary, error) {
	select {
	case <-r.done:
		return r.Result()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Decode stores the reply in the Go value v points to, by the rules of
// xpc.ObjectInto, as Connection.Invoke decodes a reply. It returns
// Result's error if there is no reply.
func (r *Recorder) Decode(v any) error {
	reply, err := r.Result()
	if err != nil {
		return err
	}
	return xpc.ObjectInto(reply, v)
}
