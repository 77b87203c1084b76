package polkit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/godbus/dbus/v5"

	"github.com/goxpc/xpc/internal/dbusdial"
)

// ActionApproveDaemon is the action xpcd asks about before it starts a
// daemon a user registered (contrib/polkit/org.goxpc.xpcd.policy).
const ActionApproveDaemon = "org.goxpc.xpcd.approve-daemon"

const (
	// MaxWait bounds one Authorize whose context has no earlier deadline.
	MaxWait = 5 * time.Minute
	// MaxPending is how many Authorize calls may wait for the authority
	// at once.
	MaxPending = 16
	// MaxDetails is the most details one request may carry.
	MaxDetails = 32
	// MaxDetailsBytes bounds the keys and values of one request's details
	// together.
	MaxDetailsBytes = 16 << 10
	// maxActionLen bounds an action id.
	maxActionLen = 255
	// callTimeout bounds the calls Connect makes to the bus itself.
	callTimeout = 5 * time.Second
)

// The authority's name on the bus, object and interface.
const (
	busName   = "org.freedesktop.PolicyKit1"
	authPath  = "/org/freedesktop/PolicyKit1/Authority"
	authIface = "org.freedesktop.PolicyKit1.Authority"
	// allowUserInteraction is the flag that lets an authentication
	// agent ask someone.
	allowUserInteraction uint32 = 1
	// dismissed is the detail of a result whose dialog was dismissed.
	dismissed = "polkit.dismissed"
)

// Errors of Connect and Authorize; errors.Is tells them apart.
var (
	// ErrUnavailable: no authority answers on the bus (its name has no
	// owner and none can be activated), or the bus cannot be reached.
	ErrUnavailable = errors.New("polkit: no authority on the bus")
	// ErrChallenge: the action needs authentication, and the authority
	// had nobody to ask (no authentication agent for the subject).
	ErrChallenge = errors.New("polkit: authentication required, and no authentication agent could ask for it")
	// ErrDismissed: the person asked dismissed the authorization dialog.
	ErrDismissed = errors.New("polkit: the authorization dialog was dismissed")
	// ErrFailed: the authority answered with an error, or with an answer
	// of the wrong shape.
	ErrFailed = errors.New("polkit: the authority failed")
	// ErrInvalid: the request cannot be sent (nothing was sent).
	ErrInvalid = errors.New("polkit: invalid request")
	// ErrClosed: the Authority was closed.
	ErrClosed = errors.New("polkit: authority closed")
)

// Authority asks polkit's authority over one bus connection. Its methods
// may be called from several goroutines at once.
type Authority struct {
	conn  *dbus.Conn
	slots chan struct{} // one token per Authorize in flight
	seq   atomic.Uint64 // cancellation ids
	done  chan struct{} // closed by Close
	once  sync.Once
}

// Connect connects to the bus at busAddress ("" is the system bus:
// $DBUS_SYSTEM_BUS_ADDRESS, or /run/dbus/system_bus_socket) within ctx,
// and returns an Authority on it if polkit's authority answers there: its
// name has an owner or can be activated. Otherwise it returns an error
// wrapping ErrUnavailable.
func Connect(ctx context.Context, busAddress string) (*Authority, error) {
	if busAddress == "" {
		busAddress = dbusdial.SystemBus()
	}
	conn, err := dbusdial.Dial(ctx, busAddress)
	if err != nil {
		return nil, fmt.Errorf("%w: bus %.200s: %w", ErrUnavailable, busAddress, err)
	}
	if err := present(ctx, conn); err != nil {
		conn.Close()
		return nil, err
	}
	return New(conn), nil
}

// present returns nil if the authority's name has an owner on conn's bus
// or can be activated, an error wrapping ErrUnavailable if not.
func present(ctx context.Context, conn *dbus.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	bus := conn.BusObject()
	var has bool
	if err := bus.CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, busName).Store(&has); err != nil {
		return fmt.Errorf("%w: asking the bus for %s: %w", ErrUnavailable, busName, err)
	}
	if has {
		return nil
	}
	var names []string
	if err := bus.CallWithContext(ctx, "org.freedesktop.DBus.ListActivatableNames", 0).Store(&names); err != nil {
		return fmt.Errorf("%w: asking the bus for %s: %w", ErrUnavailable, busName, err)
	}
	for _, n := range names {
		if n == busName {
			return nil
		}
	}
	return fmt.Errorf("%w: %s has no owner and cannot be activated", ErrUnavailable, busName)
}

// New returns an Authority that asks over conn, which it owns from now
// on: Close closes it. New does not check that the authority is there.
func New(conn *dbus.Conn) *Authority {
	return &Authority{conn: conn, slots: make(chan struct{}, MaxPending), done: make(chan struct{})}
}

// Close closes the Authority and its connection. Authorize calls under way
// end with ErrClosed.
func (a *Authority) Close() error {
	var err error
	a.once.Do(func() {
		close(a.done)
		err = a.conn.Close()
	})
	return err
}

// subject is polkit's Subject, (sa{sv}).
type subject struct {
	Kind    string
	Details map[string]dbus.Variant
}

// Authorize asks whether the process pid, started startTime clock ticks
// after boot and running as uid, may do action, with details for the
// dialog and rules. An authentication agent may ask someone (flag
// allow user interaction); Authorize waits for the answer, within ctx and
// MaxWait. It returns true only if the authority says the process is
// authorized; see the package's doc for its errors.
func (a *Authority) Authorize(ctx context.Context, pid int, startTime uint64, uid uint32, action string, details map[string]string) (bool, error) {
	if err := checkRequest(pid, uid, action, details); err != nil {
		return false, err
	}
	select {
	case a.slots <- struct{}{}:
		defer func() { <-a.slots }()
	case <-ctx.Done():
		return false, fmt.Errorf("polkit: waiting for one of %d checks under way to end: %w", MaxPending, ctx.Err())
	case <-a.done:
		return false, ErrClosed
	}
	select {
	case <-a.done:
		return false, ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("polkit: %s for pid %d: %w", action, pid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, MaxWait)
	defer cancel()
	if details == nil {
		details = map[string]string{}
	}
	id := "goxpc-" + strconv.FormatUint(a.seq.Add(1), 10)
	subj := subject{Kind: "unix-process", Details: map[string]dbus.Variant{
		"pid":        dbus.MakeVariant(uint32(pid)),
		"start-time": dbus.MakeVariant(startTime),
		"uid":        dbus.MakeVariant(int32(uid)),
	}}
	obj := a.conn.Object(busName, authPath)
	call := obj.CallWithContext(ctx, authIface+".CheckAuthorization", 0, subj, action, details, allowUserInteraction, id)
	if call.Err != nil {
		if ctx.Err() != nil {
			// The authority drops the check and its dialog. No reply is
			// awaited: a broken authority must not hold the caller.
			obj.Go(authIface+".CancelCheckAuthorization", dbus.FlagNoReplyExpected, nil, id)
			return false, fmt.Errorf("polkit: %s for pid %d: %w", action, pid, ctx.Err())
		}
		return false, a.callError(call.Err)
	}
	return readResult(call.Body)
}

// callError is the error of a CheckAuthorization that failed.
func (a *Authority) callError(err error) error {
	select {
	case <-a.done:
		return ErrClosed
	default:
	}
	var derr dbus.Error
	switch {
	case !errors.As(err, &derr):
		// Not an answer: the connection to the bus failed.
		return fmt.Errorf("%w: lost the bus: %w", ErrUnavailable, err)
	case gone[derr.Name]:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrFailed, derr.Name, err)
}

// gone are the bus's errors that say the authority is not there, or went
// away (or stopped answering) before it answered.
var gone = map[string]bool{
	"org.freedesktop.DBus.Error.ServiceUnknown": true,
	"org.freedesktop.DBus.Error.NameHasNoOwner": true,
	"org.freedesktop.DBus.Error.NoReply":        true,
}

// readResult reads CheckAuthorization's answer, (bba{ss}).
func readResult(body []any) (bool, error) {
	var fields []any
	if len(body) == 1 {
		fields, _ = body[0].([]any)
	}
	if len(fields) != 3 {
		return false, fmt.Errorf("%w: an answer of the wrong shape (%d values)", ErrFailed, len(body))
	}
	authorized, ok1 := fields[0].(bool)
	challenge, ok2 := fields[1].(bool)
	details, ok3 := fields[2].(map[string]string)
	if !ok1 || !ok2 || !ok3 {
		return false, fmt.Errorf("%w: an answer of the wrong shape, not (bba{ss})", ErrFailed)
	}
	switch {
	case authorized:
		return true, nil
	case details[dismissed] == "true":
		return false, ErrDismissed
	case challenge:
		return false, ErrChallenge
	}
	return false, nil
}

// checkRequest returns an error wrapping ErrInvalid if the request cannot
// be sent as it is: D-Bus strings must be UTF-8 without NUL (a bus drops a
// connection that sends others), and polkit's action ids are lower-case
// ASCII letters, digits, '.' and '-'.
func checkRequest(pid int, uid uint32, action string, details map[string]string) error {
	switch {
	case pid <= 0 || pid > math.MaxInt32:
		return fmt.Errorf("%w: pid %d", ErrInvalid, pid)
	case uid > math.MaxInt32:
		return fmt.Errorf("%w: uid %d", ErrInvalid, uid)
	case action == "" || len(action) > maxActionLen:
		return fmt.Errorf("%w: action id of %d bytes", ErrInvalid, len(action))
	case len(details) > MaxDetails:
		return fmt.Errorf("%w: %d details, at most %d", ErrInvalid, len(details), MaxDetails)
	}
	for _, c := range []byte(action) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("%w: action id %.64q: only a-z, 0-9, '.' and '-'", ErrInvalid, action)
		}
	}
	size := 0
	for k, v := range details {
		size += len(k) + len(v)
		if !dbusString(k) || !dbusString(v) || k == "" {
			return fmt.Errorf("%w: detail %.64q: not a D-Bus string", ErrInvalid, k)
		}
	}
	if size > MaxDetailsBytes {
		return fmt.Errorf("%w: details of %d bytes, at most %d", ErrInvalid, size, MaxDetailsBytes)
	}
	return nil
}

// dbusString reports whether s may be sent as a D-Bus string.
func dbusString(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return false
		}
	}
	return true
}
