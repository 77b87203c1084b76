package xpc

import "fmt"

// Option configures a Connection or Listener. Options are checked when the
// connection or listener is made, and a bad or conflicting one is an error.
type Option func(*config) error

type config struct {
	maxMessageSize int // sent, and received unless maxRecvSize says otherwise
	maxRecvSize    int // received; 0 while options are applied: maxMessageSize
	maxFDs         int
	tx             *Transactions
	bootstrap      []string // bootstrap sockets to try; nil means from the environment
	domain         string   // domain a service lookup is limited to; "" means any
	boot           *Bootstrap
}

func newConfig(opts []Option) (config, error) {
	c := config{maxMessageSize: DefaultMaxSize, maxFDs: maxFDsPerFrame - 1}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return c, err
		}
	}
	if c.maxRecvSize == 0 {
		c.maxRecvSize = c.maxMessageSize
	}
	if c.tx == nil {
		c.tx = &Transactions{}
	}
	return c, nil
}

// WithMaxMessageSize sets the largest serialized message this end sends or
// accepts, in bytes (default DefaultMaxSize, 64 MiB). A larger outgoing
// message fails with ErrMessageTooLarge; a larger incoming one is a protocol
// error that ends the connection.
func WithMaxMessageSize(n int) Option {
	return func(c *config) error {
		if n < 64 {
			return fmt.Errorf("xpc: WithMaxMessageSize(%d): must be at least 64 bytes", n)
		}
		c.maxMessageSize = n
		return nil
	}
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
	return func(c *config) error {
		if n < 64 {
			return fmt.Errorf("xpc: WithMaxReceiveSize(%d): must be at least 64 bytes", n)
		}
		c.maxRecvSize = n
		return nil
	}
}

// WithMaxFDs sets the most out-of-band objects (fd, shmem, endpoint) one
// message may carry: at most 252 (the kernel's 253 per datagram, less one
// for an out-of-line body), which is also the default.
func WithMaxFDs(n int) Option {
	return func(c *config) error {
		if n < 0 || n > maxFDsPerFrame-1 {
			return fmt.Errorf("xpc: WithMaxFDs(%d): must be between 0 and %d", n, maxFDsPerFrame-1)
		}
		c.maxFDs = n
		return nil
	}
}

// WithTransactions makes the connection or listener count its open
// transactions in t, so that several can share one count (a service's
// runtime uses one for idle exit). By default each has its own.
func WithTransactions(t *Transactions) Option {
	return func(c *config) error {
		if t == nil {
			return fmt.Errorf("xpc: WithTransactions(nil)")
		}
		c.tx = t
		return nil
	}
}

// WithBootstrapSocket makes service lookups and check-ins use the xpcd
// bootstrap socket at path instead of the one the environment selects
// (XPCD_ROOT, then the user's and the system's instance).
func WithBootstrapSocket(path string) Option {
	return func(c *config) error {
		if path == "" {
			return fmt.Errorf("xpc: WithBootstrapSocket(\"\")")
		}
		c.bootstrap = []string{path}
		return nil
	}
}

// WithDomain limits a service lookup to one domain ("system", "user/UID").
// A name that exists only in another domain then fails with ErrNotFound,
// and the error names the domain it is in.
func WithDomain(domain string) Option {
	return func(c *config) error {
		if domain == "" {
			return fmt.Errorf("xpc: WithDomain(\"\")")
		}
		c.domain = domain
		return nil
	}
}

// WithBootstrap makes a service connection look its service up through b,
// which keeps one connection to xpcd open for all its lookups, instead of
// connecting to xpcd for each one.
func WithBootstrap(b *Bootstrap) Option {
	return func(c *config) error {
		if b == nil {
			return fmt.Errorf("xpc: WithBootstrap(nil)")
		}
		c.boot = b
		return nil
	}
}
