package xpcd

import (
	"context"
	"log/slog"
	"time"

	"github.com/goxpc/xpc/internal/login1"
)

// LoginSystemBus is the value of Config.LoginBus that names the system
// bus.
const LoginSystemBus = "system"

const (
	// loginRetry is how long after failing to reach logind, or losing it,
	// xpcd tries again (the bus, or logind, may start after xpcd does).
	loginRetry = 30 * time.Second
	// loginMinInterval is the least time between two readings of logind's
	// users: anyone on the bus may send UserNew, and a flood of them must
	// not keep xpcd and logind busy.
	loginMinInterval = time.Second
)

// loginLink makes a user's domain when they log in (internal/login1): at
// start, the domains of the users logind has; then, at each UserNew, of
// those it has then. Only users logind lists count, never a signal's
// word; root's domain is made only when root names it, as always. Where
// logind is not on the bus, nothing happens (logged once), and it is
// looked for again every loginRetry. A system instance's only.
type loginLink struct {
	bus string // address; "" the system bus
	m   *supervisor
	log *slog.Logger

	stop chan struct{}
	done chan struct{}
}

// newLoginLink returns the link for Config.LoginBus bus, nil when bus is
// "" (none) or the instance is a --user one.
func newLoginLink(bus string, m *supervisor, user bool, log *slog.Logger) *loginLink {
	if bus == "" || user {
		return nil
	}
	if bus == LoginSystemBus {
		bus = ""
	}
	return &loginLink{bus: bus, m: m, log: log, stop: make(chan struct{}), done: make(chan struct{})}
}

func (l *loginLink) name() string { return "login" }

// start starts following logind, in a goroutine: its absence is no error.
func (l *loginLink) start(context.Context) error {
	go l.run()
	return nil
}

// close stops following logind and waits for the goroutine.
func (l *loginLink) close(ctx context.Context) error {
	close(l.stop)
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *loginLink) run() {
	defer close(l.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.stop:
			cancel()
		case <-l.done:
		}
	}()
	missing := false
	for {
		w, err := login1.Connect(ctx, l.bus)
		if err != nil {
			if !missing {
				missing = true
				l.log.Info("no logind: users' domains are made when first used, not at login", "bus", l.busName(), "err", err)
			}
		} else {
			if missing {
				l.log.Info("logind found: users' domains are made at login", "bus", l.busName())
				missing = false
			}
			l.follow(ctx, w)
			w.Close()
		}
		select {
		case <-l.stop:
			return
		case <-time.After(loginRetry):
		}
	}
}

// follow makes the domains of logind's users now and at each hint, until
// the connection ends or xpcd stops.
func (l *loginLink) follow(ctx context.Context, w *login1.Watcher) {
	var last time.Time
	for {
		if wait := time.Until(last.Add(loginMinInterval)); wait > 0 {
			select {
			case <-l.stop:
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		uids, err := w.Users(ctx)
		if err != nil {
			l.log.Info("logind: reading its users failed", "err", err)
			return
		}
		for _, uid := range uids {
			if uid != 0 {
				l.m.ensureDomain(UserDomain(uid), uid)
			}
		}
		select {
		case <-l.stop:
			return
		case _, ok := <-w.Changed():
			if !ok {
				l.log.Info("logind: the connection to the bus ended; looking again", "retry", loginRetry)
				return
			}
		}
	}
}

// busName names the bus in the log.
func (l *loginLink) busName() string {
	if l.bus == "" {
		return LoginSystemBus
	}
	return l.bus
}
