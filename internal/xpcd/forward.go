package xpcd

import (
	"context"
	"errors"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// A lookup that names no domain searches the caller's user domain, then
// system. A --user instance serves only the user domain, so a name it does
// not have is passed on to the system instance (Config.SystemSocket), with
// the client's socket: xpcd opens a connection of its own to the system
// instance and sends it the same lookup, carrying the same socket. The
// client's pipelined first message waits, unread, in that socket, so
// nothing is lost: the system instance hands the socket to its service, or
// writes its refusal into it, as it would for the client itself. The
// system instance sees the lookup come from this xpcd, which runs as the
// client's user: the uid it goes by is the client's, the requester pid
// xpcd's. Any other answer of the user instance (denied, busy, a name in
// the user domain) is final, and so is a lookup that names a domain.

// forwardTimeout bounds a lookup passed to the system instance.
const forwardTimeout = 10 * time.Second

// forwards tells whether a lookup that failed with oe is passed on to the
// system instance.
func (s *server) forwards(dom string, oe *opError) bool {
	return s.systemSocket != "" && dom == "" && oe.reason == bootstrap.ReasonNotFound
}

// forward passes a lookup of name, with the client's socket fd, to the
// system instance, in a goroutine of its own. A pipelined lookup
// (msg nil) is then the system instance's to answer, on fd; a lookup that
// wants a reply gets the system instance's. If the system instance cannot
// be reached, the client gets oe, the user instance's own answer. forward
// owns fd.
func (ss *session) forward(name string, fd *xpc.FD, msg *xpc.Message, oe *opError) {
	s := ss.s
	if msg != nil {
		msg.Defer()
	}
	go func() {
		ctx, cancel := context.WithTimeout(s.forwardCtx, forwardTimeout)
		defer cancel()
		reply, err := s.forwardLookup(ctx, name, fd, msg != nil)
		var re *xpc.RemoteError
		switch {
		case err != nil && !errors.As(err, &re):
			// Not reached: the client gets the user instance's answer.
			ss.log.Debug("lookup: the system instance could not be asked", "name", name, "err", err)
			if msg == nil {
				ss.refused(name, fd, oe) // closes fd
				return
			}
			ss.fail(ctx, msg, oe)
		case msg == nil:
			// Pipelined: the system instance answers on the socket.
		case err != nil:
			msg.ReplyError(ctx, re.Object)
		default:
			ss.reply(ctx, msg, reply)
		}
		fd.Close()
	}()
}

// forwardLookup sends the lookup to the system instance: as a request if
// the client wants a reply, otherwise one-way, as the client sent it.
func (s *server) forwardLookup(ctx context.Context, name string, fd *xpc.FD, wantReply bool) (*xpc.Dictionary, error) {
	c, err := xpc.DialUnix(ctx, s.systemSocket, xpc.WithMaxReceiveSize(maxRequestSize))
	if err != nil {
		return nil, err
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	req := xpc.Dict(bootstrap.KeyOp, bootstrap.OpLookup, bootstrap.KeyName, name)
	req.Set(bootstrap.KeySocket, fd)
	if wantReply {
		return c.SendWithReply(ctx, req)
	}
	// Sent is enough: xpcd reads what a client sent before it left.
	return nil, c.Send(ctx, req)
}
