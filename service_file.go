package xpc

import (
	"context"
	"fmt"
	"os"
)

// CheckInFile is CheckIn over a check-in channel the caller holds rather
// than one inherited from xpcd: f, the service's end of the socket pair
// xpcd made for an instance of the job label. It is for a service that
// xpcd runs inside a process that already exists instead of starting one:
// xpctest's in-process services (xpctest.Server.Serve), which the xpcd of
// a test starts on its own goroutines. A process xpcd starts calls CheckIn.
//
// f stays the caller's: the Service uses a duplicate. xpcd knows the
// service by the channel, so label is only what Label returns. ctx bounds
// nothing yet (the channel is already open); it is there, as for CheckIn,
// for the check-in protocol to grow. Options are CheckIn's. After a
// restart of xpcd the service asks to be adopted again through the
// bootstrap sockets CheckIn's would (XPCD_ROOT's, or the system's): an
// xpcd that did not start it refuses.
func CheckInFile(ctx context.Context, f *os.File, label string, opts ...Option) (*Service, error) {
	cfg, err := configure(inCheckInFile, opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f == nil {
		return nil, fmt.Errorf("xpc: CheckInFile: %w", ErrNilObject)
	}
	ctl, err := NewConnectionFromFile(f)
	if err != nil {
		return nil, err // f is not a connected SOCK_SEQPACKET socket
	}
	return startService(cfg, ctl, label), nil
}
