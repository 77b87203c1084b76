// Package typedcall measures what a call through a generated interface
// costs against the same call made by hand, on the same request and reply:
//
//   - Generated: the client and server xpcgen wrote for store.Store
//     (package store);
//   - HandBuilt: SendWithReply with a dictionary built entry by entry, and a
//     handler that reads the request's entries and builds the reply's by hand;
//   - Values: SendWithReply of a dictionary made by xpc.ValueOf from a
//     struct, its reply read by xpc.ObjectInto, and a handler doing the same.
//
// The three send the same bytes: {"method": "Get", "arg0": {"key", "offset",
// "limit"}} and {"result0": {"key", "size", "found"}}. Each is served in
// this process on an anonymous listener, so a call is a round trip over a
// socket pair and both ends' work. cmd/typedcompare runs them in turns and
// prints the table of docs/PERFORMANCE.md; `go test -bench . ./typedcall`
// runs them one after the other.
package typedcall

import (
	"context"
	"errors"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bench/typedcall/store"
)

// Request and Reply are package store's.
type (
	Request = store.Request
	Reply   = store.Reply
)

// TheRequest is the request every benchmark sends.
var TheRequest = Request{Key: "/var/db/goxpc/state", Offset: 4096, Limit: 512}

// impl implements store.Store with the answer every server gives.
type impl struct{}

func (impl) Get(_ context.Context, r Request) (Reply, error) { return answer(r), nil }

// answer is the reply to r.
func answer(r Request) Reply { return Reply{Key: r.Key, Size: r.Offset + r.Limit, Found: true} }

// valueRequest and valueReply are the wire forms of a call to Get as
// structs, for ValueOf and ObjectInto.
type valueRequest struct {
	Method string  `xpc:"method"`
	Arg0   Request `xpc:"arg0"`
}

type valueReply struct {
	Result0 Reply `xpc:"result0"`
}

// A Case is one way of making the call: Serve returns the handler that
// serves it, Bind a function making one call over c and returning its
// reply.
type Case struct {
	Name  string
	Serve func() xpc.Handler
	Bind  func(c *xpc.Connection) func(ctx context.Context) (Reply, error)
}

// Cases returns the three ways of making the call, the generated one first.
func Cases() []Case {
	return []Case{
		{Name: "generated", Serve: serveGenerated, Bind: bindGenerated},
		{Name: "hand-built", Serve: serveHandBuilt, Bind: bind(callHandBuilt)},
		{Name: "values", Serve: serveValues, Bind: bind(callValues)},
	}
}

func serveGenerated() xpc.Handler { return store.NewStoreServer(impl{}) }

// bindGenerated makes the generated client once, as a user would.
func bindGenerated(c *xpc.Connection) func(context.Context) (Reply, error) {
	s := store.NewStoreClient(c)
	return func(ctx context.Context) (Reply, error) { return s.Get(ctx, TheRequest) }
}

// bind binds a call made by hand to c.
func bind(call func(context.Context, *xpc.Connection) (Reply, error)) func(*xpc.Connection) func(context.Context) (Reply, error) {
	return func(c *xpc.Connection) func(context.Context) (Reply, error) {
		return func(ctx context.Context) (Reply, error) { return call(ctx, c) }
	}
}

func serveHandBuilt() xpc.Handler {
	return xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
		arg, ok := m.Body.Get("arg0").(*xpc.Dictionary)
		if !ok {
			m.ReplyError(ctx, xpc.NewErrorObject("no arg0"))
			return
		}
		var r Request
		var err1, err2, err3 error
		r.Key, err1 = arg.String("key")
		r.Offset, err2 = arg.Int64("offset")
		r.Limit, err3 = arg.Int64("limit")
		if err := errors.Join(err1, err2, err3); err != nil {
			m.ReplyError(ctx, xpc.ErrorObjectOf(err))
			return
		}
		a := answer(r)
		m.Reply(ctx, xpc.Dict("result0", xpc.Dict("key", a.Key, "size", a.Size, "found", a.Found)))
	})
}

func callHandBuilt(ctx context.Context, c *xpc.Connection) (Reply, error) {
	r := TheRequest
	reply, err := c.SendWithReply(ctx, xpc.Dict("method", "Get",
		"arg0", xpc.Dict("key", r.Key, "offset", r.Offset, "limit", r.Limit)))
	if err != nil {
		return Reply{}, err
	}
	res, ok := reply.Get("result0").(*xpc.Dictionary)
	if !ok {
		return Reply{}, errors.New("no result0")
	}
	var a Reply
	var err1, err2, err3 error
	a.Key, err1 = res.String("key")
	a.Size, err2 = res.Int64("size")
	a.Found, err3 = res.Bool("found")
	return a, errors.Join(err1, err2, err3)
}

func serveValues() xpc.Handler {
	return xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
		var req valueRequest
		if err := xpc.ObjectInto(m.Body, &req); err != nil {
			m.ReplyError(ctx, xpc.ErrorObjectOf(err))
			return
		}
		obj, err := xpc.ValueOf(valueReply{Result0: answer(req.Arg0)})
		if err != nil {
			m.ReplyError(ctx, xpc.ErrorObjectOf(err))
			return
		}
		m.Reply(ctx, obj.(*xpc.Dictionary))
	})
}

func callValues(ctx context.Context, c *xpc.Connection) (Reply, error) {
	obj, err := xpc.ValueOf(valueRequest{Method: "Get", Arg0: TheRequest})
	if err != nil {
		return Reply{}, err
	}
	reply, err := c.SendWithReply(ctx, obj.(*xpc.Dictionary))
	if err != nil {
		return Reply{}, err
	}
	var v valueReply
	err = xpc.ObjectInto(reply, &v)
	return v.Result0, err
}

// Pair is a connection to an in-process listener serving one Case.
type Pair struct {
	Conn *xpc.Connection
	l    *xpc.Listener
}

// Listen serves c on a new anonymous listener and returns an active
// connection to it.
func Listen(c Case) (*Pair, error) {
	l, err := xpc.NewListener()
	if err != nil {
		return nil, err
	}
	h := c.Serve()
	l.SetHandler(func(peer *xpc.Connection) {
		peer.SetHandler(h)
		peer.Activate()
	})
	l.Activate()
	ep, err := l.Endpoint()
	if err != nil {
		l.Cancel()
		return nil, err
	}
	defer ep.Close()
	conn, err := xpc.NewEndpointConnection(ep)
	if err != nil {
		l.Cancel()
		return nil, err
	}
	conn.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	conn.Activate()
	return &Pair{Conn: conn, l: l}, nil
}

// Close cancels the connection, the listener and its peers.
func (p *Pair) Close() {
	p.Conn.Cancel()
	p.l.Cancel()
	for _, peer := range p.l.Peers() {
		peer.Cancel()
	}
}

// Bench returns a benchmark of c: one call per iteration over one
// connection, allocations reported.
func Bench(c Case) func(*testing.B) {
	return func(b *testing.B) {
		p, err := Listen(c)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		call := c.Bind(p.Conn)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := call(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}
