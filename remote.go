package xpc

import (
	"encoding/binary"
	"fmt"
)

// WrapperMagic begins every RemoteXPC message wrapper (docs/PROTOCOL.md §4).
const WrapperMagic uint32 = 0x29B00B92

// WrapperHeaderSize is the size of the wrapper's header in bytes.
const WrapperHeaderSize = 24

// Flags of the RemoteXPC message wrapper.
const (
	FlagAlwaysSet     uint32 = 0x00000001
	FlagDataPresent   uint32 = 0x00000100
	FlagWantsReply    uint32 = 0x00010000
	FlagReply         uint32 = 0x00020000
	FlagInitHandshake uint32 = 0x00400000
)

// WrapperHeader is the 24-byte header RemoteXPC puts before each body.
type WrapperHeader struct {
	Flags   uint32
	BodyLen uint64
	ID      uint64
}

// AppendWrapper appends the header for a body of bodyLen bytes.
func AppendWrapper(dst []byte, flags uint32, id uint64, bodyLen int) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, WrapperMagic)
	dst = binary.LittleEndian.AppendUint32(dst, flags)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(bodyLen))
	return binary.LittleEndian.AppendUint64(dst, id)
}

// IsWrapped reports whether b starts with the RemoteXPC wrapper magic.
func IsWrapped(b []byte) bool {
	return len(b) >= 4 && binary.LittleEndian.Uint32(b) == WrapperMagic
}

// ParseWrapper splits a complete wrapped message into its header and body.
// The body length must match the bytes that follow exactly (an empty body is
// allowed: RemoteXPC sends header-only messages). A RemoteXPC message's body
// has the RemoteXPC magic, MagicRemote, which EncodeWrapped always writes: a
// body with the local magic ("@XPC") is refused with ErrBadMagic (see
// docs/PROTOCOL.md §4). Errors are *DecodeError.
func ParseWrapper(b []byte) (WrapperHeader, []byte, error) {
	var h WrapperHeader
	if len(b) < WrapperHeaderSize {
		return h, nil, &DecodeError{Offset: len(b), Err: ErrTruncated,
			Detail: fmt.Sprintf("wrapper header needs %d bytes, have %d", WrapperHeaderSize, len(b))}
	}
	if m := binary.LittleEndian.Uint32(b); m != WrapperMagic {
		return h, nil, &DecodeError{Offset: 0, Err: ErrBadMagic, Detail: fmt.Sprintf("wrapper magic %#08x", m)}
	}
	h.Flags = binary.LittleEndian.Uint32(b[4:])
	h.BodyLen = binary.LittleEndian.Uint64(b[8:])
	h.ID = binary.LittleEndian.Uint64(b[16:])
	rest := uint64(len(b) - WrapperHeaderSize)
	switch {
	case h.BodyLen > rest:
		return h, nil, &DecodeError{Offset: 8, Err: ErrTruncated,
			Detail: fmt.Sprintf("body length %d but %d bytes follow", h.BodyLen, rest)}
	case h.BodyLen < rest:
		return h, nil, &DecodeError{Offset: WrapperHeaderSize + int(h.BodyLen), Err: ErrTrailingBytes,
			Detail: fmt.Sprintf("%d bytes after the body", rest-h.BodyLen)}
	}
	body := b[WrapperHeaderSize:]
	if len(body) >= 4 && binary.LittleEndian.Uint32(body) == MagicLocal {
		return h, nil, &DecodeError{Offset: WrapperHeaderSize, Err: ErrBadMagic,
			Detail: fmt.Sprintf("body magic %#08x (\"@XPC\", local XPC) in a RemoteXPC message, whose bodies have the magic %#08x", MagicLocal, MagicRemote)}
	}
	return h, body, nil
}

// RemoteMessage is a decoded RemoteXPC message. Body is nil for a header-only one.
type RemoteMessage struct {
	Header WrapperHeader
	Body   Object
}

// DecodeWrapped parses a complete wrapped message and its body, which must
// have the RemoteXPC magic (see ParseWrapper). Error offsets count from the
// start of the wrapper.
func DecodeWrapped(b []byte) (RemoteMessage, error) {
	h, body, err := ParseWrapper(b)
	if err != nil {
		return RemoteMessage{}, err
	}
	m := RemoteMessage{Header: h}
	if len(body) == 0 {
		return m, nil
	}
	m.Body, err = Decode(body)
	if de, ok := err.(*DecodeError); ok {
		de.Offset += WrapperHeaderSize
	}
	return m, err
}

// EncodeWrapped serializes m with the RemoteXPC body magic behind its
// wrapper header, the one magic a wrapped body has; BodyLen is computed. A
// nil Body gives a header-only message.
func EncodeWrapped(m RemoteMessage) ([]byte, error) {
	if m.Body == nil {
		return AppendWrapper(nil, m.Header.Flags, m.Header.ID, 0), nil
	}
	b := AppendWrapper(make([]byte, 0, 256), m.Header.Flags, m.Header.ID, 0)
	b, att, err := AppendBody(b, MagicRemote, m.Body)
	if err != nil {
		return nil, err
	}
	if len(att) > 0 {
		return nil, &EncodeError{Err: fmt.Errorf("%w: RemoteXPC cannot carry out-of-band objects", ErrAttachments)}
	}
	binary.LittleEndian.PutUint64(b[8:], uint64(len(b)-WrapperHeaderSize))
	return b, nil
}
