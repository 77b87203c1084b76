package typedcall

import (
	"context"
	"testing"
	"time"

	"github.com/goxpc/xpc"
)

// TestCasesAgree checks that the three cases do the same work: each gets
// the same reply, and sends the same request (what a generated server
// decodes is what the hand-built client sends, and the reverse).
func TestCasesAgree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := answer(TheRequest)
	for _, server := range Cases() {
		for _, client := range Cases() {
			p, err := Listen(Case{Serve: server.Serve})
			if err != nil {
				t.Fatal(err)
			}
			got, err := client.Bind(p.Conn)(ctx)
			p.Close()
			if err != nil || got != want {
				t.Errorf("%s client, %s server: %+v, %v; want %+v", client.Name, server.Name, got, err, want)
			}
		}
	}
	var bodies []*xpc.Dictionary
	for _, c := range Cases() {
		p, err := Listen(Case{Serve: func() xpc.Handler {
			return xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
				bodies = append(bodies, m.Body)
				m.Reply(ctx, xpc.Dict("result0", xpc.Dict("key", want.Key, "size", want.Size, "found", want.Found)))
			})
		}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Bind(p.Conn)(ctx); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
		p.Close()
	}
	for i := 1; i < len(bodies); i++ {
		if !xpc.Equal(bodies[0], bodies[i]) {
			t.Errorf("request %d differs: %s against %s", i, xpc.Format(bodies[i]), xpc.Format(bodies[0]))
		}
	}
}

func BenchmarkGenerated(b *testing.B) { Bench(Cases()[0])(b) }
func BenchmarkHandBuilt(b *testing.B) { Bench(Cases()[1])(b) }
func BenchmarkValues(b *testing.B)    { Bench(Cases()[2])(b) }
