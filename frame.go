package xpc

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// The frame format, its header, kinds and limits are internal/wire's
// (docs/PROTOCOL.md §7), which xpcd shares.

var framePool = sync.Pool{New: func() any { return new(writer) }}

// unsentError is a frame that could not be built (an encoding error, too
// large, too many descriptors): nothing was sent, and the link is fine.
type unsentError struct{ err error }

func (e *unsentError) Error() string { return e.err.Error() }

func (e *unsentError) Unwrap() error { return e.err }

// buildFrame encodes body into w as one frame of kind k, a memfd body if
// it is too large for a datagram, and returns the frame with the
// descriptors that go with it, which the caller sends with wire.Send or
// wire.SendNow and closes once sent.
func buildFrame(w *writer, k wire.Kind, id uint64, body Object, maxSize, maxFDs int) ([]byte, []int, error) {
	w.reset(w.b[:0], Limits{MaxSize: maxSize})
	w.b = append(w.b, make([]byte, wire.HeaderSize)...)
	w.start = wire.HeaderSize
	if err := w.body(MagicLocal, body); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, nil, fmt.Errorf("xpc: message larger than the limit of %d bytes (WithMaxMessageSize): %w", maxSize, ErrTooLarge)
		}
		return nil, nil, err
	}
	if len(w.att) > maxFDs {
		return nil, nil, fmt.Errorf("xpc: %w: %d, limit %d", ErrTooManyFDs, len(w.att), maxFDs)
	}
	h := wire.Header{Kind: k, ID: id}
	var fds []int // nil for the common frame, which carries none
	if n := len(w.att); n > 0 || len(w.b) > wire.InlineMax {
		fds = make([]int, 0, n+1)
	}
	frame := w.b
	if len(frame) > wire.InlineMax {
		memfd, err := wire.WriteOutOfLine(frame[wire.HeaderSize:])
		if err != nil {
			return nil, nil, fmt.Errorf("xpc: %w", err)
		}
		fds = append(fds, memfd)
		h.Flags |= wire.FlagOutOfLine
		frame = frame[:wire.HeaderSize]
	}
	for _, a := range w.att {
		fd, err := dupFile(a.File())
		if err != nil {
			closeRawFDs(fds)
			return nil, nil, wrapf(err, "attach %v", a.Type())
		}
		fds = append(fds, fd)
	}
	// The descriptor count is left to wire.Send and wire.SendNow, which
	// set it from the descriptors they attach.
	wire.PutHeader(frame, h)
	return frame, fds, nil
}

func closeRawFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func closeRaw(fd int) { unix.Close(fd) }

// dupFile returns a close-on-exec duplicate of f's descriptor without
// changing f (os.File.Fd would make a pollable file blocking).
func dupFile(f *os.File) (int, error) {
	if f == nil {
		return -1, ErrNilObject
	}
	return sock.DupConn(f)
}
