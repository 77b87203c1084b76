package xpc

import (
	"github.com/goxpc/xpc/internal/wire"

	"errors"
	"fmt"
)

// Option configures a Connection, Listener, Service or Bootstrap. Options
// are checked when it is made: a bad or conflicting one is an error, and so
// is one that does not apply to the constructor it is given to (an
// *OptionError, matching ErrOptionNotApplicable). They apply to:
//
//   - the limits (WithMaxMessageSize, WithMaxReceiveSize, WithMaxQueuedBytes,
//     WithMaxUnreadBytes, WithMaxFDs) and WithTransactions: the
//     constructors of connections and listeners (NewServiceConnection,
//     NewEndpointConnection, NewConnectionFromFile, DialUnix, NewListener,
//     ListenUnix, NewListenerFromFile, and CheckIn for the Service's
//     listeners);
//   - WithPeerRequirement: NewServiceConnection, NewEndpointConnection,
//     NewConnectionFromFile, DialUnix, NewListener, ListenUnix,
//     NewListenerFromFile and Service.Listen;
//   - WithBootstrapSocket: NewServiceConnection and NewBootstrap;
//   - WithDomain, WithBootstrap: NewServiceConnection.
type Option func(*config) error

// The causes of an *OptionError.
var (
	// ErrOptionNotApplicable: an Option given to a constructor it does
	// not apply to.
	ErrOptionNotApplicable = errors.New("option does not apply")
	// ErrOptionRepeated: an Option that may be given once, given twice
	// (WithPeerRequirement: a second requirement must not silently
	// replace the first).
	ErrOptionRepeated = errors.New("option given twice")
)

// OptionError is the error of a constructor given an Option that does not
// apply to it, or one it may be given once only, twice. It matches its
// Err: ErrOptionNotApplicable or ErrOptionRepeated.
type OptionError struct {
	Option      string // the option, as "WithDomain"
	Constructor string // the constructor, as "NewListener"
	Err         error  // ErrOptionNotApplicable (also when nil) or ErrOptionRepeated
}

func (e *OptionError) Error() string {
	if e.Err == ErrOptionRepeated {
		return "xpc: " + e.Option + " given twice to " + e.Constructor
	}
	return "xpc: " + e.Option + " does not apply to " + e.Constructor
}

// Unwrap returns Err, or ErrOptionNotApplicable if it is nil.
func (e *OptionError) Unwrap() error {
	if e.Err == nil {
		return ErrOptionNotApplicable
	}
	return e.Err
}

// constructor is one of the functions that take Options, as a bit; a set
// of them says which constructors an option applies to.
type constructor uint

const (
	inNewServiceConnection constructor = 1 << iota
	inNewEndpointConnection
	inNewConnectionFromFile
	inDialUnix
	inNewListener
	inListenUnix
	inCheckIn
	inNewBootstrap
	inListen // Service.Listen
	inNewNotifier
	inPostNotification
	inCheckInFile
	inNewListenerFromFile

	// The limits and the transaction count apply to every constructor of
	// a connection, and of a listener (whose peers they configure; a
	// Service's configuration is its listeners').
	connsAndListeners = inNewServiceConnection | inNewEndpointConnection | inNewConnectionFromFile |
		inDialUnix | inNewListener | inListenUnix | inCheckIn | inCheckInFile | inNewListenerFromFile
)

func (k constructor) String() string {
	names := [...]string{"NewServiceConnection", "NewEndpointConnection", "NewConnectionFromFile",
		"DialUnix", "NewListener", "ListenUnix", "CheckIn", "NewBootstrap", "Listen", "NewNotifier", "PostNotification",
		"CheckInFile", "NewListenerFromFile"}
	for i, name := range names {
		if k == 1<<i {
			return name
		}
	}
	return fmt.Sprintf("constructor(%#x)", uint(k))
}

// option makes the Option called name, which applies to the constructors
// in applies and sets what set sets; given to any other constructor, it
// fails with an *OptionError.
func option(name string, applies constructor, set func(*config) error) Option {
	return func(c *config) error {
		if c.ctor&applies == 0 {
			return &OptionError{Option: name, Constructor: c.ctor.String(), Err: ErrOptionNotApplicable}
		}
		return set(c)
	}
}

type config struct {
	ctor           constructor // the constructor the options are given to
	maxMessageSize int         // sent, and received unless maxRecvSize says otherwise
	maxRecvSize    int         // received; 0 while options are applied: maxMessageSize
	maxFDs         int
	maxQueued      int64 // body bytes of received messages and requests not yet dequeued
	maxUnread      int64 // out-of-line bytes sent and not yet read by the peer
	tx             *Transactions
	bootstrap      []string // bootstrap sockets to try; nil means from the environment
	domain         string   // domain a service lookup is limited to; "" means any
	boot           *Bootstrap
	// onPeers, if set, is called when a listener made with this
	// configuration gains or loses a peer: a Service's listeners tell it,
	// to report their count to xpcd.
	onPeers func()
	// req is the requirement the peer must meet, checked when it becomes
	// known and again on every message; nil means none, which costs the
	// read path one comparison.
	req *Requirement
	// strict makes Message.Decode and Connection.Invoke decode strictly
	// (WithStrictDecoding).
	strict bool
	// mirror is the monitors of the Service whose listener made this
	// connection (mirror.go); nil for any other connection.
	mirror *mirror
}

// configure applies opts, given to the constructor ctor, over the
// defaults.
func configure(ctor constructor, opts []Option) (config, error) {
	c := config{
		ctor:           ctor,
		maxMessageSize: DefaultMaxSize,
		maxFDs:         wire.MaxFDs - 1,
		maxQueued:      DefaultMaxQueuedBytes,
		maxUnread:      DefaultMaxUnreadBytes,
	}
	if err := c.apply(ctor, opts); err != nil {
		return c, err
	}
	if c.maxRecvSize == 0 {
		c.maxRecvSize = c.maxMessageSize
	}
	if c.tx == nil {
		c.tx = &Transactions{}
	}
	return c, nil
}

// apply applies opts, given to the constructor ctor, over c.
func (c *config) apply(ctor constructor, opts []Option) error {
	c.ctor = ctor
	for _, o := range opts {
		if err := o(c); err != nil {
			return err
		}
	}
	return nil
}

// WithMaxMessageSize sets the largest serialized message this end sends or
// accepts, in bytes (default DefaultMaxSize, 64 MiB). A larger outgoing
// message fails with ErrTooLarge; a larger incoming one is a protocol
// error that ends the connection.
func WithMaxMessageSize(n int) Option {
	return option("WithMaxMessageSize", connsAndListeners, func(c *config) error {
		if n < 64 {
			return fmt.Errorf("xpc: WithMaxMessageSize(%d): must be at least 64 bytes", n)
		}
		c.maxMessageSize = n
		return nil
	})
}

// WithMaxReceiveSize sets the largest serialized message this end
// accepts, in bytes, leaving the limit on what it sends to
// WithMaxMessageSize: a server whose requests are small can refuse large
// ones and still send large replies. A larger incoming message is a
// protocol error that ends the connection, found from the datagram's
// length or the out-of-line body's size (fstat) before the body is read;
// an inline datagram never costs more than its own 64 KiB buffer. By
// default the limit is WithMaxMessageSize's.
func WithMaxReceiveSize(n int) Option {
	return option("WithMaxReceiveSize", connsAndListeners, func(c *config) error {
		if n < 64 {
			return fmt.Errorf("xpc: WithMaxReceiveSize(%d): must be at least 64 bytes", n)
		}
		c.maxRecvSize = n
		return nil
	})
}

// The default byte limits of a connection (WithMaxQueuedBytes,
// WithMaxUnreadBytes).
const (
	DefaultMaxQueuedBytes = 64 << 20
	DefaultMaxUnreadBytes = 64 << 20
)

// WithMaxQueuedBytes sets how many body bytes of messages and requests this
// end holds for its handler, received and not yet taken off the queue
// (default DefaultMaxQueuedBytes, 64 MiB; at least 1 MiB, at most 1 TiB).
// The peer learns the limit and waits before it would go over it (its sends
// block, bounded by their context); a peer that goes over it anyway is cut
// off with ErrInvalid and ErrPeerOverLimit. One message larger than the
// limit is taken when nothing else is queued, so the size of a single
// message is bounded by WithMaxMessageSize alone.
func WithMaxQueuedBytes(n int64) Option {
	return byteLimit("WithMaxQueuedBytes", n, func(c *config) *int64 { return &c.maxQueued })
}

// WithMaxUnreadBytes sets how many out-of-line bytes (bodies over 64 KiB,
// which travel in sealed memfds that stay in memory until the peer reads
// them) this end lets the peer leave unread (default
// DefaultMaxUnreadBytes, 64 MiB; at least 1 MiB, at most 1 TiB). A reply
// that would take the out-of-line replies the peer has not yet read over
// the limit is not sent: the peer is cut off with ErrInvalid and
// ErrPeerOverLimit, which the Reply returns. One reply larger than the
// limit goes when the peer has left nothing else unread, so the limit
// never caps the size of a reply. Messages and requests never
// cut the peer off: they are flow-controlled, and the bytes this end lets
// them have outstanding are held to the smaller of this limit and the
// peer's WithMaxQueuedBytes.
func WithMaxUnreadBytes(n int64) Option {
	return byteLimit("WithMaxUnreadBytes", n, func(c *config) *int64 { return &c.maxUnread })
}

// byteLimit is an option setting one of the byte limits, the field limit
// picks, to n: at least the initial window, at most wire.MaxLimitBytes.
func byteLimit(name string, n int64, limit func(*config) *int64) Option {
	return option(name, connsAndListeners, func(c *config) error {
		if n < wire.InitialWindow || n > wire.MaxLimitBytes {
			return fmt.Errorf("xpc: %s(%d): must be between %d and %d", name, n, int64(wire.InitialWindow), int64(wire.MaxLimitBytes))
		}
		*limit(c) = n
		return nil
	})
}

// WithMaxFDs sets the most out-of-band objects (fd, shmem, endpoint) one
// message may carry: at most 252 (the kernel's 253 per datagram, less one
// for an out-of-line body), which is also the default.
func WithMaxFDs(n int) Option {
	return option("WithMaxFDs", connsAndListeners, func(c *config) error {
		if n < 0 || n > wire.MaxFDs-1 {
			return fmt.Errorf("xpc: WithMaxFDs(%d): must be between 0 and %d", n, wire.MaxFDs-1)
		}
		c.maxFDs = n
		return nil
	})
}

// WithTransactions makes the connection or listener count its open
// transactions in t, so that several can share one count (a service's
// runtime uses one for idle exit). By default each has its own.
func WithTransactions(t *Transactions) Option {
	return option("WithTransactions", connsAndListeners, func(c *config) error {
		if t == nil {
			return fmt.Errorf("xpc: WithTransactions(nil)")
		}
		c.tx = t
		return nil
	})
}

// WithBootstrapSocket makes service lookups use the xpcd bootstrap socket
// at path instead of the one the environment selects (XPCD_ROOT, then the
// user's and the system's instance). It applies to NewServiceConnection
// and NewBootstrap; CheckIn takes its channel to xpcd from the environment
// xpcd launched the process with.
func WithBootstrapSocket(path string) Option {
	return option("WithBootstrapSocket", inNewServiceConnection|inNewBootstrap|inNewNotifier|inPostNotification, func(c *config) error {
		if path == "" {
			return fmt.Errorf("xpc: WithBootstrapSocket(\"\")")
		}
		c.bootstrap = []string{path}
		return nil
	})
}

// WithDomain limits a service lookup to one domain ("system", "user/UID").
// A name that exists only in another domain then fails with ErrServiceNotFound,
// and the error names the domain it is in. It applies to
// NewServiceConnection only.
func WithDomain(domain string) Option {
	return option("WithDomain", inNewServiceConnection, func(c *config) error {
		if domain == "" {
			return fmt.Errorf("xpc: WithDomain(\"\")")
		}
		c.domain = domain
		return nil
	})
}

// WithBootstrap makes a service connection look its service up through b,
// which keeps one connection to xpcd open for all its lookups, instead of
// connecting to xpcd for each one. It applies to NewServiceConnection only,
// and not beside WithBootstrapSocket (give the socket to NewBootstrap).
func WithBootstrap(b *Bootstrap) Option {
	return option("WithBootstrap", inNewServiceConnection, func(c *config) error {
		if b == nil {
			return fmt.Errorf("xpc: WithBootstrap(nil)")
		}
		c.boot = b
		return nil
	})
}

// WithPeerRequirement makes the connection, or each peer of the listener,
// require r of the process at the other end (docs/SECURITY.md, "Peer
// requirements"). It is checked when the peer becomes known, before
// anything it sent is delivered: for a connection made by a dial or from a
// socket (NewEndpointConnection, DialUnix, NewConnectionFromFile), against
// the process the kernel names for the socket at connect; for a named
// service (NewServiceConnection), when its first frame (the hello) names it;
// on a listener (NewListener, ListenUnix, NewListenerFromFile,
// Service.Listen), as each client connects, before the admission check
// (Listener.SetAdmission) and the handler see it. A client that fails is sent a refused frame holding the
// reason, so that its own connection fails with ErrInvalid and
// ErrPeerRequirement and says which clause. It is checked again on every
// message, request and reply that arrives: a peer that executes another
// program after connecting fails from its next message on (doc.go, "Peer
// requirements", says how this is found and what it costs).
//
// A connection whose peer fails ends, invalid (ErrInvalid and
// ErrPeerRequirement): pending replies fail, the message is not delivered,
// and the handler gets the error as its last event. The error is a
// *ConnError whose Reason has Code ReasonRequirementFailed, Rule the
// clause that failed and Peer the identity checked.
//
// r must not be the zero Requirement, and the option may be given once: a
// second one is an *OptionError matching ErrOptionRepeated, not a
// replacement.
func WithPeerRequirement(r Requirement) Option {
	return option("WithPeerRequirement", inNewServiceConnection|inNewEndpointConnection|inNewConnectionFromFile|
		inDialUnix|inNewListener|inListenUnix|inNewListenerFromFile|inListen, func(c *config) error {
		if r.IsZero() {
			return fmt.Errorf("xpc: WithPeerRequirement: the zero Requirement requires nothing (make one with ParseRequirement)")
		}
		if c.req != nil {
			return &OptionError{Option: "WithPeerRequirement", Constructor: c.ctor.String(), Err: ErrOptionRepeated}
		}
		c.req = &r
		return nil
	})
}

// WithStrictDecoding makes Message.Decode and Connection.Invoke on the
// connections made with it (or, given to a listener, on its peers) decode
// strictly, as ObjectIntoStrict does: a key with no field, or a field tagged
// required with no key, is an error instead of being skipped or left zero.
func WithStrictDecoding() Option {
	return option("WithStrictDecoding", connsAndListeners|inListen, func(c *config) error {
		c.strict = true
		return nil
	})
}
