// Package firstuse is a test input: its code uses the names xpcgen is about
// to generate, before the generated file exists.
package firstuse

import "context"

type Counter interface {
	Add(ctx context.Context, n int) (int, error)
}

// Serve uses the generated server and client before they exist.
func Serve(impl Counter) any { return NewCounterServer(impl) }

var _ = NewCounterClient
