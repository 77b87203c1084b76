package criteria

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/goxpc/xpc/internal/dbusdial"
)

const (
	// callTimeout bounds a call when the caller's context has no earlier
	// deadline.
	callTimeout = 5 * time.Second
	// busSignals is the buffer of the channel the bus's signals arrive on.
	busSignals = 16

	login1      = "org.freedesktop.login1"
	login1Path  = "/org/freedesktop/login1"
	nmName      = "org.freedesktop.NetworkManager"
	nmPath      = "/org/freedesktop/NetworkManager"
	propsIface  = "org.freedesktop.DBus.Properties"
	sessionPath = "/org/freedesktop/login1/session"
)

// matchRules are the signals that tell Changed something: logind's
// sessions coming and going and their properties, NetworkManager's
// properties, and either service coming or going.
func matchRules() [][]dbus.MatchOption {
	return [][]dbus.MatchOption{
		{dbus.WithMatchSender(login1), dbus.WithMatchInterface(login1 + ".Manager"), dbus.WithMatchMember("SessionNew")},
		{dbus.WithMatchSender(login1), dbus.WithMatchInterface(login1 + ".Manager"), dbus.WithMatchMember("SessionRemoved")},
		{dbus.WithMatchSender(login1), dbus.WithMatchInterface(propsIface), dbus.WithMatchMember("PropertiesChanged"), dbus.WithMatchPathNamespace(sessionPath)},
		{dbus.WithMatchSender(nmName), dbus.WithMatchInterface(propsIface), dbus.WithMatchMember("PropertiesChanged"), dbus.WithMatchObjectPath(nmPath)},
		{dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, login1)},
		{dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, nmName)},
	}
}

// connect tries the system bus once, within ctx, unless a dial is under
// way or the last failure is more recent than cfg.Retry. It returns the
// connection, or nil and why there is none.
func (l *Linux) connect(ctx context.Context) (*dbus.Conn, string) {
	l.mu.Lock()
	for l.dialing != nil {
		wait := l.dialing
		l.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, "the system bus did not answer in time: " + ctx.Err().Error()
		}
		l.mu.Lock()
	}
	if l.closed || l.bus != nil || time.Now().Before(l.nextDial) {
		bus, why := l.bus, l.busWhy
		if l.closed {
			why = "the sources are closed"
		}
		l.mu.Unlock()
		return bus, why
	}
	done := make(chan struct{})
	l.dialing = done
	l.dials++
	l.mu.Unlock()

	conn, err := dbusdial.Dial(ctx, l.cfg.SystemBus)
	signals := make(chan *dbus.Signal, busSignals)
	var owners map[string]string
	if err == nil {
		owners, err = watchBus(ctx, conn, signals)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	defer close(done)
	l.dialing = nil
	switch {
	case err != nil:
		l.nextDial = time.Now().Add(l.cfg.Retry)
		why := fmt.Sprintf("no system bus (%s): %v", l.cfg.SystemBus, err)
		if why != l.busWhy { // logged once, not at every retry
			l.log.Info("criteria: no system bus; logind and NetworkManager conditions are unknown", "address", l.cfg.SystemBus, "err", err)
		}
		l.busWhy = why
		return nil, why
	case l.closed:
		conn.Close()
		return nil, "the sources are closed"
	}
	l.bus, l.busWhy = conn, ""
	l.wg.Add(1)
	go l.forward(conn, signals, owners)
	l.log.Info("criteria: connected to the system bus", "address", l.cfg.SystemBus)
	return conn, ""
}

// watchBus delivers the signals Changed needs on signals (their match
// rules) and returns the unique names that own logind's and
// NetworkManager's names now ("" when none); on error it closes conn.
func watchBus(ctx context.Context, conn *dbus.Conn, signals chan *dbus.Signal) (map[string]string, error) {
	conn.Signal(signals)
	for _, rule := range matchRules() {
		if err := conn.AddMatchSignalContext(ctx, rule...); err != nil {
			conn.Close()
			return nil, fmt.Errorf("add match: %w", err)
		}
	}
	owners := map[string]string{}
	for _, name := range []string{login1, nmName} {
		var owner string
		err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, name).Store(&owner)
		var derr dbus.Error
		if err != nil && !(errors.As(err, &derr) && derr.Name == "org.freedesktop.DBus.Error.NameHasNoOwner") {
			conn.Close()
			return nil, fmt.Errorf("owner of %s: %w", name, err)
		}
		owners[name] = owner
	}
	return owners, nil
}

// forward turns the bus's signals into Changed until the connection
// closes (Close, or the bus went away), then forgets the connection.
// Only signals from the bus itself and from the present owners of
// logind's and NetworkManager's names count: a signal any client may send
// straight to this connection does not.
func (l *Linux) forward(conn *dbus.Conn, signals <-chan *dbus.Signal, owners map[string]string) {
	defer l.wg.Done()
	for s := range signals {
		if s.Sender == "org.freedesktop.DBus" && s.Name == "org.freedesktop.DBus.NameOwnerChanged" && len(s.Body) == 3 {
			name, _ := s.Body[0].(string)
			owner, _ := s.Body[2].(string)
			if _, ours := owners[name]; ours {
				owners[name] = owner
				l.notify()
			}
			continue
		}
		if s.Sender != "" && (s.Sender == owners[login1] || s.Sender == owners[nmName]) {
			l.notify()
		}
	}
	l.mu.Lock()
	lost := l.bus == conn
	if lost {
		l.bus = nil
		l.busWhy = "lost the system bus (" + l.cfg.SystemBus + ")"
		l.nextDial = time.Now().Add(l.cfg.Retry)
	}
	l.mu.Unlock()
	if lost {
		l.log.Info("criteria: lost the system bus", "address", l.cfg.SystemBus)
		l.notify()
	}
}

// busCall calls method of dest's object at path within ctx, without
// starting dest if it is not running. Its error reads as a Fact's Why
// ("logind is not on the system bus") and wraps the D-Bus error
// (dbus.Error) or the context's.
func (l *Linux) busCall(ctx context.Context, who, dest string, path dbus.ObjectPath, method string, args ...any) (*dbus.Call, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	conn, why := l.connect(ctx)
	if conn == nil {
		return nil, errors.New(why)
	}
	call := conn.Object(dest, path).CallWithContext(ctx, method, dbus.FlagNoAutoStart, args...)
	if call.Err == nil {
		return call, nil
	}
	var derr dbus.Error
	switch {
	case errors.As(call.Err, &derr) && (derr.Name == "org.freedesktop.DBus.Error.ServiceUnknown" || derr.Name == "org.freedesktop.DBus.Error.NameHasNoOwner"):
		return nil, fmt.Errorf("%s is not on the system bus%w", who, silent{call.Err})
	case errors.Is(call.Err, context.DeadlineExceeded) || errors.Is(call.Err, context.Canceled):
		return nil, fmt.Errorf("%s did not answer in time: %w", who, call.Err)
	}
	return nil, fmt.Errorf("%s: %w", who, call.Err)
}

// silent wraps an error without adding to the text of the error it is
// wrapped in.
type silent struct{ err error }

func (s silent) Error() string { return "" }
func (s silent) Unwrap() error { return s.err }
