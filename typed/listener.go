package typed

import "github.com/goxpc/xpc"

// ServeListener serves h on every connection l accepts (setting it as the
// peer's handler and activating the peer), and activates l. l must not be
// active yet.
func ServeListener(l *xpc.Listener, h xpc.Handler) {
	l.SetHandler(func(peer *xpc.Connection) {
		peer.SetHandler(h)
		peer.Activate()
	})
	l.Activate()
}
