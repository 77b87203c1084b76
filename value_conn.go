package xpc

import (
	"context"
	"fmt"
)

// Typed messages: Go values in and out of messages, by the conversion rules
// of Marshal (see "Go values" in the package documentation).

// SendValue converts v (a struct, a map with string keys, or a
// *Dictionary) to a dictionary with ValueOf and sends it as Send does,
// without waiting for a reply.
func (c *Connection) SendValue(ctx context.Context, v any) error {
	d, err := dictionaryOf(v)
	if err != nil {
		return err
	}
	return c.Send(ctx, d)
}

// Invoke converts req to a dictionary with ValueOf, sends it as
// SendWithReply does, and decodes the reply into the value reply points to
// with ObjectInto (strictly, on a connection made WithStrictDecoding). A
// reply that is an error object is returned as a *RemoteError, which
// errors.Is and errors.As match against the peer's error (CodedError). With
// reply nil the reply's body is not decoded.
func (c *Connection) Invoke(ctx context.Context, req, reply any) error {
	d, err := dictionaryOf(req)
	if err != nil {
		return err
	}
	r, err := c.SendWithReply(ctx, d)
	if err != nil {
		return err
	}
	if reply == nil {
		return nil
	}
	return objectInto(r, reply, c.cfg.strict)
}

// Decode stores the message's body in the Go value v points to, by the
// conversion rules of ObjectInto (strictly, on a connection made
// WithStrictDecoding).
func (m *Message) Decode(v any) error {
	strict := m.conn != nil && m.conn.cfg.strict
	return objectInto(m.Body, v, strict)
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

// objectInto is ObjectInto, strict or not.
func objectInto(obj Object, v any, strict bool) error {
	if strict {
		return fmt.Errorf("xpc: strict decoding: %w", ErrUnsupportedType) // replaced by the strict decoder
	}
	return ObjectInto(obj, v)
}
