// Package feed is a test interface of package typed whose callback has a
// one-way method: the one-way calls a method makes through its callback
// must all have run when the client's call returns.
package feed

import "context"

//go:generate go -C ../../../gen/xpcgen run . -dir $PWD -type Feeder,Sink

// Feeder feeds a sink.
type Feeder interface {
	// Feed puts 0, 1, ..., n-1 into s, one-way, then returns n.
	Feed(ctx context.Context, n int, s Sink) (int, error)
}

// Sink receives what a Feeder puts.
type Sink interface {
	// Put receives i; one-way.
	Put(ctx context.Context, i int)
}
