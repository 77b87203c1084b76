package xpctest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/xpctest"
)

// The package documentation's examples, run.

type greetRequest struct {
	Name string `xpc:"name"`
}

type greeting struct {
	Text string `xpc:"text"`
}

// greet answers {"name": N} with {"text": "hello, N"}.
func greet(ctx context.Context, m *xpc.Message) {
	var req greetRequest
	if err := m.Decode(&req); err != nil {
		m.ReplyError(ctx, xpc.ErrorObjectOf(err))
		return
	}
	m.ReplyValue(ctx, greeting{Text: "hello, " + req.Name})
}

// A handler served under a name by a private xpcd, inside this process,
// and called through xpcd as any client would.
func Example() {
	srv, err := xpctest.Start(xpctest.WithHandler("org.example.greeter", xpc.HandlerFunc(greet)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	conn, err := xpc.NewServiceConnection("org.example.greeter", xpc.WithBootstrapSocket(srv.Socket))
	if err != nil {
		fmt.Println(err)
		return
	}
	conn.Activate()
	defer conn.Cancel()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var g greeting
	if err := conn.Invoke(ctx, greetRequest{Name: "world"}, &g); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(g.Text)
	// Output: hello, world
}

// TestGreet is the package documentation's test of a handler with a
// Recorder.
func TestGreet(t *testing.T) {
	m, rec := xpctest.NewMessage(t, greetRequest{Name: "world"})
	xpctest.Handle(context.Background(), xpc.HandlerFunc(greet), m)
	var g greeting
	if err := rec.Decode(&g); err != nil {
		t.Fatal(err)
	}
	if g.Text != "hello, world" {
		t.Errorf("got %q", g.Text)
	}
}

// TestGreetServed is the package documentation's test of a handler
// served under a name.
func TestGreetServed(t *testing.T) {
	srv := xpctest.NewServer(t)
	srv.Serve(t, "org.example.greeter", xpc.HandlerFunc(greet))
	conn := srv.Connect(t, "org.example.greeter")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var g greeting
	if err := conn.Invoke(ctx, greetRequest{Name: "world"}, &g); err != nil {
		t.Fatal(err)
	}
	if g.Text != "hello, world" {
		t.Errorf("got %q", g.Text)
	}
}
