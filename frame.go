package xpc

import "github.com/goxpc/xpc/internal/wire"

// The frame format, its header, kinds and limits are internal/wire's
// (docs/PROTOCOL.md §7), which xpcd shares.

// grantBytes is how many dequeued body bytes a receiver lets gather before
// it grants them back without waiting for a batch of messages.
const grantBytes = 256 << 10

// The names options.go checks its limits against.
const (
	maxFDsPerFrame = wire.MaxFDs
	initialWindow  = wire.InitialWindow
	maxLimitBytes  = wire.MaxLimitBytes
)
