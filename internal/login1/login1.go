package login1

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/goxpc/xpc/internal/dbusdial"
)

// logind's name on the bus, its manager object and interface.
const (
	BusName   = "org.freedesktop.login1"
	Path      = "/org/freedesktop/login1"
	Interface = "org.freedesktop.login1.Manager"
)

// MaxUsers bounds the users Users returns.
const MaxUsers = 4096

// callTimeout bounds a call to logind when the caller's context has no
// earlier deadline.
const callTimeout = 5 * time.Second

// ErrUnavailable: logind is not on the bus, or the bus cannot be reached.
var ErrUnavailable = errors.New("login1: logind unavailable")

// Watcher follows logind's users over its own connection to the bus. Its
// methods are safe for concurrent use.
type Watcher struct {
	conn    *dbus.Conn
	changed chan struct{}
}

// Connect connects to the bus at busAddress ("" for the system bus),
// subscribes to UserNew and checks that logind answers. The Watcher is the
// caller's to close.
func Connect(ctx context.Context, busAddress string) (*Watcher, error) {
	if busAddress == "" {
		busAddress = dbusdial.SystemBus()
	}
	conn, err := dbusdial.Dial(ctx, busAddress)
	if err != nil {
		return nil, fmt.Errorf("%w: bus %.200s: %w", ErrUnavailable, busAddress, err)
	}
	w, err := watch(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return w, nil
}

func watch(ctx context.Context, conn *dbus.Conn) (*Watcher, error) {
	if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchObjectPath(Path),
		dbus.WithMatchInterface(Interface), dbus.WithMatchMember("UserNew")); err != nil {
		return nil, fmt.Errorf("%w: subscribing to UserNew: %w", ErrUnavailable, err)
	}
	w := &Watcher{conn: conn, changed: make(chan struct{}, 1)}
	if _, err := w.Users(ctx); err != nil {
		return nil, err
	}
	sig := make(chan *dbus.Signal, 16)
	conn.Signal(sig)
	go w.forward(sig)
	return w, nil
}

// forward turns the bus's signals into hints on changed, coalesced, and
// closes changed when the connection ends (the bus closes sig).
func (w *Watcher) forward(sig <-chan *dbus.Signal) {
	defer close(w.changed)
	for s := range sig {
		if s == nil || s.Path != Path || s.Name != Interface+".UserNew" {
			continue
		}
		select {
		case w.changed <- struct{}{}:
		default: // a hint is pending already
		}
	}
}

// Changed receives a value when logind may have a new user, at most one
// pending; it is closed when the connection to the bus ends (the bus or
// logind's connection gone, or Close).
func (w *Watcher) Changed() <-chan struct{} { return w.changed }

// Users asks logind for its users (ListUsers): their uids, sorted, at most
// MaxUsers.
func (w *Watcher) Users(ctx context.Context) ([]uint32, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var users []struct {
		UID  uint32
		Name string
		Path dbus.ObjectPath
	}
	if err := w.conn.Object(BusName, Path).CallWithContext(ctx, Interface+".ListUsers", 0).Store(&users); err != nil {
		return nil, fmt.Errorf("%w: ListUsers: %w", ErrUnavailable, err)
	}
	uids := make([]uint32, 0, min(len(users), MaxUsers))
	for _, u := range users[:min(len(users), MaxUsers)] {
		uids = append(uids, u.UID)
	}
	slices.Sort(uids)
	return slices.Compact(uids), nil
}

// Close closes the connection; Changed is closed.
func (w *Watcher) Close() error { return w.conn.Close() }
