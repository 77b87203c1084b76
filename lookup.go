package xpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// Connections to named services, through xpcd (docs/XPCD.md): the
// pipelined lookup, the shared Bootstrap connection, and the refusals
// xpcd, or a listener, answers with on the connection's own socket.

// NewServiceConnection returns an inactive connection to the service named
// name, through xpcd. It looks the name up at its first send; xpcd starts
// the service if it is not running. When the service goes away (crash,
// idle exit, upgrade), pending replies fail with ErrInterrupted, the handler
// gets an ErrInterrupted event, and the next send looks the name up again.
// The lookup is pipelined: the send that makes it does not wait for xpcd,
// and the message goes out at once, to be read by the service when xpcd
// hands it over. A name xpcd does not know, or may not give this caller,
// makes the connection invalid (ErrServiceNotFound, ErrDenied, ...) when xpcd's
// answer arrives: pending replies fail with that error and the handler
// gets it as its last event; a one-way Send made before then has already
// returned nil, as in XPC. When xpcd cannot start the service (its
// launch failed, it ended before checking the name in, it is throttled
// after that, its job was disabled or unloaded), it says so at once: the
// send fails with ErrInterrupted and ErrLaunchFailed, the reason saying
// why, and the connection stays usable. If nothing listens on the
// bootstrap socket, the send fails with ErrNoBootstrap; if no xpcd
// answers otherwise, with ErrInterrupted; the connection stays usable.
//
// Peer is the service's identity as the kernel stamped it on the service's
// first frame (SO_PASSCRED and SO_PASSPIDFD: pid, uid, gid and a pidfd,
// never the service's own word). It is known by the time the first reply
// arrives, and nil before that and between an interruption and the next
// exchange.
func NewServiceConnection(name string, opts ...Option) (*Connection, error) {
	cfg, err := configure(inNewServiceConnection, opts)
	if err != nil {
		return nil, err
	}
	if name == "" || !validCString(name) {
		return nil, fmt.Errorf("xpc: NewServiceConnection(%q): not a valid service name", name)
	}
	if cfg.boot != nil && cfg.bootstrap != nil {
		return nil, errors.New("xpc: NewServiceConnection: WithBootstrap and WithBootstrapSocket together (give the socket to NewBootstrap)")
	}
	dial := func(ctx context.Context) (linkEnd, error) { return lookupService(ctx, cfg, name) }
	return newDialConnection(cfg, dial, true), nil
}

func bootstrapSockets(cfg config) []string {
	if cfg.bootstrap != nil {
		return cfg.bootstrap
	}
	return bootstrap.ClientSockets()
}

// dialBootstrap is dialFirst for the Notifier and a Service's adoption,
// for which no xpcd running is an interruption they wait out.
func dialBootstrap(ctx context.Context, cfg config, handler func(*Connection) Handler) (*Connection, error) {
	c, err := dialFirst(ctx, cfg, handler)
	if nb := (*noBootstrapError)(nil); errors.As(err, &nb) {
		return nil, interruptedError(nb.err, "no bootstrap server (xpcd) answers")
	}
	return c, err
}

// dialFirst connects to the first bootstrap socket that answers and
// activates the connection with the handler that handler, if not nil,
// returns for it, so that nothing xpcd sends arrives before the handler.
// With nothing listening on any, it fails with ErrNoBootstrap.
func dialFirst(ctx context.Context, cfg config, handler func(*Connection) Handler) (*Connection, error) {
	var errs []error
	for _, path := range bootstrapSockets(cfg) {
		c, err := DialUnix(ctx, path)
		if err == nil {
			if handler != nil {
				c.SetHandler(handler(c))
			}
			c.Activate()
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, unreachable(bootstrapSockets(cfg), errs)
}

// unreachable is the error of a lookup or a dial that no bootstrap socket
// of paths answered, errs saying why for each: ErrNoBootstrap if nothing
// listens on any (no xpcd is running), an interruption otherwise.
func unreachable(paths []string, errs []error) error {
	cause := errors.Join(errs...)
	if len(errs) == 0 {
		return interruptedError(cause, "no bootstrap server (xpcd) answers")
	}
	for _, err := range errs {
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ECONNREFUSED) {
			return interruptedError(cause, "no bootstrap server (xpcd) answers")
		}
	}
	return &noBootstrapError{paths: paths[:len(errs)], err: cause}
}

// noBootstrapError is ErrNoBootstrap's error: nothing listens on paths.
type noBootstrapError struct {
	paths []string
	err   error // each connect's error
}

// Error says it on one line, with the fix: "xpc: no xpcd is running:
// nothing listens on PATH; start xpcd --user, or systemctl --user start
// xpcd" (for the system instance's socket alone, xpcd --system as root).
func (e *noBootstrapError) Error() string {
	return fmt.Sprintf("xpc: %v: nothing listens on %s; %s", ErrNoBootstrap, strings.Join(e.paths, " or "), bootstrap.StartHint(e.paths))
}

// Is matches ErrNoBootstrap.
func (e *noBootstrapError) Is(target error) bool { return target == ErrNoBootstrap }

// Unwrap returns the connects' errors.
func (e *noBootstrapError) Unwrap() error { return e.err }

// ErrBootstrapClosed is the cause of a lookup through a Bootstrap that was
// closed.
var ErrBootstrapClosed = errors.New("bootstrap closed")

// Bootstrap keeps one connection to xpcd open for service lookups, shared
// by every connection made with WithBootstrap(b). Without one, each lookup
// connects to xpcd and disconnects again; a process that connects to
// services often saves that, as an http.Transport saves connecting for
// each request. When xpcd restarts, the next lookup connects again. A
// Bootstrap is safe for concurrent use; close it when done.
type Bootstrap struct {
	cfg config

	mu      sync.Mutex
	conn    *Connection   // nil until the first lookup, and after Close
	dialing chan struct{} // closed when the dial in progress ends; nil if none
	closed  bool
	whys    map[whyKey]*whyCall // exit-reason questions in progress (exitReason)
}

// NewBootstrap returns a Bootstrap that connects, at its first lookup, to
// the xpcd that WithBootstrapSocket names, or else to the one the
// environment selects, as NewServiceConnection does. WithBootstrapSocket
// is the only option it takes.
func NewBootstrap(opts ...Option) (*Bootstrap, error) {
	cfg, err := configure(inNewBootstrap, opts)
	if err != nil {
		return nil, err
	}
	return &Bootstrap{cfg: cfg}, nil
}

// get returns the live connection to xpcd, connecting if there is none.
// One caller dials at a time; the others wait for it, each for as long as
// its own ctx allows, and then use its connection or dial in turn.
func (b *Bootstrap) get(ctx context.Context) (*Connection, error) {
	for {
		b.mu.Lock()
		switch {
		case b.closed:
			b.mu.Unlock()
			return nil, fmt.Errorf("xpc: %w", ErrBootstrapClosed)
		case b.conn != nil && b.conn.Err() == nil:
			c := b.conn
			b.mu.Unlock()
			return c, nil
		case b.dialing != nil:
			w := b.dialing
			b.mu.Unlock()
			select {
			case <-w:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		old := b.conn
		b.conn = nil
		w := make(chan struct{})
		b.dialing = w
		b.mu.Unlock()
		if old != nil {
			old.Cancel()
		}
		return b.dial(ctx, w)
	}
}

// dial connects to xpcd for get, which has set b.dialing to w, and makes
// the connection b's unless b was closed meanwhile.
func (b *Bootstrap) dial(ctx context.Context, w chan struct{}) (*Connection, error) {
	c, err := dialFirst(ctx, b.cfg, nil)
	if err == nil {
		// Wait for xpcd's hello, once per connection: an xpcd that turns
		// the connection away (too many connections) says why in its
		// place, and the lookup fails with that reason rather than with
		// the lookup socket closed unread, which would look like an
		// interruption.
		if err = c.awaitHello(ctx); err != nil {
			c.Cancel()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dialing = nil
	close(w)
	if err != nil {
		return nil, err
	}
	if b.closed {
		c.Cancel()
		return nil, fmt.Errorf("xpc: %w", ErrBootstrapClosed)
	}
	b.conn = c
	return c, nil
}

// drop forgets c if it is still the current connection and cancels it.
func (b *Bootstrap) drop(c *Connection) { dropCurrent(&b.mu, &b.conn, c) }

// Close closes the connection to xpcd. Lookups through b fail from then on
// (ErrInvalid, ErrCanceled and ErrBootstrapClosed); service connections
// that have looked their service up already are not affected until they
// need to look it up again.
func (b *Bootstrap) Close() error {
	b.mu.Lock()
	c := b.conn
	b.conn = nil
	b.closed = true
	b.mu.Unlock()
	if c != nil {
		c.Cancel()
	}
	return nil
}

// lookupService asks xpcd for name, handing it one end of a new socket
// pair for the service; the other end becomes the link. The lookup is
// pipelined: it is a one-way message, and the caller may send on its end
// at once, ahead of the service. xpcd answers only a lookup it cannot
// serve, with a refused frame on the socket itself (link.readRefusal).
func lookupService(ctx context.Context, cfg config, name string) (linkEnd, error) {
	mine, theirs, err := sock.Pair()
	if err != nil {
		return linkEnd{}, fmt.Errorf("xpc: %w", err)
	}
	end := os.NewFile(uintptr(theirs), "xpc-service-end")
	defer end.Close()
	// Stamping must be on before anyone else holds the other end: xpcd's
	// refusal and the service's first frame (hello) carry their senders'
	// identities. The link turns it off once it has the service's.
	if err := sock.SetPassCred(mine, true); err != nil {
		unix.Close(mine)
		return linkEnd{}, fmt.Errorf("xpc: SO_PASSCRED: %w", err)
	}
	ref, err := sendLookup(ctx, cfg, name, end)
	if err != nil {
		unix.Close(mine)
		return linkEnd{}, err
	}
	s, err := sock.New(mine, "xpc-service")
	if err != nil {
		return linkEnd{}, fmt.Errorf("xpc: %w", err)
	}
	return linkEnd{s: s, lookup: ref}, nil
}

// lookupRef is what a client end of a pipelined lookup remembers: the name
// and the identity the kernel gave for the xpcd that got the request.
type lookupRef struct {
	name string
	pid  int32
	uid  uint32
}

// lookupRequest is the request: {"op":"lookup","name":N,"domain":D?,
// "socket":FD}. end stays the caller's.
func lookupRequest(cfg config, name string, end *os.File) *Dictionary {
	req := NewDictionary(4)
	req.Set(bootstrap.KeyOp, String(bootstrap.OpLookup))
	req.Set(bootstrap.KeyName, String(name))
	if cfg.domain != "" {
		req.Set(bootstrap.KeyDomain, String(cfg.domain))
	}
	req.Set(bootstrap.KeySocket, NewFD(end))
	return req
}

// sendLookup sends the lookup of name, with a duplicate of end, to xpcd:
// on the Bootstrap's shared connection, or on a connection made for it and
// closed at once.
func sendLookup(ctx context.Context, cfg config, name string, end *os.File) (*lookupRef, error) {
	req := lookupRequest(cfg, name, end)
	if cfg.boot == nil {
		return sendLookupOnce(ctx, cfg, name, req)
	}
	for attempt := 0; ; attempt++ {
		bc, err := cfg.boot.get(ctx)
		if err != nil {
			if errors.Is(err, ErrBootstrapClosed) {
				return nil, invalidError(ErrCanceled, err, "lookup of %s", name)
			}
			return nil, err
		}
		p := bc.Peer()
		if p == nil {
			cfg.boot.drop(bc)
			return nil, interruptedError(nil, "lookup of %s: xpcd's identity is unknown", name)
		}
		err = bc.Send(ctx, req)
		if err == nil {
			return &lookupRef{name: name, pid: int32(p.PID), uid: p.UID}, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		// The shared connection failed (xpcd restarted): once more, on
		// a new one.
		cfg.boot.drop(bc)
		if attempt > 0 {
			return nil, interruptedError(err, "lookup of %s", name)
		}
	}
}

// sendLookupOnce connects to the first bootstrap socket that answers,
// sends req as a one-way message and closes: no goroutine, no reply.
func sendLookupOnce(ctx context.Context, cfg config, name string, req *Dictionary) (*lookupRef, error) {
	var w writer
	frame, fds, err := buildFrame(&w, wire.KindMessage, 0, req, cfg.maxMessageSize, cfg.maxFDs)
	if err != nil {
		return nil, err
	}
	defer closeRawFDs(fds)
	var errs []error
	for _, path := range bootstrapSockets(cfg) {
		ref, err := sendFrameTo(ctx, path, name, frame, fds)
		if err == nil {
			return ref, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, unreachable(bootstrapSockets(cfg), errs)
}

// sendFrameTo connects to the listener at path, sends one frame without
// waiting for anything, and closes. It returns the listener's identity as
// the kernel recorded it at connect, as the one that may refuse the lookup
// of name. The listener's hello is never read; the frame, in its queue, is
// read all the same.
func sendFrameTo(ctx context.Context, path, name string, frame []byte, fds []int) (*lookupRef, error) {
	if len(path) > maxSunPath {
		return nil, fmt.Errorf("xpc: connect %s: %w", path, ErrPathTooLong)
	}
	fd, err := sock.Connect(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("xpc: connect %s: %w", path, err)
	}
	defer unix.Close(fd)
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return nil, fmt.Errorf("xpc: SO_PEERCRED: %w", err)
	}
	// A new connection's queue is empty: a small frame never waits.
	if err := wire.SendNow(fd, frame, fds); err != nil {
		return nil, fmt.Errorf("xpc: send to %s: %w", path, err)
	}
	return &lookupRef{name: name, pid: cred.Pid, uid: cred.Uid}, nil
}

// bootstrapError maps xpcd's error replies to the library's error values.
func bootstrapError(err error, name string) error {
	var re *RemoteError
	if !errors.As(err, &re) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return interruptedError(err, "lookup of %s", name)
	}
	if waitEnded(re.Object) {
		r := ReasonFromObject(re.Object)
		if r.Description == "" {
			r.Description = name
		}
		return &ConnError{Kind: ErrInterrupted, Reason: r, reasonKind: ErrLaunchFailed}
	}
	return refusalError(re.Object, name)
}

// waitEnded reports whether xpcd's refusal eo ended the client's wait for
// the service rather than refused the name (bootstrap.KeyRetry, or a code
// that only such a refusal has): the connection is interrupted, not made
// invalid, and the next send looks the name up again.
func waitEnded(eo *ErrorObject) bool {
	if retry, _ := eo.Get(bootstrap.KeyRetry).(Bool); retry {
		return true
	}
	code, _ := eo.String(bootstrap.KeyReason)
	return code == ReasonLaunchFailed || code == ReasonThrottled || code == ReasonDisabled
}

// refusalError is the error of a refusal (xpcd's error replies, a
// refused frame): ErrInvalid with the reason the error object carries,
// matched by its kind, or by ErrDenied if its code is one this package
// does not know. what names what was refused when the object has no
// description.
func refusalError(eo *ErrorObject, what string) error {
	r := ReasonFromObject(eo)
	if r.Description == "" {
		r.Description = what
	}
	kind := r.Kind()
	if kind == nil {
		kind = ErrDenied
	}
	return &ConnError{Kind: ErrInvalid, Reason: r, reasonKind: kind}
}

// readRefusal reads a refused frame: an error object, in the first frame
// on the socket. Three senders may send one. On a connection DialUnix or
// an endpoint made, the listener, which admits a peer with a hello and
// turns it away with this (WithPeerRequirement, Listener.SetAdmission);
// only the listening process holds the other end, so the frame is
// believed until the hello has come. On a
// looked-up link, xpcd, answering a pipelined lookup it could not serve;
// it is believed only if the kernel stamped it with the pid and uid of
// the xpcd the lookup went to; or the service, in place of its hello,
// whose only reasons can be ReasonRequirementFailed and
// ReasonSessionRejected. Anything else is a
// protocol error. Either way it ends the link.
func (l *link) readRefusal(h wire.Header, d *sock.Datagram) error {
	l.refusing.Store(true)
	dialed := l.dialed.Load()
	ref := l.lookup
	if !dialed && (ref == nil || l.peer.Load() != nil) {
		d.CloseFDs()
		return l.protocolError("refused frame on a connection that was neither dialed nor looked up, or after the hello")
	}
	if len(d.FDs) != 0 || h.Flags != 0 || h.ID != 0 {
		d.CloseFDs()
		return l.protocolError("refused frame with descriptors, flags or an id")
	}
	c := d.Cred
	if !dialed && c == nil {
		return l.protocolError("refused frame not sent by xpcd (pid %d)", ref.pid)
	}
	dec := Decoder{Limits: Limits{MaxSize: l.cfg.maxRecvSize}}
	obj, err := dec.Decode(d.B[wire.HeaderSize:], nil)
	if err != nil {
		return l.protocolError("refused frame: %s", causeText(err))
	}
	eo, ok := obj.(*ErrorObject)
	if !ok {
		_ = CloseAttachments(obj)
		return l.protocolError("refused frame holds a %v, not an error", obj.Type())
	}
	if dialed {
		return refusalError(eo, fmt.Sprintf("the listener (%s) turned the connection away", peerName(l.peer.Load())))
	}
	if c.Pid != ref.pid || c.Uid != ref.uid {
		// Not xpcd: the service, which holds the end after it, may turn
		// us away in place of its hello for two reasons only, our failing
		// its requirement (Service.Listen, WithPeerRequirement) and its
		// rejecting the session (Listener.SetSessionHandler).
		if code, _ := eo.String(bootstrap.KeyReason); code == ReasonRequirementFailed || code == ReasonSessionRejected {
			return refusalError(eo, fmt.Sprintf("the service %s (pid %d) turned the connection away", ref.name, c.Pid))
		}
		return l.protocolError("refused frame not sent by xpcd (pid %d)", ref.pid)
	}
	return bootstrapError(&RemoteError{Object: eo}, ref.name)
}

// refusedNow looks, without reading it, at the first frame waiting on a
// looked-up link: if it is a refusal, it returns what reading it would.
func (l *link) refusedNow() error {
	d, err := l.s.Peek()
	if err != nil {
		return nil
	}
	defer d.CloseFDs()
	h, err := wire.ParseHeader(d.B)
	if err != nil || h.Kind != wire.KindRefused {
		return nil
	}
	return l.readRefusal(h, &d)
}
