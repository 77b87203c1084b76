// Package store holds the interface the typedcall benchmarks call, and the
// client and server xpcgen generated from it (store_xpc.go).
package store

import "context"

//go:generate go -C ../../../gen/xpcgen run . -dir $PWD -type Store

// Store is the benchmark's interface: one two-way method.
type Store interface {
	// Get returns what the store holds under r.Key.
	Get(ctx context.Context, r Request) (Reply, error)
}

// Request is Get's argument.
type Request struct {
	Key    string `xpc:"key"`
	Offset int64  `xpc:"offset"`
	Limit  int64  `xpc:"limit"`
}

// Reply is Get's result.
type Reply struct {
	Key   string `xpc:"key"`
	Size  int64  `xpc:"size"`
	Found bool   `xpc:"found"`
}
