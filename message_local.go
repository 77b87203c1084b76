package xpc

import "context"

// Messages with no connection behind them, for testing a Handler as
// net/http/httptest tests an http.Handler (xpctest.NewMessage builds on
// these).

// localSink is where the answer to a message made by NewLocalMessage goes.
// It stands in for the link the message would have arrived on: the local
// message's link carries it (link.local) and nothing else but the peer.
type localSink struct {
	answered func(reply *Dictionary, err error)
}

// NewLocalMessage returns a message that arrived on no connection: body, as
// sent by peer (nil if the handler is not to see one), wanting a reply if
// wantsReply. It is for testing a Handler without a connection or xpcd;
// HandleLocal hands it to the handler.
//
// The message's answer is passed to answered, once, as the sender's
// SendWithReply would return it: the reply, or a *RemoteError for
// ReplyError, or one matching ErrReplyFailed for a reply that does not
// encode, or one matching ErrNoReply when the handler returned without
// replying or deferring. A deferred reply may come later, from any
// goroutine. The reply is the handler's own dictionary, not a copy. A
// message that wants no reply is never answered: its Reply returns
// ErrNoReplyWanted, as on a connection.
//
// Connection returns nil for the message, Peer returns peer, and it opens
// no transaction (there is no connection to count it in).
func NewLocalMessage(body *Dictionary, peer *Peer, wantsReply bool, answered func(reply *Dictionary, err error)) *Message {
	l := &link{local: &localSink{answered: answered}}
	if peer != nil {
		l.peer.Store(peer)
	}
	return &Message{Body: body, link: l, wantsReply: wantsReply}
}

// HandleLocal hands m, made by NewLocalMessage, to h as a connection's
// dispatcher would, and then does what the dispatcher does once a handler
// has returned: a request h neither answered nor deferred is answered with
// no reply (ErrNoReply at the sender). It returns when h has. A message
// not made by NewLocalMessage is not handed to h.
func HandleLocal(ctx context.Context, h Handler, m *Message) {
	if m == nil || m.link == nil || m.link.local == nil {
		return
	}
	h.HandleMessage(ctx, m)
	if m.wantsReply && m.state.CompareAndSwap(msgOpen, msgReplied) {
		m.link.local.answered(nil, errNoReply)
	}
}

// reply answers a local message (NewLocalMessage) with body, which
// must encode as it would have to on a connection: one that does not is
// answered with the error a connection would send in its place.
func (s *localSink) reply(body Object) error {
	if _, _, err := AppendBody(nil, MagicLocal, body); err != nil {
		s.answered(nil, &RemoteError{Object: replyFailedObject(err)})
		return err // as a connection's Reply returns it
	}
	switch v := body.(type) {
	case *Dictionary:
		s.answered(v, nil)
	case *ErrorObject:
		s.answered(nil, &RemoteError{Object: v})
	}
	return nil
}
