package xpcd

import (
	"fmt"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
)

// refuse answers a pipelined lookup that failed: it writes a refused frame
// holding oe's error object into end, the service's end of the client's
// socket pair, and closes end. The client reads it ahead of anything else
// on its end and believes it because the kernel stamps it with xpcd's
// identity. If the frame cannot be written (the client has gone), closing
// end is all there is to do: the client, if still there, sees its
// connection interrupted.
func refuse(end *xpc.FD, oe *opError) error {
	defer end.Close()
	body, err := xpc.Encode(oe.object())
	if err != nil {
		return fmt.Errorf("refusal: %w", err)
	}
	frame := wire.RefusedFrame(body)
	rc, err := end.File().SyscallConn()
	if err != nil {
		return fmt.Errorf("refusal: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		// Only into what a client makes for a lookup: xpcd writes
		// nothing onto any other kind of socket it is handed.
		if serr = sock.CheckSeqpacket(int(fd)); serr != nil {
			return
		}
		// The socket is new and nobody has read it: a small frame never
		// has to wait.
		if serr = wire.SendNow(int(fd), frame, nil); serr != nil {
			serr = fmt.Errorf("send: %w", serr)
		}
	}); err != nil {
		return fmt.Errorf("refusal: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("refusal: %w", serr)
	}
	return nil
}
