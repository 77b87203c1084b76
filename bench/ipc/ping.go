package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The ping is the message every system sends, and the shape of every reply:
// a method name, a sequence number and a 60-byte payload, about 100 bytes of
// content. The server answers {"method": "pong", "seq": <same>, "payload":
// <same>}; the client checks the sequence number.
const (
	pingMethod = "ping"
	pongMethod = "pong"
	payloadLen = 60
)

// payload is the 60 bytes of text every ping carries.
var payload = func() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, payloadLen)
	for i := range b {
		b[i] = alphabet[i%len(alphabet)]
	}
	return string(b)
}()

// ping is the Go form of the message, for the systems that carry structs:
// gRPC (through pingCodec) and ttrpc (inside a protobuf BytesValue).
type ping struct {
	Method  string
	Seq     int64
	Payload string
}

// appendBinary encodes p with encoding/binary varints: the length of
// Method, Method, Seq (zig-zag), the length of Payload, Payload. It is the
// smallest honest encoding of the three fields, so gRPC and ttrpc spend as
// little as possible on their codec.
func (p *ping) appendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p.Method)))
	b = append(b, p.Method...)
	b = binary.AppendVarint(b, p.Seq)
	b = binary.AppendUvarint(b, uint64(len(p.Payload)))
	return append(b, p.Payload...)
}

var errShortPing = errors.New("ipc: truncated ping")

// unmarshalBinary decodes what appendBinary wrote. The strings are copies:
// gRPC reuses the buffer after its codec returns.
func (p *ping) unmarshalBinary(b []byte) error {
	s, b, err := takeString(b)
	if err != nil {
		return err
	}
	seq, n := binary.Varint(b)
	if n <= 0 {
		return errShortPing
	}
	b = b[n:]
	pl, b, err := takeString(b)
	if err != nil {
		return err
	}
	if len(b) != 0 {
		return fmt.Errorf("ipc: %d bytes after the ping", len(b))
	}
	p.Method, p.Seq, p.Payload = s, seq, pl
	return nil
}

func takeString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, errShortPing
	}
	b = b[k:]
	return string(b[:n]), b[n:], nil
}

// pingCodec is the gRPC codec (encoding.Codec) for *ping, forced on both
// ends with grpc.ForceCodec and grpc.ForceServerCodec: no protobuf and no
// generated code.
type pingCodec struct{}

func (pingCodec) Marshal(v any) ([]byte, error) {
	p, ok := v.(*ping)
	if !ok {
		return nil, fmt.Errorf("ipc: pingCodec cannot marshal %T", v)
	}
	return p.appendBinary(make([]byte, 0, 80)), nil
}

func (pingCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*ping)
	if !ok {
		return fmt.Errorf("ipc: pingCodec cannot unmarshal into %T", v)
	}
	return p.unmarshalBinary(data)
}

func (pingCodec) Name() string { return "goxpc-bench-ping" }

// checksum reads every byte of b, eight at a time, and returns their sum as
// little-endian 64-bit words (the tail byte by byte). The bulk benchmarks use
// it so that every server reads all 16 MiB, whichever way they came.
func checksum(b []byte) uint64 {
	var s uint64
	for len(b) >= 32 {
		s += binary.LittleEndian.Uint64(b) + binary.LittleEndian.Uint64(b[8:]) +
			binary.LittleEndian.Uint64(b[16:]) + binary.LittleEndian.Uint64(b[24:])
		b = b[32:]
	}
	for len(b) >= 8 {
		s += binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	for _, c := range b {
		s += uint64(c)
	}
	return s
}

// bulkSource returns n bytes of a fixed pattern and their checksum.
func bulkSource(n int) ([]byte, uint64) {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	return b, checksum(b)
}
