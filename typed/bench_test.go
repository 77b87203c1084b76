package typed_test

import (
	"context"
	"testing"

	"github.com/goxpc/xpc"
	v1 "github.com/goxpc/xpc/typed/internal/weatherv1"
)

// The cost of a generated call against the hand-built call it replaces
// (ValueOf, SendWithReply, ObjectInto) on the same request, both served in
// this process over an endpoint connection.

func BenchmarkGeneratedCall(b *testing.B) {
	c := serveInProcess(b, v1.NewWeatherServer(&weather1{}))
	w := v1.NewWeatherClient(c)
	ctx := context.Background()
	req := v1.Request{City: "Paris", Days: 3}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Forecast(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandBuiltCall(b *testing.B) {
	var impl weather1
	c := serveInProcess(b, xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
		var r v1.Request
		if err := xpc.ObjectInto(m.Body, &r); err != nil {
			m.ReplyError(ctx, xpc.ErrorObjectOf(err))
			return
		}
		f, err := impl.Forecast(ctx, r)
		if err != nil {
			m.ReplyError(ctx, xpc.ErrorObjectOf(err))
			return
		}
		obj, _ := xpc.ValueOf(f)
		m.Reply(ctx, obj.(*xpc.Dictionary))
	}))
	ctx := context.Background()
	req := v1.Request{City: "Paris", Days: 3}
	b.ReportAllocs()
	for b.Loop() {
		obj, err := xpc.ValueOf(req)
		if err != nil {
			b.Fatal(err)
		}
		reply, err := c.SendWithReply(ctx, obj.(*xpc.Dictionary))
		if err != nil {
			b.Fatal(err)
		}
		var f v1.Forecast
		if err := xpc.ObjectInto(reply, &f); err != nil {
			b.Fatal(err)
		}
	}
}
