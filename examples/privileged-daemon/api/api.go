// Package api is the contract of the privileged daemon
// (org.goxpc.example.privileged): the Go interface Privileged, the values
// it passes, and its coded error. The client and the server in
// privileged_xpc.go are generated from it by xpcgen (docs/TYPED.md); the
// daemon (examples/privileged-daemon) serves it and the client beside it
// (examples/privileged-daemon/client) calls it.
package api

import (
	"context"
	"fmt"

	"github.com/goxpc/xpc"
)

//go:generate go -C ../../../gen/xpcgen run . -dir $PWD -type Privileged

// Name is the daemon's service name.
const Name = "org.goxpc.example.privileged"

// Domain is the error domain of the daemon's coded errors.
const Domain = "org.goxpc.example.privileged"

// CodeDenied is DeniedError's code in Domain.
const CodeDenied = 1

// ErrDenied matches, by errors.Is, any error of Domain and CodeDenied: a
// *DeniedError, on either side of the connection.
var ErrDenied = &xpc.DomainError{Domain: Domain, Code: CodeDenied, Description: "denied"}

// Privileged is what the daemon offers any user.
type Privileged interface {
	// WhoAmI returns the caller as the kernel attested it to the daemon
	// (never as the request says), and the daemon's own euid and pid.
	WhoAmI(ctx context.Context) (Identity, error)
	// Shutdown stops the daemon. Only root may: anyone else gets a
	// *DeniedError.
	Shutdown(ctx context.Context) (Status, error)
}

// Identity is WhoAmI's result.
type Identity struct {
	UID        int64  `xpc:"uid"`
	GID        int64  `xpc:"gid"`
	PID        int64  `xpc:"pid"`
	Exe        string `xpc:"exe"`
	DaemonEUID int64  `xpc:"daemon_euid"`
	DaemonPID  int64  `xpc:"daemon_pid"`
}

// Status is Shutdown's result.
type Status struct {
	Status string `xpc:"status"`
}

// DeniedError refuses an operation to a caller who may not perform it. It
// crosses the connection with its domain, code and fields: the client's
// errors.As restores it, and errors.Is matches it against ErrDenied.
type DeniedError struct {
	Op  string `xpc:"op"`
	UID int64  `xpc:"uid"`
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("%s: only root may stop %s (caller uid %d)", e.Op, Name, e.UID)
}

// ErrorDomain returns Domain.
func (e *DeniedError) ErrorDomain() string { return Domain }

// ErrorCode returns CodeDenied.
func (e *DeniedError) ErrorCode() int { return CodeDenied }
