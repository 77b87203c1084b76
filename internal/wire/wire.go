package wire

import (
	"encoding/binary"
	"fmt"
)

// Version is the frame format's version, the first byte of every frame.
const Version = 1

// HeaderSize is the size of a frame header; a body, if any, follows it.
const HeaderSize = 16

// The protocol's sizes and limits, which both ends of a connection must
// agree on.
const (
	// InlineMax is the largest frame sent as one datagram. A larger body
	// travels out of line: in a sealed memfd attached as the frame's
	// first descriptor (WriteOutOfLine).
	InlineMax = 64 << 10

	// MaxFDs is SCM_MAX_FD, the kernel's limit of descriptors per
	// sendmsg, and so per frame.
	MaxFDs = 253

	// CreditWindow is how many messages and requests one side may send
	// before the other side has dequeued them and granted more.
	CreditWindow = 256

	// InitialWindow is how many body bytes of messages and requests one
	// side may have outstanding (sent, and not yet dequeued by the
	// receiver and granted back) before the receiver has announced its
	// own limit in a window frame. It is also the smallest limit a
	// receiver may set, so no sender ever goes over a limit it has not
	// yet heard of.
	InitialWindow = 1 << 20

	// CreditBytesShift places the bytes granted in a credit frame's id,
	// above the messages granted.
	CreditBytesShift = 16

	// MaxLimitBytes bounds the byte limits (window, unread replies), so
	// that any count of them fits a credit frame's id.
	MaxLimitBytes = 1 << 40
)

// Kind is a frame's kind, its second byte.
type Kind uint8

// The frame kinds (docs/PROTOCOL.md §7).
const (
	KindMessage     Kind = 1  // one-way message, body
	KindRequest     Kind = 2  // message wanting a reply, id, body
	KindReply       Kind = 3  // reply to request id, body (none with FlagNoReply)
	KindCredit      Kind = 4  // id = messages (bits 0-15) and body bytes (bits 16-63) granted to the receiver of this frame
	KindConnect     Kind = 5  // on an endpoint socket: one descriptor, a new connection
	KindTerminating Kind = 6  // the sender is about to exit; id = why (Term*)
	KindHello       Kind = 7  // a service's first frame to a client: its identity rides on it
	KindRefused     Kind = 8  // xpcd's answer to a pipelined lookup it cannot serve: an error body
	KindAck         Kind = 9  // id = bytes of an out-of-line reply body the sender of this frame has read
	KindWindow      Kind = 10 // id = the sender's limit on queued body bytes, announced once
	KindStalled     Kind = 11 // the sender waits for byte credit: grant what has been dequeued
)

func (k Kind) String() string {
	switch k {
	case KindMessage:
		return "message"
	case KindRequest:
		return "request"
	case KindReply:
		return "reply"
	case KindCredit:
		return "credit"
	case KindConnect:
		return "connect"
	case KindTerminating:
		return "terminating"
	case KindHello:
		return "hello"
	case KindRefused:
		return "refused"
	case KindAck:
		return "ack"
	case KindWindow:
		return "window"
	case KindStalled:
		return "stalled"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Why the sender of a terminating frame is about to exit: the frame's id.
// A receiver takes an id it does not know for TermUnspecified.
const (
	TermUnspecified    uint64 = 0 // not said (Listener.AnnounceTermination)
	TermIdleExit       uint64 = 1 // xpcd stops it when idle
	TermUpgrade        uint64 = 2 // xpcd stops it to start a new version
	TermKilled         uint64 = 3 // an administrator stops it
	TermMemoryPressure uint64 = 4 // xpcd stops it to free memory
	TermShuttingDown   uint64 = 5 // xpcd is stopping, and stops its services
)

// Frame flags.
const (
	FlagOutOfLine uint16 = 0x1 // the body is in the first descriptor, a memfd
	FlagNoReply   uint16 = 0x2 // reply frame: the handler finished without replying
)

// Header is a frame header.
type Header struct {
	Kind  Kind
	Flags uint16
	NFDs  uint32 // descriptors attached to the datagram
	ID    uint64
}

// PutHeader writes h into b[:HeaderSize].
func PutHeader(b []byte, h Header) {
	b[0] = Version
	b[1] = byte(h.Kind)
	binary.LittleEndian.PutUint16(b[2:], h.Flags)
	binary.LittleEndian.PutUint32(b[4:], h.NFDs)
	binary.LittleEndian.PutUint64(b[8:], h.ID)
}

// RefusedFrame returns a refused frame carrying body, an encoded error
// object: the frame xpcd sends in answer to a lookup it cannot serve and a
// listener sends to a peer it turns away. Send it with SendNow.
func RefusedFrame(body []byte) []byte {
	frame := make([]byte, HeaderSize, HeaderSize+len(body))
	PutHeader(frame, Header{Kind: KindRefused})
	return append(frame, body...)
}

// ParseHeader reads the header at the start of b. It fails on a short
// frame, another version, an unknown kind or unknown flags.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("frame of %d bytes is shorter than its header", len(b))
	}
	if b[0] != Version {
		return Header{}, fmt.Errorf("frame version %d, want %d", b[0], Version)
	}
	h := Header{
		Kind:  Kind(b[1]),
		Flags: binary.LittleEndian.Uint16(b[2:]),
		NFDs:  binary.LittleEndian.Uint32(b[4:]),
		ID:    binary.LittleEndian.Uint64(b[8:]),
	}
	if h.Kind < KindMessage || h.Kind > KindStalled {
		return h, fmt.Errorf("unknown frame kind %d", b[1])
	}
	if h.Flags&^(FlagOutOfLine|FlagNoReply) != 0 {
		return h, fmt.Errorf("unknown frame flags %#x", h.Flags)
	}
	return h, nil
}
