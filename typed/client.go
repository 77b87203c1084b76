package typed

import (
	"context"
	"fmt"

	"github.com/goxpc/xpc"
)

// Conn is what a generated client calls through: *xpc.Connection has these
// methods, and so does any other client that sends dictionaries (a session,
// a test double).
type Conn interface {
	Send(ctx context.Context, msg *xpc.Dictionary) error
	SendWithReply(ctx context.Context, msg *xpc.Dictionary) (*xpc.Dictionary, error)
}

// Request is one call being built by a generated client: NewRequest, an
// Arg (or LocalArg) for each argument, then Call or Send, which end it.
type Request struct {
	method string
	body   *xpc.Dictionary
	err    error
	locals []*xpc.Listener
}

// NewRequest starts a request for the method called name with room for
// nargs arguments. name is given as an xpc.Object (xpc.String("Forecast"))
// so that a constant name costs the call nothing.
func NewRequest(name xpc.Object, nargs int) Request {
	d := xpc.NewDictionary(nargs + 1)
	d.Set(MethodKey, name)
	method, _ := name.(xpc.String)
	return Request{method: string(method), body: d}
}

// Arg sets the argument at position i to v, converted with xpc.ValueOf. An
// error is kept for Call or Send to return.
func (r *Request) Arg(i int, v any) {
	if r.err != nil {
		return
	}
	obj, err := xpc.ValueOf(v)
	if err != nil {
		r.err = fmt.Errorf("typed: %s: argument %d: %w", r.method, i, err)
		return
	}
	r.body.Set(ArgKey(i), obj)
}

// LocalArg passes impl, a local implementation of an interface, as the
// argument at position i: it serves impl on a new anonymous listener
// through the handler newServer makes (the generated server constructor,
// such as NewWeatherServer), and sends the listener's endpoint, through
// which the other side calls back. The listener and its connections are
// cancelled when the call ends (Call returns), so impl is called back only
// while the call is in progress. A nil impl is sent as no argument, which
// the other side reads as nil.
func LocalArg[T any, H xpc.Handler](r *Request, i int, impl T, newServer func(T) H) {
	if r.err != nil || any(impl) == nil {
		return
	}
	l, err := xpc.NewListener()
	if err != nil {
		r.err = fmt.Errorf("typed: %s: argument %d: %w", r.method, i, err)
		return
	}
	r.locals = append(r.locals, l)
	ServeListener(l, newServer(impl))
	ep, err := l.Endpoint()
	if err != nil {
		r.err = fmt.Errorf("typed: %s: argument %d: %w", r.method, i, err)
		return
	}
	r.body.Set(ArgKey(i), ep)
}

// Call sends the request and waits for its reply, which it returns, or for
// the error that ends the call: the connection's (xpc.ErrInterrupted,
// xpc.ErrInvalid with its reason), ctx's, or the error the service's
// method returned, as a *xpc.RemoteError that errors.Is and errors.As
// match against the service's error (xpc.CodedError). It ends the request:
// local arguments stop being served.
func (r *Request) Call(ctx context.Context, c Conn) (Reply, error) {
	defer r.end()
	if r.err != nil {
		return Reply{}, r.err
	}
	d, err := c.SendWithReply(ctx, r.body)
	if err != nil {
		return Reply{}, err
	}
	return Reply{method: r.method, body: d}, nil
}

// Send sends the request of a one-way method, without waiting for
// anything, and ends the request.
func (r *Request) Send(ctx context.Context, c Conn) error {
	defer r.end()
	if r.err != nil {
		return r.err
	}
	if len(r.locals) > 0 {
		return fmt.Errorf("typed: %s: a one-way method cannot take a local object: %w", r.method, ErrBadArguments)
	}
	return c.Send(ctx, r.body)
}

// end stops serving the request's local arguments: their listeners, with
// every connection made through them, are cancelled, and the endpoints in
// the body are closed (a send sent duplicates).
func (r *Request) end() {
	if len(r.locals) == 0 {
		return
	}
	for _, l := range r.locals {
		l.Cancel()
		for _, p := range l.Peers() {
			p.Cancel()
		}
	}
	r.locals = nil
	for _, v := range r.body.All() {
		if ep, ok := v.(*xpc.Endpoint); ok {
			ep.Close()
		}
	}
}

// Reply is the reply to a two-way call.
type Reply struct {
	method string
	body   *xpc.Dictionary
}

// Body returns the reply's dictionary.
func (r Reply) Body() *xpc.Dictionary { return r.body }

// Result stores the result at position i in the value v points to
// (xpc.ObjectInto). A result the reply lacks (a service older than the
// interface) leaves v unchanged, its zero value; one that does not decode
// is an error matching ErrBadReply.
func (r Reply) Result(i int, v any) error {
	if r.body == nil {
		return nil
	}
	obj := r.body.Get(ResultKey(i))
	if obj == nil {
		return nil
	}
	if err := xpc.ObjectInto(obj, v); err != nil {
		return fmt.Errorf("typed: %s: result %d: %w: %w", r.method, i, ErrBadReply, err)
	}
	return nil
}
