package xpc_test

import (
	"errors"
	"fmt"

	"github.com/goxpc/xpc"
)

// ErrNoSuchCity is a sentinel that keeps its identity across a connection.
var ErrNoSuchCity = &xpc.DomainError{Domain: "org.example.weather", Code: 1, Description: "no such city"}

// QuotaError is a coded error with fields, which cross as the error's info.
type QuotaError struct {
	Limit int `xpc:"limit"`
}

func (e *QuotaError) Error() string       { return fmt.Sprintf("over quota (%d)", e.Limit) }
func (e *QuotaError) ErrorDomain() string { return "org.example.weather" }
func (e *QuotaError) ErrorCode() int      { return 2 }

// A service replies with ErrorObjectOf(err); the caller's errors.Is and
// errors.As see the service's error. Here the error object goes straight
// to a RemoteError, as SendWithReply and Invoke would return it.
func ExampleErrorObjectOf() {
	for _, served := range []error{
		fmt.Errorf("forecast for Atlantis: %w", ErrNoSuchCity),
		&QuotaError{Limit: 100},
	} {
		var err error = &xpc.RemoteError{Object: xpc.ErrorObjectOf(served)}
		var qe *QuotaError
		switch {
		case errors.Is(err, ErrNoSuchCity):
			fmt.Println("no such city:", err)
		case errors.As(err, &qe):
			fmt.Println("quota:", qe.Limit)
		}
	}
	// Output:
	// no such city: xpc: peer replied with error: forecast for Atlantis: no such city (org.example.weather code 1)
	// quota: 100
}
