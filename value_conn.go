package xpc

import "context"

// Typed messages: Go values in and out of messages, by the conversion rules
// of Marshal (see "Go values" in the package documentation).

// SendValue converts v (a struct, a map with string keys, or a
// *Dictionary) to a dictionary with ValueOf and sends it as Send does,
// without waiting for a reply.
func (c *Connection) SendValue(ctx context.Context, v any) error {
	return sendValue(ctx, c.Send, v)
}

// sendValue is SendValue over send (a Connection's or a Session's).
func sendValue(ctx context.Context, send func(context.Context, *Dictionary) error, v any) error {
	d, err := dictionaryOf(v)
	if err != nil {
		return err
	}
	return send(ctx, d)
}

// Invoke converts req to a dictionary with ValueOf, sends it as
// SendWithReply does, and decodes the reply into the value reply points to
// with ObjectInto (with ObjectIntoStrict on a connection made
// WithStrictDecoding). A reply that is an error object is returned as a
// *RemoteError, which errors.Is and errors.As match against the peer's
// error (CodedError). With reply nil the reply's body is not decoded.
// reply, unless nil, must be a non-nil pointer; Invoke checks this before
// sending.
//
// Descriptors in the reply: those placed in reply (an *FD field, say)
// belong to the caller, who must close them; the others (under keys with
// no field) are closed by Invoke, as are all of them when reply is nil or
// the reply does not decode.
func (c *Connection) Invoke(ctx context.Context, req, reply any) error {
	return invoke(ctx, c.SendWithReply, c.cfg.strict, req, reply)
}

// invoke is Invoke over sendWithReply (a Connection's or a Session's).
func invoke(ctx context.Context, sendWithReply func(context.Context, *Dictionary) (*Dictionary, error), strict bool, req, reply any) error {
	if reply != nil {
		if _, err := target(reply); err != nil {
			return err
		}
	}
	d, err := dictionaryOf(req)
	if err != nil {
		return err
	}
	r, err := sendWithReply(ctx, d)
	if err != nil {
		return err
	}
	if reply == nil {
		_ = CloseAttachments(r)
		return nil
	}
	return decodeBody(r, reply, strict)
}

// Decode stores the message's body in the Go value v points to, with
// ObjectInto (with ObjectIntoStrict on a connection made
// WithStrictDecoding).
//
// Decode settles the body's descriptors: those placed in v belong to the
// handler through v; the others (under keys with no field) are closed; on
// error all of them are closed. So the handler closes only what it took
// into v, and decodes a body once.
func (m *Message) Decode(v any) error {
	strict := m.conn != nil && m.conn.cfg.strict
	return decodeBody(m.Body, v, strict)
}

// ReplyValue converts v to a dictionary with ValueOf and replies with it as
// Reply does.
func (m *Message) ReplyValue(ctx context.Context, v any) error {
	d, err := dictionaryOf(v)
	if err != nil {
		return err
	}
	return m.Reply(ctx, d)
}

// dictionaryOf converts v to the dictionary a message body must be.
func dictionaryOf(v any) (*Dictionary, error) {
	if d, ok := v.(*Dictionary); ok && d != nil {
		return d, nil
	}
	obj, err := ValueOf(v)
	if err != nil {
		return nil, err
	}
	d, ok := obj.(*Dictionary)
	if !ok {
		return nil, &FieldError{Err: &TypeMismatchError{Want: TypeDictionary, Got: obj.Type()}}
	}
	return d, nil
}

// decodeBody decodes body into v and closes the descriptors of body that
// v did not take: those with no place in v, or all of them on error.
func decodeBody(body *Dictionary, v any, strict bool) error {
	err := objectInto(body, v, strict, true)
	if err != nil && body != nil {
		_ = CloseAttachments(body)
	}
	return err
}
