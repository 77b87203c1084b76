// Command endpoint-echo shows an XPC connection between two processes: the
// parent makes an anonymous listener and starts a copy of itself with the
// listener's endpoint on descriptor 3; the child connects through it, sends
// a few requests and a shared-memory buffer, and prints the replies. Each
// side prints the other's identity as the kernel reports it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"time"

	"github.com/goxpc/xpc"
)

const childEnv = "ENDPOINT_ECHO_CHILD"

func main() {
	log.SetFlags(0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if os.Getenv(childEnv) == "1" {
		err = child(ctx)
	} else {
		err = parent(ctx)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func parent(ctx context.Context) error {
	l, err := xpc.NewListener()
	if err != nil {
		return err
	}
	defer l.Cancel()
	count := 0
	l.SetHandler(func(peer *xpc.Connection) {
		p := peer.Peer()
		fmt.Printf("server: accepted a connection from %v\n", p)
		peer.SetHandler(xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
			count++
			reply := xpc.Dict("count", count, "server_pid", os.Getpid())
			for k, v := range m.Body.All() {
				if shm, ok := v.(*xpc.SharedMemory); ok {
					b, err := shm.Bytes()
					if err == nil {
						reply.Set("shmem_sum", xpc.Int64(sum(b)))
						reply.Set("shmem_sealed", xpc.Bool(shm.Sealed()))
					}
					shm.Close()
					continue
				}
				reply.Set(k, v)
			}
			if err := m.Reply(ctx, reply); err != nil {
				fmt.Println("server: reply:", err)
			}
		}))
		peer.Activate()
	})
	l.Activate()

	ep, err := l.Endpoint()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.ExtraFiles = []*os.File{ep.File()}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Run()
	ep.Close()
	return err
}

func child(ctx context.Context) error {
	ep := xpc.NewEndpoint(os.NewFile(3, "endpoint"))
	defer ep.Close()
	c, err := xpc.NewEndpointConnection(ep)
	if err != nil {
		return err
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()

	for i, word := range []string{"hello", "world"} {
		reply, err := c.SendWithReply(ctx, xpc.Dict("word", word, "seq", i))
		if err != nil {
			return err
		}
		fmt.Printf("client: reply %d:\n%s\n", i, xpc.Format(reply))
	}
	fmt.Printf("client: connected to %v\n", c.Peer())

	shm, err := xpc.NewSharedMemory("demo", 1<<20)
	if err != nil {
		return err
	}
	defer shm.Close()
	if _, err := shm.File().WriteAt(make([]byte, 1<<20), 0); err != nil {
		return err
	}
	if _, err := shm.File().WriteAt([]byte{1, 2, 3}, 0); err != nil {
		return err
	}
	if err := shm.Seal(); err != nil {
		return err
	}
	reply, err := c.SendWithReply(ctx, xpc.Dict("buffer", shm))
	if err != nil {
		return err
	}
	s, _ := reply.Int64("shmem_sum")
	sealed, _ := reply.Bool("shmem_sealed")
	fmt.Printf("client: server summed a 1 MiB shared buffer to %d (sealed: %v)\n", s, sealed)

	bad := xpc.NewDictionary(1)
	bad.Set("word", xpc.String("bad\x00string"))
	_, err = c.SendWithReply(ctx, bad)
	var ee *xpc.EncodeError
	if !errors.As(err, &ee) {
		return fmt.Errorf("expected an encode error, got %v", err)
	}
	fmt.Printf("client: a bad message is refused before it is sent: %v\n", err)
	return nil
}

func sum(b []byte) int64 {
	var s int64
	for _, c := range b {
		s += int64(c)
	}
	return s
}
