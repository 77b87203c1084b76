package typed

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goxpc/xpc"
)

// Invocation is one request being served, as generated server code sees
// it: Args (and RemoteArg) for the arguments, then Results.
type Invocation struct {
	msg     *xpc.Message
	body    *xpc.Dictionary
	method  string
	reply   *xpc.Dictionary
	taken   uint64 // arguments (by position, below 64) the method owns
	remotes []*boundedConn
	ctx     callContext // the method's context
	// callbackTimeout bounds calls through callback proxies (Server's).
	callbackTimeout time.Duration
}

// Args stores the arguments in the values ptrs point to, by position
// (Arg); a nil pointer skips its position.
func (in *Invocation) Args(ptrs ...any) error {
	for i, p := range ptrs {
		if p == nil {
			continue
		}
		if err := in.Arg(i, p); err != nil {
			return err
		}
	}
	return nil
}

// Arg stores the argument at position i in the value v points to
// (xpc.ObjectInto). An argument the request lacks (a client older than the
// interface) leaves v unchanged, its zero value; one that does not decode
// is an error matching ErrBadArguments, which the generated code returns
// without calling the method. Descriptors (*xpc.FD, *xpc.SharedMemory) in
// an argument that decodes belong to the method from then on.
func (in *Invocation) Arg(i int, v any) error {
	obj := in.body.Get(ArgKey(i))
	if obj == nil {
		return nil
	}
	if err := xpc.ObjectInto(obj, v); err != nil {
		return fmt.Errorf("typed: %s: argument %d: %w: %w", in.method, i, ErrBadArguments, err)
	}
	if i >= 0 && i < 64 {
		in.taken |= 1 << i
	}
	return nil
}

// RemoteArg returns a proxy for the object the client passed as the
// argument at position i (Local): a connection to the endpoint it sent,
// wrapped by newClient (the generated client constructor, such as
// NewWeatherClient). The proxy works until the method returns; then, once
// the one-way calls made through it have run in the client, its connection
// is cancelled. An absent argument gives T's zero value (nil); one that is
// not an endpoint an error matching ErrBadArguments.
func RemoteArg[T any](in *Invocation, i int, newClient func(Conn) T) (T, error) {
	var zero T
	obj := in.body.Get(ArgKey(i))
	if obj == nil {
		return zero, nil
	}
	if _, null := obj.(xpc.Null); null {
		return zero, nil
	}
	ep, ok := obj.(*xpc.Endpoint)
	if !ok {
		return zero, fmt.Errorf("typed: %s: argument %d: %w: %v where an endpoint belongs", in.method, i, ErrBadArguments, obj.Type())
	}
	c, err := xpc.NewEndpointConnection(ep)
	if err != nil {
		return zero, fmt.Errorf("typed: %s: argument %d: %w: %w", in.method, i, ErrBadArguments, err)
	}
	c.Activate()
	d := in.callbackTimeout
	if d <= 0 {
		d = DefaultCallbackTimeout
	}
	b := &boundedConn{c: c, d: d}
	in.remotes = append(in.remotes, b)
	return newClient(b), nil
}

// boundedConn is a callback proxy's connection: a call through it whose
// context has no deadline within d gets one d away, so that a client that
// never answers its callback cannot hold the method (SetCallbackTimeout).
type boundedConn struct {
	c *xpc.Connection
	d time.Duration
	// oneWay is set once a one-way call was sent through the proxy.
	oneWay atomic.Bool
}

func (b *boundedConn) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= b.d {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, b.d)
}

// Send sends msg as the connection's Send does, within the bound.
func (b *boundedConn) Send(ctx context.Context, msg *xpc.Dictionary) error {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	err := b.c.Send(ctx, msg)
	if err == nil {
		b.oneWay.Store(true)
	}
	return err
}

// SendWithReply sends msg as the connection's SendWithReply does, and
// waits for the reply within the bound.
func (b *boundedConn) SendWithReply(ctx context.Context, msg *xpc.Dictionary) (*xpc.Dictionary, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	return b.c.SendWithReply(ctx, msg)
}

// Results returns err if it is not nil (the method failed); otherwise it
// sets the reply's results, by position, to rs, each converted with
// xpc.ValueOf, and returns an error matching ErrBadResult if one does not
// convert.
func (in *Invocation) Results(err error, rs ...any) error {
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return nil
	}
	in.reply = xpc.NewDictionary(len(rs))
	for i, v := range rs {
		obj, err := xpc.ValueOf(v)
		if err != nil {
			return fmt.Errorf("typed: %s: result %d: %w: %w", in.method, i, ErrBadResult, err)
		}
		in.reply.Set(ResultKey(i), obj)
	}
	return nil
}

// end ends the proxies (endRemotes) and closes the descriptors in the
// request that no argument took.
func (in *Invocation) end() {
	in.endRemotes()
	if in.body == nil {
		return
	}
	for k, v := range in.body.All() {
		if in.tookKey(k) {
			continue
		}
		xpc.CloseAttachments(v)
	}
}

// endRemotes cancels the proxies' connections. Before that, a proxy
// through which a one-way call was sent gets a barrier: an empty request,
// whose reply (an error: it names no method) the client's connection sends
// only once the requests before it have been handled, one at a time and
// in order. So the one-way calls a method made through a callback have
// run when the client's call returns, rather than being dropped with the
// connection, or running after the call. The wait is bounded by the
// callback timeout; the barriers of several proxies are sent at once.
func (in *Invocation) endRemotes() {
	if len(in.remotes) == 0 {
		return // before wg, which escapes: a call without callbacks allocates nothing here
	}
	var wg sync.WaitGroup
	for _, b := range in.remotes {
		if b.oneWay.Load() {
			wg.Go(func() { _, _ = b.SendWithReply(context.Background(), xpc.NewDictionary(0)) })
		}
	}
	wg.Wait()
	for _, b := range in.remotes {
		b.c.Cancel()
	}
	in.remotes = nil
}

// tookKey reports whether the argument under key k was taken by the method.
func (in *Invocation) tookKey(k string) bool {
	if in.taken == 0 || !strings.HasPrefix(k, ArgKeyPrefix) {
		return false
	}
	i, err := strconv.Atoi(k[len(ArgKeyPrefix):])
	return err == nil && i >= 0 && i < 64 && in.taken&(1<<i) != 0 && ArgKey(i) == k
}

// messageKey is the context key of the message a method serves.
type messageKey struct{}

// callContext is the context a method is given: its connection's, plus
// the message (messageKey).
type callContext struct {
	context.Context
	msg *xpc.Message
}

// Value returns the message for messageKey, and the parent's values.
func (c *callContext) Value(key any) any {
	if _, ok := key.(messageKey); ok {
		return c.msg
	}
	return c.Context.Value(key)
}

// MessageFromContext returns the message whose method ctx was given to, or
// nil outside a method served by a Server.
func MessageFromContext(ctx context.Context) *xpc.Message {
	m, _ := ctx.Value(messageKey{}).(*xpc.Message)
	return m
}

// PeerFromContext returns the identity of the process that called the
// method ctx was given to (as the kernel gave it when that process
// connected), or nil outside a method served by a Server.
func PeerFromContext(ctx context.Context) *xpc.Peer {
	if m := MessageFromContext(ctx); m != nil {
		return m.Peer()
	}
	return nil
}

// ConnectionFromContext returns the connection the method ctx was given to
// was called on (NSXPCConnection's currentConnection), or nil outside a
// method served by a Server.
func ConnectionFromContext(ctx context.Context) *xpc.Connection {
	if m := MessageFromContext(ctx); m != nil {
		return m.Connection()
	}
	return nil
}
