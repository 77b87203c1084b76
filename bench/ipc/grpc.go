package ipc

import (
	"context"
	"fmt"
	"net"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// gRPC: a unary method over a Unix socket, described by a hand-written
// grpc.ServiceDesc; both ends force pingCodec, so no protobuf is involved.
const grpcMethod = "/goxpc.bench.Bench/Ping"

type pingService interface {
	Ping(context.Context, *ping) (*ping, error)
}

type grpcBench struct{}

func (grpcBench) Ping(_ context.Context, in *ping) (*ping, error) {
	return &ping{Method: pongMethod, Seq: in.Seq, Payload: in.Payload}, nil
}

var grpcDesc = grpc.ServiceDesc{
	ServiceName: "goxpc.bench.Bench",
	HandlerType: (*pingService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Ping",
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(ping)
			if err := dec(in); err != nil {
				return nil, err
			}
			if icpt == nil {
				return srv.(pingService).Ping(ctx, in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: grpcMethod}
			return icpt(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return srv.(pingService).Ping(ctx, req.(*ping))
			})
		},
	}},
	Metadata: "hand-written",
}

func serveGRPC(dir string) (string, func(), error) {
	path := filepath.Join(dir, "grpc.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		return "", nil, err
	}
	s := grpc.NewServer(grpc.ForceServerCodec(pingCodec{}))
	s.RegisterService(&grpcDesc, grpcBench{})
	go s.Serve(l)
	return path, s.Stop, nil
}

// grpcCaller is one ClientConn, shared by concurrent callers.
type grpcCaller struct {
	cc *grpc.ClientConn
}

func dialGRPC(path string) (*grpcCaller, error) {
	cc, err := grpc.NewClient("unix://"+path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(pingCodec{})))
	if err != nil {
		return nil, err
	}
	return &grpcCaller{cc: cc}, nil
}

func (g *grpcCaller) call(ctx context.Context, seq int64) error {
	out := new(ping)
	if err := g.cc.Invoke(ctx, grpcMethod, &ping{Method: pingMethod, Seq: seq, Payload: payload}, out); err != nil {
		return err
	}
	if out.Seq != seq {
		return fmt.Errorf("grpc: reply to %d carries seq %d", seq, out.Seq)
	}
	return nil
}

func (g *grpcCaller) close() error { return g.cc.Close() }
