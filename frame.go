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
