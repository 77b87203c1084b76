package ipc

import (
	"context"
	"fmt"
	"net"
	"path/filepath"

	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ttrpc: containerd's RPC over a Unix socket. Its codec takes only protobuf
// messages, so the ping, encoded as for gRPC (ping.appendBinary), travels in
// a well-known wrapperspb.BytesValue: one proto field, no generated code.
const (
	ttrpcService = "goxpc.bench.Bench"
	ttrpcMethod  = "Ping"
)

func ttrpcPing(_ context.Context, unmarshal func(any) error) (any, error) {
	var req wrapperspb.BytesValue
	if err := unmarshal(&req); err != nil {
		return nil, err
	}
	var p ping
	if err := p.unmarshalBinary(req.Value); err != nil {
		return nil, err
	}
	p.Method = pongMethod
	return &wrapperspb.BytesValue{Value: p.appendBinary(make([]byte, 0, 80))}, nil
}

func serveTTRPC(dir string) (string, func(), error) {
	path := filepath.Join(dir, "ttrpc.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		return "", nil, err
	}
	s, err := ttrpc.NewServer()
	if err != nil {
		l.Close()
		return "", nil, err
	}
	s.RegisterService(ttrpcService, &ttrpc.ServiceDesc{Methods: map[string]ttrpc.Method{ttrpcMethod: ttrpcPing}})
	go s.Serve(context.Background(), l)
	return path, func() { s.Close() }, nil
}

// ttrpcCaller is one client, shared by concurrent callers.
type ttrpcCaller struct {
	c *ttrpc.Client
}

func dialTTRPC(path string) (*ttrpcCaller, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	return &ttrpcCaller{c: ttrpc.NewClient(conn)}, nil
}

func (t *ttrpcCaller) call(ctx context.Context, seq int64) error {
	p := ping{Method: pingMethod, Seq: seq, Payload: payload}
	req := &wrapperspb.BytesValue{Value: p.appendBinary(make([]byte, 0, 80))}
	var resp wrapperspb.BytesValue
	if err := t.c.Call(ctx, ttrpcService, ttrpcMethod, req, &resp); err != nil {
		return err
	}
	if err := p.unmarshalBinary(resp.Value); err != nil {
		return err
	}
	if p.Seq != seq {
		return fmt.Errorf("ttrpc: reply to %d carries seq %d", seq, p.Seq)
	}
	return nil
}

func (t *ttrpcCaller) close() error { return t.c.Close() }
