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
// the client's socket, and so is a lookup naming the system domain: xpcd
// opens a connection of its own to the system instance and sends it the
// same lookup, carrying the same socket, as a request. The client's
// pipelined first message waits, unread, in that socket, so nothing is
// lost: the system instance hands the socket to its service, or answers
// with its refusal, which this xpcd passes on to the client (into the
// socket, for a pipelined lookup). The system instance sees the lookup
// come from this xpcd and the socket made by the client, and accepts
// that because this xpcd runs its executable as the client's user
// (lookup_client.go): the client is who it judges, by uid and
// requirement, and who the service sees. Any other answer of the user
// instance (denied, busy, a name in the user domain) is final, and so is
// a lookup that names the user domain.

// forwardTimeout bounds a lookup passed to the system instance.
const forwardTimeout = 10 * time.Second

// forwards tells whether a lookup that failed with oe is passed on to the
// system instance: one naming no domain, or the system domain, which a
// --user instance does not serve.
func (s *server) forwards(dom string, oe *opError) bool {
	return s.systemSocket != "" && (dom == "" || dom == DomainSystem) && oe.reason == bootstrap.ReasonNotFound
}

// forward passes a lookup of name, with the client's socket fd, to the
// system instance, in a goroutine of its own, always as a request: the
// system instance's answer comes back here, and this xpcd tells the client
// (a pipelined client by a refusal written into fd, which the client
// believes because it comes from the xpcd it asked). If the system
// instance cannot be reached, the client gets oe, this instance's own
// answer. forward owns fd.
func (ss *session) forward(name, dom string, fd *xpc.FD, msg *xpc.Message, oe *opError) {
	s := ss.s
	if msg != nil {
		msg.Defer()
	}
	go func() {
		ctx, cancel := context.WithTimeout(s.forwardCtx, forwardTimeout)
		defer cancel()
		err := s.forwardLookup(ctx, name, dom, fd)
		// The answer has time of its own: the lookup may have used up,
		// or ended (xpcd closing), ctx, and a send with an ended
		// context sends nothing.
		ctx, cancelAnswer := context.WithTimeout(context.WithoutCancel(ctx), forwardTimeout)
		defer cancelAnswer()
		var re *xpc.RemoteError
		switch {
		case err == nil:
			// The system instance has the socket now.
			fd.Close()
			if msg != nil {
				ss.reply(ctx, msg, nil)
			}
			return
		case errors.As(err, &re):
			reason, _ := re.Object.String(bootstrap.KeyReason)
			oe = &opError{reason: reason, desc: re.Object.Description(), extra: remoteExtra(re.Object)}
		default:
			ss.log.Debug("lookup: the system instance could not be asked", "name", name, "err", err)
		}
		if msg == nil {
			ss.refused(name, fd, oe) // closes fd
			return
		}
		fd.Close()
		ss.fail(ctx, msg, oe)
	}()
}

// remoteExtra is what an error object from the system instance says
// besides its description, kind and reason.
func remoteExtra(o *xpc.ErrorObject) *xpc.Dictionary {
	d := xpc.NewDictionary(0)
	for k, v := range o.All() {
		switch k {
		case xpc.ErrorDescriptionKey, bootstrap.KeyKind, bootstrap.KeyReason:
		default:
			d.Set(k, v)
		}
	}
	return d
}

// forwardLookup asks the system instance for name, with the client's
// socket, as a request.
func (s *server) forwardLookup(ctx context.Context, name, dom string, fd *xpc.FD) error {
	c, err := xpc.DialUnix(ctx, s.systemSocket, xpc.WithMaxReceiveSize(maxRequestSize))
	if err != nil {
		return err
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	req := xpc.Dict(bootstrap.KeyOp, bootstrap.OpLookup, bootstrap.KeyName, name)
	if dom != "" {
		req.Set(bootstrap.KeyDomain, xpc.String(dom))
	}
	req.Set(bootstrap.KeySocket, fd)
	_, err = c.SendWithReply(ctx, req)
	return err
}

// forwardExitReason asks the system instance why pid, of the service
// name, ended, for a client of this --user instance whose lookup of name
// it may have passed on. The system instance answers as it would the
// client: this xpcd runs as the client's user. If it cannot be asked,
// the answer is oe, this instance's own.
func (s *server) forwardExitReason(ctx context.Context, name string, pid int, oe *opError) (*xpc.Dictionary, *opError) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	c, err := xpc.DialUnix(ctx, s.systemSocket, xpc.WithMaxReceiveSize(maxRequestSize))
	if err != nil {
		return nil, oe
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	reply, err := c.SendWithReply(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpExitReason, bootstrap.KeyName, name, bootstrap.KeyPID, pid))
	var re *xpc.RemoteError
	switch {
	case err == nil:
		return reply, nil
	case errors.As(err, &re):
		reason, _ := re.Object.String(bootstrap.KeyReason)
		return nil, &opError{reason: reason, desc: re.Object.Description(), extra: remoteExtra(re.Object)}
	}
	return nil, oe
}
