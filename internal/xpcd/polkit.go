package xpcd

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/goxpc/xpc/internal/polkit"
)

// PolkitSystemBus is the value of Config.PolkitBus that names the system
// bus.
const PolkitSystemBus = "system"

const (
	// polkitStartWait bounds looking for polkit's authority at Start: a
	// bus that does not answer must not hold xpcd's start.
	polkitStartWait = 2 * time.Second
	// polkitRetry is how long after failing to reach the authority xpcd
	// tries again, when it is next needed (the bus, or polkitd, may start
	// after xpcd does).
	polkitRetry = 30 * time.Second
)

// polkitLink is xpcd's link to polkit's authority (internal/polkit) on the
// bus Config.PolkitBus names: the approval authority of the daemons users
// register. It looks for the authority at start, and again when it is
// asked and has none (at most every polkitRetry); when there is none,
// Authorize fails at once with polkit.ErrUnavailable, and the approval
// waits for an administrator. That the authority is missing is logged
// once (info), until it is found again. It closes before the supervisor,
// so that questions under way end and the supervisor's goroutines with
// them.
type polkitLink struct {
	bus string // address; "" is the system bus
	log *slog.Logger

	mu       sync.Mutex // held while connecting, so that one dial is under way
	auth     *polkit.Authority
	nextDial time.Time
	missing  bool // logged that there is none
	closed   bool
}

// newPolkitLink returns the link to the authority on bus (Config.PolkitBus),
// or nil when bus is "" (none).
func newPolkitLink(bus string, log *slog.Logger) *polkitLink {
	switch bus {
	case "":
		return nil
	case PolkitSystemBus:
		bus = ""
	}
	return &polkitLink{bus: bus, log: log}
}

// approvalAuthority returns l as the supervisor's approval authority: an
// interface holding nil when l is nil, so that the supervisor sees none.
func (l *polkitLink) approvalAuthority() interface {
	Authorize(ctx context.Context, pid int, startTime uint64, uid uint32, action string, details map[string]string) (bool, error)
} {
	if l == nil {
		return nil
	}
	return l
}

func (l *polkitLink) name() string { return "polkit" }

// start looks for the authority, within polkitStartWait; its absence is
// no error.
func (l *polkitLink) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, polkitStartWait)
	defer cancel()
	l.authority(ctx)
	return nil
}

// close closes the connection: questions under way end with
// polkit.ErrClosed.
func (l *polkitLink) close(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.auth == nil {
		return nil
	}
	err := l.auth.Close()
	l.auth = nil
	return err
}

// authority returns the authority, connecting to it if there is none and
// the last try is older than polkitRetry.
func (l *polkitLink) authority(ctx context.Context) (*polkit.Authority, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, polkit.ErrClosed
	case l.auth != nil:
		return l.auth, nil
	case time.Now().Before(l.nextDial):
		return nil, polkit.ErrUnavailable
	}
	a, err := polkit.Connect(ctx, l.bus)
	if err != nil {
		l.nextDial = time.Now().Add(polkitRetry)
		if !l.missing {
			l.missing = true
			l.log.Info("no polkit authority: daemons users register wait for an administrator (xpcctl approval approve)", "bus", l.busName(), "err", err)
		}
		return nil, err
	}
	if l.missing {
		l.log.Info("polkit authority found: it is asked to approve daemons users register", "bus", l.busName())
	}
	l.auth, l.missing = a, false
	return a, nil
}

// busName names the bus in the log.
func (l *polkitLink) busName() string {
	if l.bus == "" {
		return PolkitSystemBus
	}
	return l.bus
}

// Authorize asks the authority (polkit.Authority.Authorize). When the
// authority or the bus has gone, the connection is dropped, to be made
// again when next needed.
func (l *polkitLink) Authorize(ctx context.Context, pid int, startTime uint64, uid uint32, action string, details map[string]string) (bool, error) {
	a, err := l.authority(ctx)
	if err != nil {
		return false, err
	}
	ok, err := a.Authorize(ctx, pid, startTime, uid, action, details)
	if errors.Is(err, polkit.ErrUnavailable) {
		l.mu.Lock()
		if l.auth == a {
			l.auth = nil
			a.Close()
		}
		l.mu.Unlock()
	}
	return ok, err
}
