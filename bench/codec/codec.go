// Package codec compares goxpc's struct codec with encoding/json, CBOR
// (fxamacker/cbor) and MessagePack (vmihailenco/msgpack) on one typical
// request. The same benchmark functions serve `go test -bench` in this
// package and the cmd/codeccompare program, so both measure the same work.
//
// Each codec is set up the way a careful user would: encoding into a buffer
// it reuses, and decoding a byte slice into a zeroed struct. All four write
// self-describing maps keyed by field name, so they do comparable work.
package codec

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/goxpc/xpc"
	"github.com/vmihailenco/msgpack/v5"
)

// Request is the typical request: ten entries of the kinds a service call
// carries. The root package's codec_bench_test.go builds the same message as
// an *xpc.Dictionary; keep the two in step.
type Request struct {
	Method     string `xpc:"method" json:"method" cbor:"method" msgpack:"method"`
	Service    string `xpc:"service" json:"service" cbor:"service" msgpack:"service"`
	Path       string `xpc:"path" json:"path" cbor:"path" msgpack:"path"`
	ID         int64  `xpc:"id" json:"id" cbor:"id" msgpack:"id"`
	TimeoutMS  int64  `xpc:"timeout_ms" json:"timeout_ms" cbor:"timeout_ms" msgpack:"timeout_ms"`
	Priority   int64  `xpc:"priority" json:"priority" cbor:"priority" msgpack:"priority"`
	Seq        uint64 `xpc:"seq" json:"seq" cbor:"seq" msgpack:"seq"`
	WantsReply bool   `xpc:"wants_reply" json:"wants_reply" cbor:"wants_reply" msgpack:"wants_reply"`
	Payload    []byte `xpc:"payload" json:"payload" cbor:"payload" msgpack:"payload"`
	Caller     Caller `xpc:"caller" json:"caller" cbor:"caller" msgpack:"caller"`
}

// Caller is the nested part of Request.
type Caller struct {
	PID  int64  `xpc:"pid" json:"pid" cbor:"pid" msgpack:"pid"`
	UID  int64  `xpc:"uid" json:"uid" cbor:"uid" msgpack:"uid"`
	Name string `xpc:"name" json:"name" cbor:"name" msgpack:"name"`
}

// TypicalRequest returns the request every codec encodes.
func TypicalRequest() *Request {
	payload := make([]byte, 64)
	for i := range payload {
		payload[i] = byte(i)
	}
	return &Request{
		Method:     "Launch",
		Service:    "com.example.agent",
		Path:       "/org/example/Agent/1",
		ID:         123456789,
		TimeoutMS:  30000,
		Priority:   -5,
		Seq:        1<<40 + 7,
		WantsReply: true,
		Payload:    payload,
		Caller:     Caller{PID: 4242, UID: 501, Name: "com.example.client"},
	}
}

// Codec is one serialization library set up for the comparison. Encode's
// result is valid until the next call. A Codec is not safe for concurrent use.
type Codec interface {
	Name() string
	Encode(r *Request) ([]byte, error)
	Decode(b []byte, r *Request) error
}

// Codecs returns a fresh instance of each codec compared, goxpc first.
func Codecs() []Codec {
	return []Codec{NewXPC(), NewJSON(), NewCBOR(), NewMsgpack()}
}

// XPC is goxpc's struct codec: Encoder.EncodeValue into the encoder's reused
// buffer and Decoder.DecodeValue.
type XPC struct {
	enc xpc.Encoder
	dec xpc.Decoder
}

// NewXPC returns the goxpc codec.
func NewXPC() *XPC { return &XPC{} }

func (*XPC) Name() string                        { return "xpc" }
func (c *XPC) Encode(r *Request) ([]byte, error) { return c.enc.EncodeValue(r) }
func (c *XPC) Decode(b []byte, r *Request) error { return c.dec.DecodeValue(b, nil, r) }

// JSON is encoding/json: a json.Encoder writing to a reset bytes.Buffer, and
// json.Unmarshal. Its output ends in the newline json.Encoder adds.
type JSON struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// NewJSON returns the encoding/json codec.
func NewJSON() *JSON {
	c := &JSON{}
	c.enc = json.NewEncoder(&c.buf)
	return c
}

func (*JSON) Name() string { return "json" }

func (c *JSON) Encode(r *Request) ([]byte, error) {
	c.buf.Reset()
	if err := c.enc.Encode(r); err != nil {
		return nil, err
	}
	return c.buf.Bytes(), nil
}

func (c *JSON) Decode(b []byte, r *Request) error { return json.Unmarshal(b, r) }

// CBOR is fxamacker/cbor with default options: EncMode.MarshalToBuffer into a
// reset bytes.Buffer, and DecMode.Unmarshal.
type CBOR struct {
	buf bytes.Buffer
	em  cbor.UserBufferEncMode
	dm  cbor.DecMode
}

// NewCBOR returns the CBOR codec.
func NewCBOR() *CBOR {
	em, err := cbor.EncOptions{}.UserBufferEncMode()
	if err != nil {
		panic(err) // default options are always valid
	}
	dm, err := cbor.DecOptions{}.DecMode()
	if err != nil {
		panic(err)
	}
	return &CBOR{em: em, dm: dm}
}

func (*CBOR) Name() string { return "cbor" }

func (c *CBOR) Encode(r *Request) ([]byte, error) {
	c.buf.Reset()
	if err := c.em.MarshalToBuffer(r, &c.buf); err != nil {
		return nil, err
	}
	return c.buf.Bytes(), nil
}

func (c *CBOR) Decode(b []byte, r *Request) error { return c.dm.Unmarshal(b, r) }

// Msgpack is vmihailenco/msgpack with default options: an Encoder writing to
// a reset bytes.Buffer, and a Decoder reset onto a bytes.Reader (which needs
// no extra buffering) for each body.
type Msgpack struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
	rd  bytes.Reader
	dec *msgpack.Decoder
}

// NewMsgpack returns the MessagePack codec.
func NewMsgpack() *Msgpack {
	c := &Msgpack{}
	c.enc = msgpack.NewEncoder(&c.buf)
	c.dec = msgpack.NewDecoder(&c.rd)
	return c
}

func (*Msgpack) Name() string { return "msgpack" }

func (c *Msgpack) Encode(r *Request) ([]byte, error) {
	c.buf.Reset()
	if err := c.enc.Encode(r); err != nil {
		return nil, err
	}
	return c.buf.Bytes(), nil
}

func (c *Msgpack) Decode(b []byte, r *Request) error {
	c.rd.Reset(b)
	c.dec.Reset(&c.rd)
	return c.dec.Decode(r)
}

// BenchEncode measures encoding the typical request into c's reused buffer.
func BenchEncode(c Codec) func(*testing.B) {
	return func(b *testing.B) {
		req := TypicalRequest()
		body, err := c.Encode(req)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Encode(req); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchDecode measures decoding the typical request's encoding into a zeroed
// Request.
func BenchDecode(c Codec) func(*testing.B) {
	return func(b *testing.B) {
		enc, err := c.Encode(TypicalRequest())
		if err != nil {
			b.Fatal(err)
		}
		body := bytes.Clone(enc)
		var r Request
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			r = Request{}
			if err := c.Decode(body, &r); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchEncodeDecode measures one encode of the typical request followed by a
// decode of the result into a zeroed Request: a message's whole trip through
// the codec.
func BenchEncodeDecode(c Codec) func(*testing.B) {
	return func(b *testing.B) {
		req := TypicalRequest()
		var r Request
		b.ReportAllocs()
		for b.Loop() {
			body, err := c.Encode(req)
			if err != nil {
				b.Fatal(err)
			}
			r = Request{}
			if err := c.Decode(body, &r); err != nil {
				b.Fatal(err)
			}
		}
	}
}
