package typed

import (
	"context"
	"fmt"
	"time"

	"github.com/goxpc/xpc"
)

// Method is one method of a Service: its name on the wire, and the
// generated function that decodes its arguments from in, calls it on impl
// and stores its results in in.
type Method[T any] struct {
	Name string
	// OneWay records that the method has no results: its clients send
	// without wanting a reply. A request for it that wants one anyway
	// gets an empty reply once the method returns.
	OneWay bool
	Invoke func(ctx context.Context, impl T, in *Invocation) error
}

// Service is the method table of one interface, T. Generated code makes one
// per interface; it is never changed after NewService.
type Service[T any] struct {
	name    string
	methods map[string]*Method[T]
}

// NewService returns the service called name (the interface's name) with
// the given methods. It panics if two methods have one name: generated
// code never does that.
func NewService[T any](name string, methods ...Method[T]) *Service[T] {
	s := &Service[T]{name: name, methods: make(map[string]*Method[T], len(methods))}
	for i := range methods {
		m := &methods[i]
		if _, dup := s.methods[m.Name]; dup {
			panic("typed: NewService: method " + m.Name + " given twice")
		}
		s.methods[m.Name] = m
	}
	return s
}

// Name returns the service's name.
func (s *Service[T]) Name() string { return s.name }

// Server is an xpc.Handler that dispatches each request to a method of
// impl, by the method's name. One Server may serve any number of
// connections at once: it keeps no state of its own.
type Server[T any] struct {
	svc  *Service[T]
	impl T
	// callbackTimeout bounds each call a method makes through a callback
	// proxy (RemoteArg); set before the server serves.
	callbackTimeout time.Duration
}

// DefaultCallbackTimeout is how long a method's call through a callback
// proxy may take when the method's context gives it no earlier deadline.
const DefaultCallbackTimeout = 30 * time.Second

// SetCallbackTimeout sets how long each call a method makes through a
// callback proxy (an interface argument, RemoteArg) may take when the
// method's context has no earlier deadline: DefaultCallbackTimeout unless
// set. A client that never answers its callback would otherwise hold the
// method, its goroutine and the caller's connection for as long as the
// client's process lives (a method's context does not end while the
// method runs on the goroutine that would see the caller go). d <= 0
// restores the default. Call it before the server serves.
func (s *Server[T]) SetCallbackTimeout(d time.Duration) {
	s.callbackTimeout = d
}

// NewServer returns a handler that serves impl with svc's methods.
func NewServer[T any](svc *Service[T], impl T) *Server[T] {
	return &Server[T]{svc: svc, impl: impl}
}

// HandleMessage dispatches one request: it calls the method the request
// names with the request's arguments and, if the request wants a reply,
// replies with the method's results, or with its error (xpc.ErrorObjectOf).
// A request that names no method, or a method the service does not have, or
// whose arguments do not decode, gets an error matching ErrBadArguments or
// ErrUnimplemented, and the method is not called.
func (s *Server[T]) HandleMessage(ctx context.Context, m *xpc.Message) {
	reply, err := s.Dispatch(ctx, m, m.Body)
	if !m.WantsReply() {
		return
	}
	if err != nil {
		m.ReplyError(ctx, xpc.ErrorObjectOf(err))
		return
	}
	m.Reply(ctx, reply)
}

// HandleEvent does nothing: a connection's events concern its owner, not
// the methods.
func (s *Server[T]) HandleEvent(error) {}

// Dispatch is HandleMessage without the reply: it calls the method body
// names and returns the reply's body or the error. m is the message body
// came in (what PeerFromContext reports inside the method); it may be nil
// in tests. Descriptors in body that the method's arguments do not take
// are closed before Dispatch returns.
func (s *Server[T]) Dispatch(ctx context.Context, m *xpc.Message, body *xpc.Dictionary) (*xpc.Dictionary, error) {
	in := &Invocation{msg: m, body: body, callbackTimeout: s.callbackTimeout}
	defer in.end()
	if body == nil {
		return nil, fmt.Errorf("typed: %s: no request: %w", s.svc.name, ErrBadArguments)
	}
	name, err := body.String(MethodKey)
	if err != nil {
		return nil, fmt.Errorf("typed: %s: request names no method: %w: %w", s.svc.name, ErrBadArguments, err)
	}
	meth := s.svc.methods[name]
	if meth == nil {
		return nil, fmt.Errorf("typed: %s: method %q: %w", s.svc.name, name, ErrUnimplemented)
	}
	in.method = meth.Name
	// The method's context carries the message; it lives in the
	// invocation, which costs no allocation of its own.
	in.ctx = callContext{Context: ctx, msg: m}
	if err := meth.Invoke(&in.ctx, s.impl, in); err != nil {
		return nil, err
	}
	if in.reply == nil {
		in.reply = xpc.NewDictionary(0)
	}
	return in.reply, nil
}
