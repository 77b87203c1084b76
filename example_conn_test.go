package xpc_test

import (
	"context"
	"fmt"

	"github.com/goxpc/xpc"
)

// A listener hands out endpoints; whoever holds one can connect. Here both
// ends live in one process; examples/endpoint-echo does the same across two.
func ExampleNewListener() {
	ctx := context.Background()
	l, err := xpc.NewListener()
	if err != nil {
		panic(err)
	}
	defer l.Cancel()
	l.SetHandler(func(peer *xpc.Connection) {
		peer.SetHandler(xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
			text, _ := m.Body.String("text")
			m.Reply(ctx, xpc.Dict("echo", text))
		}))
		peer.Activate()
	})
	l.Activate()

	ep, err := l.Endpoint()
	if err != nil {
		panic(err)
	}
	defer ep.Close()
	c, err := xpc.NewEndpointConnection(ep)
	if err != nil {
		panic(err)
	}
	c.Activate()
	defer c.Cancel()

	reply, err := c.SendWithReply(ctx, xpc.Dict("text", "hi"))
	if err != nil {
		panic(err)
	}
	echo, _ := reply.String("echo")
	fmt.Println(echo)
	// Output: hi
}

func ExampleDict() {
	msg := xpc.Dict("op", "resize", "width", 640, "tags", []string{"a", "b"})
	w, _ := msg.Int64("width")
	op, _ := msg.Get("op").(xpc.String)
	fmt.Println(op, w)
	fmt.Println(xpc.Format(msg))
	// Output:
	// resize 640
	// <dictionary> { count = 3, contents =
	// 	"op" => <string: "resize">
	// 	"width" => <int64: 640>
	// 	"tags" => <array> { count = 2, contents =
	// 		0: <string: "a">
	// 		1: <string: "b">
	// 	}
	// }
}
