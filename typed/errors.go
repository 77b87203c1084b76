package typed

import "github.com/goxpc/xpc"

// Domain is the error domain of the errors this package sends and returns.
const Domain = "org.goxpc.typed"

// The errors of a typed call. They are *xpc.DomainError sentinels, so they
// keep their identity across a connection: errors.Is(err, ErrUnimplemented)
// holds on the client for the error the service's dispatcher replied with.
var (
	// ErrUnimplemented: the service has no method of the name called (an
	// older service, or another interface altogether).
	ErrUnimplemented = &xpc.DomainError{Domain: Domain, Code: 1, Description: "unimplemented"}
	// ErrBadArguments: the request did not name a method, or an argument
	// did not decode into the method's parameter type.
	ErrBadArguments = &xpc.DomainError{Domain: Domain, Code: 2, Description: "bad arguments"}
	// ErrBadReply: a result in the reply did not decode into the method's
	// result type. It is returned by the client; it never crosses.
	ErrBadReply = &xpc.DomainError{Domain: Domain, Code: 3, Description: "bad reply"}
	// ErrBadResult: the service could not encode a result (xpc.ValueOf
	// failed on it); the client receives it.
	ErrBadResult = &xpc.DomainError{Domain: Domain, Code: 4, Description: "bad result"}
)
