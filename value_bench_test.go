package xpc

import (
	"context"
	"testing"
)

// The cost of typed messages: Invoke against SendWithReply of a hand-built
// dictionary and against SendWithReply plus ValueOf plus ObjectInto, on the
// same small request, over a socket pair to a service that echoes it.

type benchValue struct {
	City string `xpc:"city"`
	Days int    `xpc:"days"`
	Hot  bool   `xpc:"hot"`
}

func benchEcho(ctx context.Context, m *Message) { _ = m.Reply(ctx, m.Body) }

func BenchmarkInvoke(b *testing.B) {
	c := valuePair(b, benchEcho, nil, nil)
	ctx := context.Background()
	req := benchValue{City: "Oslo", Days: 3, Hot: true}
	b.Run("Invoke", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var r benchValue
			if err := c.Invoke(ctx, req, &r); err != nil || r.Days != 3 {
				b.Fatal(err)
			}
		}
	})
	b.Run("SendWithReply", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			r, err := c.SendWithReply(ctx, Dict("city", "Oslo", "days", Int64(3), "hot", true))
			if err != nil {
				b.Fatal(err)
			}
			if n, _ := r.Int64("days"); n != 3 {
				b.Fatal(r)
			}
		}
	})
	b.Run("SendWithReply+ValueOf+ObjectInto", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			obj, err := ValueOf(req)
			if err != nil {
				b.Fatal(err)
			}
			reply, err := c.SendWithReply(ctx, obj.(*Dictionary))
			if err != nil {
				b.Fatal(err)
			}
			var r benchValue
			if err := ObjectInto(reply, &r); err != nil || r.Days != 3 {
				b.Fatal(err)
			}
		}
	})
}
