package xpc

import (
	"encoding/binary"
	"fmt"
)

// The local frame format (docs/PROTOCOL.md §7). Every datagram on a goxpc
// socket is one frame: a 16-byte header, then, for frames that carry one, a
// serialized body.
const (
	frameVersion    = 1
	frameHeaderSize = 16

	// inlineMax is the largest frame sent as one datagram. A larger body
	// travels in a sealed memfd attached as the frame's first descriptor.
	inlineMax = 64 << 10

	// maxFDsPerFrame is SCM_MAX_FD, the kernel's limit per sendmsg.
	maxFDsPerFrame = 253

	// creditWindow is how many messages and requests one side may send
	// before the other side has dequeued them and granted more.
	creditWindow = 256
)

type frameKind uint8

const (
	kindMessage     frameKind = 1 // one-way message, body
	kindRequest     frameKind = 2 // message wanting a reply, id, body
	kindReply       frameKind = 3 // reply to request id, body (none with flagNoReply)
	kindCredit      frameKind = 4 // id = messages granted to the receiver of this frame
	kindConnect     frameKind = 5 // on an endpoint socket: one descriptor, a new connection
	kindTerminating frameKind = 6 // the sender is about to exit
	kindHello       frameKind = 7 // a service's first frame to a client: its identity rides on it
)

func (k frameKind) String() string {
	switch k {
	case kindMessage:
		return "message"
	case kindRequest:
		return "request"
	case kindReply:
		return "reply"
	case kindCredit:
		return "credit"
	case kindConnect:
		return "connect"
	case kindTerminating:
		return "terminating"
	case kindHello:
		return "hello"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

const (
	flagOutOfLine uint16 = 0x1 // the body is in the first descriptor, a memfd
	flagNoReply   uint16 = 0x2 // reply frame: the handler finished without replying
)

type frameHeader struct {
	kind  frameKind
	flags uint16
	nfds  uint32
	id    uint64
}

func putFrameHeader(b []byte, h frameHeader) {
	b[0] = frameVersion
	b[1] = byte(h.kind)
	binary.LittleEndian.PutUint16(b[2:], h.flags)
	binary.LittleEndian.PutUint32(b[4:], h.nfds)
	binary.LittleEndian.PutUint64(b[8:], h.id)
}

func parseFrameHeader(b []byte) (frameHeader, error) {
	if len(b) < frameHeaderSize {
		return frameHeader{}, fmt.Errorf("frame of %d bytes is shorter than its header", len(b))
	}
	if b[0] != frameVersion {
		return frameHeader{}, fmt.Errorf("frame version %d, want %d", b[0], frameVersion)
	}
	h := frameHeader{
		kind:  frameKind(b[1]),
		flags: binary.LittleEndian.Uint16(b[2:]),
		nfds:  binary.LittleEndian.Uint32(b[4:]),
		id:    binary.LittleEndian.Uint64(b[8:]),
	}
	if h.kind < kindMessage || h.kind > kindHello {
		return h, fmt.Errorf("unknown frame kind %d", b[1])
	}
	if h.flags&^(flagOutOfLine|flagNoReply) != 0 {
		return h, fmt.Errorf("unknown frame flags %#x", h.flags)
	}
	return h, nil
}
