package wire

import (
	"context"
	"encoding/binary"

	"github.com/goxpc/xpc/internal/sock"
)

// Every frame leaves through Send or SendNow, which set the header's
// descriptor count from the descriptors actually attached: the count is
// written nowhere else, so a frame and its descriptors always agree.
// The two differ only in where the frame goes and whether they wait.

// Send sends frame, which starts with its header (PutHeader), on a
// connection's socket, as one datagram with fds attached. It waits while
// the socket buffer is full, until ctx ends or s is closed. The
// descriptors stay the caller's.
func Send(ctx context.Context, s *sock.Socket, frame []byte, fds []int) error {
	binary.LittleEndian.PutUint32(frame[4:], uint32(len(fds)))
	return s.Send(ctx, frame, fds)
}

// SendNow sends frame as Send does, on fd, a socket descriptor, without
// waiting: if the socket buffer is full it fails with EAGAIN. It is for
// frames that must not wait: a connect request, a refusal, a one-shot
// lookup, an acknowledgement sent by a connection's reader.
func SendNow(fd int, frame []byte, fds []int) error {
	binary.LittleEndian.PutUint32(frame[4:], uint32(len(fds)))
	return sock.SendFD(fd, frame, fds)
}
