package ipc

import (
	"context"
	"fmt"
	"os"

	"github.com/goxpc/xpc"
)

// serveGoxpc starts an anonymous listener whose peers answer pings and bulk
// requests; the endpoint returned goes to the runner.
func serveGoxpc() (*xpc.Listener, *xpc.Endpoint, error) {
	l, err := xpc.NewListener()
	if err != nil {
		return nil, nil, err
	}
	l.SetHandler(func(peer *xpc.Connection) {
		peer.SetHandler(xpc.HandlerFunc(handleGoxpc))
		peer.Activate()
	})
	l.Activate()
	ep, err := l.Endpoint()
	if err != nil {
		l.Cancel()
		return nil, nil, err
	}
	return l, ep, nil
}

// handleGoxpc answers one message: a shared-memory buffer ("shm") or a
// data buffer ("data", echoed back if "echo" is true) with its checksum,
// anything else as a ping.
func handleGoxpc(ctx context.Context, m *xpc.Message) {
	b := m.Body
	if shm, ok := b.Get("shm").(*xpc.SharedMemory); ok {
		mem, err := shm.Bytes()
		if err != nil {
			shm.Close()
			m.ReplyError(ctx, xpc.NewErrorObject(err.Error()))
			return
		}
		r := xpc.NewDictionary(1)
		r.Set("sum", xpc.Uint64(checksum(mem)))
		shm.Close()
		m.Reply(ctx, r)
		return
	}
	if d, ok := b.Get("data").(xpc.Data); ok {
		r := xpc.NewDictionary(2)
		r.Set("sum", xpc.Uint64(checksum(d)))
		if echo, _ := b.Bool("echo"); echo {
			r.Set("data", d)
		}
		m.Reply(ctx, r)
		return
	}
	seq, err := b.Int64("seq")
	if err != nil {
		m.ReplyError(ctx, xpc.NewErrorObject(err.Error()))
		return
	}
	r := xpc.NewDictionary(3)
	r.Set("method", xpc.String(pongMethod))
	r.Set("seq", xpc.Int64(seq))
	r.Set("payload", b.Get("payload"))
	m.Reply(ctx, r)
}

// goxpcCaller is a client connection through the server's endpoint.
type goxpcCaller struct {
	c *xpc.Connection
}

func dialGoxpc(ep *xpc.Endpoint) (*goxpcCaller, error) {
	c, err := xpc.NewEndpointConnection(ep)
	if err != nil {
		return nil, err
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	return &goxpcCaller{c: c}, nil
}

// pingDict builds the request the way a user would, a new dictionary per
// call.
func pingDict(seq int64) *xpc.Dictionary {
	msg := xpc.NewDictionary(3)
	msg.Set("method", xpc.String(pingMethod))
	msg.Set("seq", xpc.Int64(seq))
	msg.Set("payload", xpc.String(payload))
	return msg
}

func (g *goxpcCaller) call(ctx context.Context, seq int64) error {
	r, err := g.c.SendWithReply(ctx, pingDict(seq))
	if err != nil {
		return err
	}
	got, err := r.Int64("seq")
	if err != nil {
		return err
	}
	if got != seq {
		return fmt.Errorf("goxpc: reply to %d carries seq %d", seq, got)
	}
	return nil
}

func (g *goxpcCaller) close() error {
	g.c.Cancel()
	<-g.c.Done()
	return nil
}

// bulkShm sends the buffer in a shared-memory region the client keeps,
// mapped once and refilled from src for every call; the server maps what it
// receives, reads every byte and replies with the checksum.
type bulkShm struct {
	g   *goxpcCaller
	shm *xpc.SharedMemory
	mem []byte
	src []byte
	sum uint64
}

func newBulkShm(g *goxpcCaller, src []byte, sum uint64) (*bulkShm, error) {
	shm, err := xpc.NewSharedMemory("ipcbench", len(src))
	if err != nil {
		return nil, err
	}
	mem, err := shm.Bytes()
	if err != nil {
		shm.Close()
		return nil, err
	}
	return &bulkShm{g: g, shm: shm, mem: mem, src: src, sum: sum}, nil
}

func (s *bulkShm) once(ctx context.Context) error {
	copy(s.mem, s.src)
	r, err := s.g.c.SendWithReply(ctx, xpc.Dict("shm", s.shm))
	if err != nil {
		return err
	}
	return checkSum(r, s.sum, 0)
}

func (s *bulkShm) close() error { return s.shm.Close() }

// bulkShmSealed makes a fresh region for every call, writes src into it
// through the file, seals it and sends it: the receiver can trust that the
// contents never change under it.
func bulkShmSealed(ctx context.Context, g *goxpcCaller, src []byte, sum uint64) error {
	shm, err := xpc.NewSharedMemory("ipcbench-sealed", len(src))
	if err != nil {
		return err
	}
	defer shm.Close()
	if _, err := shm.File().WriteAt(src, 0); err != nil {
		return err
	}
	if err := shm.Seal(); err != nil {
		return err
	}
	r, err := g.c.SendWithReply(ctx, xpc.Dict("shm", shm))
	if err != nil {
		return err
	}
	return checkSum(r, sum, 0)
}

// bulkData sends src as a data object in the message body (above 64 KiB
// goxpc moves bodies out of line, in a sealed memfd); with echo the server
// sends it back the same way.
func bulkData(ctx context.Context, g *goxpcCaller, src []byte, sum uint64, echo bool) error {
	msg := xpc.NewDictionary(2)
	msg.Set("data", xpc.Data(src))
	msg.Set("echo", xpc.Bool(echo))
	r, err := g.c.SendWithReply(ctx, msg)
	if err != nil {
		return err
	}
	want := 0
	if echo {
		want = len(src)
	}
	return checkSum(r, sum, want)
}

func checkSum(r *xpc.Dictionary, sum uint64, echoed int) error {
	got, err := r.Uint64("sum")
	if err != nil {
		return err
	}
	if got != sum {
		return fmt.Errorf("goxpc: server checksum %#x, want %#x", got, sum)
	}
	if echoed > 0 {
		d, err := r.Data("data")
		if err != nil {
			return err
		}
		if len(d) != echoed {
			return fmt.Errorf("goxpc: %d bytes echoed, want %d", len(d), echoed)
		}
	}
	return nil
}

// endpointFromFD wraps the endpoint descriptor the server child sent.
func endpointFromFD(fd int) *xpc.Endpoint {
	return xpc.NewEndpoint(os.NewFile(uintptr(fd), "ipcbench-endpoint"))
}
