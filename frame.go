package xpc

import "github.com/goxpc/xpc/internal/wire"

// The local frame format (docs/PROTOCOL.md §7). Every datagram on a goxpc
// socket is one frame: a 16-byte header, then, for frames that carry one, a
// serialized body.
const (
	frameHeaderSize = wire.HeaderSize

	// inlineMax is the largest frame sent as one datagram. A larger body
	// travels in a sealed memfd attached as the frame's first descriptor.
	inlineMax = 64 << 10

	// maxFDsPerFrame is SCM_MAX_FD, the kernel's limit per sendmsg.
	maxFDsPerFrame = 253

	// creditWindow is how many messages and requests one side may send
	// before the other side has dequeued them and granted more.
	creditWindow = 256

	// initialWindow is how many body bytes of messages and requests one
	// side may have outstanding (sent, and not yet dequeued by the
	// receiver and granted back) before the receiver has announced its
	// own limit in a window frame. It is also the smallest limit a
	// receiver may set (WithMaxQueuedBytes), so no sender ever goes over
	// a limit it has not yet heard of.
	initialWindow = 1 << 20

	// grantBytes is how many dequeued body bytes a receiver lets gather
	// before it grants them back without waiting for a batch of messages.
	grantBytes = 256 << 10

	// creditBytesShift places the bytes granted in a credit frame's id,
	// above the messages granted.
	creditBytesShift = 16

	// maxLimitBytes bounds the byte limits, so that any count of them
	// fits a credit frame's id.
	maxLimitBytes = 1 << 40
)

// The header layout and kinds live in internal/wire, which xpcd shares.
type frameKind = wire.Kind

const (
	frameVersion = wire.Version

	kindMessage     = wire.KindMessage
	kindRequest     = wire.KindRequest
	kindReply       = wire.KindReply
	kindCredit      = wire.KindCredit
	kindConnect     = wire.KindConnect
	kindTerminating = wire.KindTerminating
	kindHello       = wire.KindHello
	kindRefused     = wire.KindRefused
	kindAck         = wire.KindAck
	kindWindow      = wire.KindWindow
	kindStalled     = wire.KindStalled

	flagOutOfLine = wire.FlagOutOfLine
	flagNoReply   = wire.FlagNoReply
)

type frameHeader struct {
	kind  frameKind
	flags uint16
	nfds  uint32
	id    uint64
}

func putFrameHeader(b []byte, h frameHeader) {
	wire.PutHeader(b, wire.Header{Kind: h.kind, Flags: h.flags, NFDs: h.nfds, ID: h.id})
}

func parseFrameHeader(b []byte) (frameHeader, error) {
	h, err := wire.ParseHeader(b)
	return frameHeader{kind: h.Kind, flags: h.Flags, nfds: h.NFDs, id: h.ID}, err
}
