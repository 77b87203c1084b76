// Package sock is one end of an AF_UNIX SOCK_SEQPACKET socket, as goxpc's
// connections use it: datagrams and the descriptors (SCM_RIGHTS) and
// credentials (SCM_CREDENTIALS, SCM_PIDFD) that travel with them, sent
// and received without blocking a thread, through Go's poller.
//
// It knows bytes and descriptors only. What a datagram means (a frame,
// its header and kinds) is internal/wire's; what a connection does with
// it (replies, credit, lookups, the read role) is the xpc package's.
//
// Descriptors: a Socket owns its own descriptor. Descriptors handed to
// Send stay the caller's; descriptors received in a Datagram are the
// receiver's, who closes them (Datagram.CloseFDs). Every descriptor this
// package makes is close-on-exec.
package sock
