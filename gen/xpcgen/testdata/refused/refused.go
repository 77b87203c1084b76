// Package refused is a golden test input: interfaces xpcgen refuses, each
// with the error it gives (refused.golden).
package refused

import (
	"context"
	"io"
)

type NoContext interface {
	M(key string) error
}

type ContextSecond interface {
	M(key string, ctx context.Context) error
}

type NotLastError interface {
	M(ctx context.Context) (error, int)
}

type NoError interface {
	M(ctx context.Context) int
}

type Variadic interface {
	M(ctx context.Context, keys ...string) error
}

type Channel interface {
	M(ctx context.Context, c chan int) error
}

type Func interface {
	M(ctx context.Context, f func()) error
}

type Complex interface {
	M(ctx context.Context) ([]complex128, error)
}

type OtherInterface interface {
	M(ctx context.Context, r io.Reader) error
}

type ErrorArgument interface {
	M(ctx context.Context, e error) error
}

type IntKeys interface {
	M(ctx context.Context, m map[int]string) error
}

type OneWayCallback interface {
	M(ctx context.Context, cb Callback)
}

type CallbackResult interface {
	M(ctx context.Context) (Callback, error)
}

type Callback interface {
	Call(ctx context.Context) error
}

type Generic[T any] interface {
	M(ctx context.Context, v T) error
}

type Empty interface{}

type NotAnInterface struct{}

type Taken interface {
	M(ctx context.Context) error
}

// NewTakenClient is a name the generated code for Taken would declare.
func NewTakenClient() {}

// Several has two bad methods: both are reported in one run.
type Several interface {
	A(v int) error
	B(ctx context.Context, c chan int) error
	C(ctx context.Context) error
}
