// Package basic is a golden test input: every shape of method xpcgen
// accepts.
package basic

import "context"

// Store is a key-value store.
type Store interface {
	// Get is two-way with one result.
	Get(ctx context.Context, key string) (Value, error)
	// Put is two-way with only an error.
	Put(ctx context.Context, key string, v Value) error
	// Touch is one-way.
	Touch(ctx context.Context, key string)
	// Stats has several results and no arguments.
	Stats(ctx context.Context) (int, map[string]int, error)
	// Scan calls back.
	Scan(ctx context.Context, prefix string, visit Visitor) (int, error)
	// Ping has nothing but a context.
	Ping(ctx context.Context) error
}

// Visitor is called back for each key.
type Visitor interface {
	Visit(ctx context.Context, key string, v *Value) error
	Done(ctx context.Context)
}

// Value is a stored value.
type Value struct {
	Data []byte `xpc:"data"`
	Tags []string
}
