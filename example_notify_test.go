package xpc_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/goxpc/xpc"
)

// A program that watches a notification until interrupted, as notify(3)'s
// notify_register_dispatch does, and one that posts it with a state.
// (xpcctl notify watch and xpcctl notify post do the same.)
func ExampleNotifier_Register() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	n, err := xpc.NewNotifier(ctx)
	if err != nil {
		log.Fatal(err) // no xpcd answers
	}
	defer n.Close()
	_, err = n.Register(ctx, "com.example.config.changed", func(name string, state uint64) {
		// One call at a time; posts made meanwhile come as one later call.
		fmt.Println(name, "posted, state", state)
	})
	if err != nil {
		log.Fatal(err)
	}
	// If xpcd restarts, n reconnects and registers again by itself; each
	// handler is then called once, as for a post.
	<-ctx.Done()
}

func ExampleNotifier_PostState() {
	ctx := context.Background()
	n, err := xpc.NewNotifier(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	// In the system xpcd, a user may post only names "user.uid.UID.…" of
	// their own; other names take root or a grant (docs/XPCD.md,
	// "Notifications").
	if err := n.PostState(ctx, "com.example.config.changed", 2); err != nil {
		log.Fatal(err)
	}
}
