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

// Request is one call being built by a generated client: NewRequest, then
// Call or Send, which end it.
type Request struct {
	method string
	body   *xpc.Dictionary
	err    error
	locals []*xpc.Listener
}

// NewRequest starts a request for the method called name with the given
// arguments, each converted with xpc.ValueOf, except a LocalObject, which
// is served in place (Local). name is given as an xpc.Object
// (xpc.String("Forecast")) so that a constant name costs the call nothing.
// An argument that does not convert is an error Call or Send returns.
func NewRequest(name xpc.Object, args ...any) Request {
	d := xpc.NewDictionary(len(args) + 1)
	d.Set(MethodKey, name)
	method, _ := name.(xpc.String)
	r := Request{method: string(method), body: d}
	for i, v := range args {
		r.arg(i, v)
	}
	return r
}

// arg sets the argument at position i to v.
func (r *Request) arg(i int, v any) {
	if r.err != nil {
		return
	}
	if l, ok := v.(LocalObject); ok {
		r.local(i, l)
		return
	}
	obj, err := xpc.ValueOf(v)
	if err != nil {
		r.err = fmt.Errorf("typed: %s: argument %d: %w", r.method, i, err)
		return
	}
	r.body.Set(ArgKey(i), obj)
}

// LocalObject is a local implementation of an interface passed as an
// argument: Local makes one.
type LocalObject struct {
	handler func() xpc.Handler
}

// Local makes impl, a local implementation of an interface, an argument
// of a request: the request serves it on a new anonymous listener through
// the handler newServer makes (the generated server constructor, such as
// NewWeatherServer), and sends the listener's endpoint, through which the
// other side calls back. The listener and its connections are cancelled
// when the call ends (Call returns), so impl is called back only while the
// call is in progress. A nil impl is sent as no argument, which the other
// side reads as nil.
func Local[T any, H xpc.Handler](impl T, newServer func(T) H) LocalObject {
	if any(impl) == nil {
		return LocalObject{}
	}
	return LocalObject{handler: func() xpc.Handler { return newServer(impl) }}
}

// local serves l and sets the argument at position i to its endpoint.
func (r *Request) local(i int, l LocalObject) {
	if l.handler == nil {
		return
	}
	ln, err := xpc.NewListener()
	if err != nil {
		r.err = fmt.Errorf("typed: %s: argument %d: %w", r.method, i, err)
		return
	}
	r.locals = append(r.locals, ln)
	ServeListener(ln, l.handler())
	ep, err := ln.Endpoint()
	if err != nil {
		r.err = fmt.Errorf("typed: %s: argument %d: %w", r.method, i, err)
		return
	}
	r.body.Set(ArgKey(i), ep)
}

// Call sends the request, waits for its reply and stores the reply's
// results in the values results point to, by position (xpc.ObjectInto). It
// returns the error that ends the call: the connection's
// (xpc.ErrInterrupted, xpc.ErrInvalid with its reason), ctx's, the error
// the service's method returned, as a *xpc.RemoteError that errors.Is and
// errors.As match against the service's error (xpc.CodedError), or
// ErrBadReply for a result that does not decode. A result the reply lacks
// (a service older than the interface) is left unchanged: its zero value.
// Call ends the request: local arguments stop being served.
func (r *Request) Call(ctx context.Context, c Conn, results ...any) error {
	defer r.end()
	if r.err != nil {
		return r.err
	}
	d, err := c.SendWithReply(ctx, r.body)
	if err != nil {
		return err
	}
	defer closeUnplaced(d, len(results))
	for i, v := range results {
		obj := d.Get(ResultKey(i))
		if obj == nil {
			continue
		}
		if err := xpc.ObjectInto(obj, v); err != nil {
			return fmt.Errorf("typed: %s: result %d: %w: %w", r.method, i, ErrBadReply, err)
		}
	}
	return nil
}

// closeUnplaced closes the descriptors of the reply d under keys that are
// not among the n results the caller decodes (a newer service's extra
// results, or a hostile one's): nobody else would.
func closeUnplaced(d *xpc.Dictionary, n int) {
	for k, v := range d.All() {
		placed := false
		for i := range n {
			if k == ResultKey(i) {
				placed = true
				break
			}
		}
		if !placed {
			_ = xpc.CloseAttachments(v)
		}
	}
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
// the body are closed (the connection sent duplicates of them).
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
