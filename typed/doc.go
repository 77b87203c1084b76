// Package typed is the runtime of typed XPC services: a Go interface is the
// contract, the xpcgen command (module github.com/goxpc/xpc/gen/xpcgen)
// writes a client that implements it over a connection and a server that
// dispatches a connection's requests to an implementation, and the code it
// writes calls this package, which does the work. docs/TYPED.md is the
// user guide.
//
// # Interfaces
//
// Every method takes a context.Context first. A method with no results at
// all is one-way: the client sends the request and returns at once, the
// server never replies, and failures are not reported. A method whose last
// result is error is two-way: the client waits for the reply, and exactly
// one of its results or an error reaches the caller. Any other shape is
// refused by the generator, naming the method and the position.
//
// Parameters and results are converted by the rules of xpc.ValueOf and
// xpc.ObjectInto (structs tagged `xpc:"name"`, and so on; see the xpc
// package's "Go values"). A parameter whose type is another interface given
// to the generator is passed as an endpoint (see "Callbacks").
//
// # Wire form
//
// A request is a dictionary holding the method's name under MethodKey
// ("method") and each argument after the context under ArgKey(i) ("arg0",
// "arg1", ...). The reply to a two-way method is a dictionary holding each
// result before the error under ResultKey(i) ("result0", ...); or, if the
// method returned an error, an error object made by xpc.ErrorObjectOf, so
// that on the client errors.Is and errors.As match the *xpc.RemoteError
// against errors that implement xpc.CodedError (a domain and a code).
// Errors without a domain arrive as a *xpc.RemoteError holding their text.
//
// A request that names no method, or whose arguments do not decode, gets an
// error matching ErrBadArguments; a method the service does not have,
// ErrUnimplemented; the method is not called. These are *xpc.DomainError
// sentinels, so errors.Is holds on the client too.
//
// # Connections
//
// The client works over any Conn (an *xpc.Connection, a session). Its
// calls fail with the connection's error when the connection goes
// (xpc.ErrInterrupted, xpc.ErrInvalid with its reason), or with ctx's; they
// never hang past ctx. A Server is an xpc.Handler: set it on each peer
// connection (ServeListener does so for a listener). Requests on one
// connection are served one at a time, in order; a one-way request is
// served before the requests sent after it.
//
// Inside a method, PeerFromContext and ConnectionFromContext give the
// caller's identity and connection (NSXPCConnection's currentConnection).
//
// # Callbacks
//
// An argument whose type is an interface given to the generator crosses as
// an endpoint: the client serves the local object on a new anonymous
// listener (Local) and sends the listener's endpoint; the server calls
// back through a generated client over a connection to that endpoint
// (RemoteArg). The callback works while the call is in progress: when the
// server's method returns, its connection is cancelled, and when the
// client's call returns, the listener and every connection made through it
// are cancelled, so nothing outlives the call. The one-way calls the
// method made through a callback before it returned have all run, in
// order, when the client's call returns: the server waits for them before
// it replies. For this reason only
// two-way methods take interface arguments. A nil local object crosses as
// a missing argument and arrives as nil. Each call the method makes
// through a callback ends after DefaultCallbackTimeout (or what
// Server.SetCallbackTimeout sets) when its context has no earlier
// deadline, so that a client whose callback never answers cannot hold the
// method.
//
// # Descriptors
//
// Descriptors in an argument (*xpc.FD, *xpc.SharedMemory) that decodes
// belong to the method, which must close them. Every other descriptor in a
// request (under keys no argument takes, in an argument that did not
// decode, or in a request for an unknown method) is closed by the server
// once the method returns.
//
// # Versioning
//
// Old peers ignore fields they do not know; a missing field or argument is
// its zero value; a missing result is its zero value; a new method is
// ErrUnimplemented on an old service. So: never change a method's
// parameters or results, and never change a field's meaning; add a method,
// or a field whose zero value means what old peers meant.
package typed
