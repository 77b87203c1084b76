package xpc

import (
	"context"
	"testing"
)

// In-process benchmarks of the message path: a listener and a client in one
// process, over a socket pair. They use only the exported API.

// benchPair returns an activated client connected to a listener whose
// peers answer every request with its body.
func benchPair(b *testing.B) *Connection {
	b.Helper()
	l, err := NewListener()
	if err != nil {
		b.Fatal(err)
	}
	l.SetHandler(func(p *Connection) {
		p.SetHandler(HandlerFunc(func(ctx context.Context, m *Message) {
			if m.WantsReply() {
				_ = m.Reply(ctx, m.Body)
			}
		}))
		p.Activate()
	})
	l.Activate()
	ep, err := l.Endpoint()
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewEndpointConnection(ep)
	ep.Close()
	if err != nil {
		b.Fatal(err)
	}
	c.SetHandler(HandlerFunc(func(context.Context, *Message) {}))
	c.Activate()
	b.Cleanup(func() {
		c.Cancel()
		<-c.Done()
		l.Cancel()
		<-l.Done()
		for _, p := range l.Peers() {
			p.Cancel()
			<-p.Done()
		}
	})
	return c
}

// BenchmarkRoundTrip: one caller, SendWithReply of a small dictionary.
func BenchmarkRoundTrip(b *testing.B) {
	c := benchPair(b)
	ctx := context.Background()
	msg := Dict("op", "ping", "seq", Int64(1))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r, err := c.SendWithReply(ctx, msg)
		if err != nil {
			b.Fatal(err)
		}
		_ = r
	}
}

// BenchmarkRoundTripParallel: GOMAXPROCS*4 callers on one connection.
func BenchmarkRoundTripParallel(b *testing.B) {
	c := benchPair(b)
	ctx := context.Background()
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		msg := Dict("op", "ping", "seq", Int64(1))
		for pb.Next() {
			if _, err := c.SendWithReply(ctx, msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPing: one-way sends, the peer's handler doing nothing.
func BenchmarkPing(b *testing.B) {
	c := benchPair(b)
	ctx := context.Background()
	msg := Dict("op", "ping", "seq", Int64(1))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := c.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
}
