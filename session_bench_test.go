package xpc

import (
	"context"
	"testing"
)

// BenchmarkSessionRoundTrip: BenchmarkRoundTrip through a Session, to an
// accepted session of a listener: what a session adds to a call.
func BenchmarkSessionRoundTrip(b *testing.B) {
	l, err := NewListener()
	if err != nil {
		b.Fatal(err)
	}
	l.SetSessionHandler(func(r *SessionRequest) {
		r.Accept(HandlerFunc(func(ctx context.Context, m *Message) { _ = m.Reply(ctx, m.Body) }))
	})
	l.Activate()
	ep, err := l.Endpoint()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, err := NewEndpointSession(ctx, ep, nil)
	ep.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		s.Cancel()
		<-s.Done()
		l.Cancel()
		<-l.Done()
		for _, p := range l.Peers() {
			p.Cancel()
			<-p.Done()
		}
	})
	msg := Dict("op", "ping", "seq", Int64(1))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.SendWithReply(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
}
