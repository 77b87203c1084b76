// Package wire is goxpc's local frame format (docs/PROTOCOL.md §7): the
// frame header, the protocol's constants, the out-of-line body, and the
// functions every frame is sent through. The xpc library speaks it on
// every connection; xpcd writes one kind of frame itself, the refusal that
// answers a pipelined lookup it cannot serve.
//
// It knows frames, not connections: what a frame means to a connection
// (replies, credit, the read role) is the xpc package's; the socket, its
// datagrams and descriptors are internal/sock's.
package wire
