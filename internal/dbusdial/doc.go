// Package dbusdial connects to a D-Bus message bus within a context: the
// dial, the authentication and Hello are all bounded by it, which godbus's
// own Dial is not. xpcd's parts that talk to services on the system bus
// (internal/criteria for logind and NetworkManager, internal/polkit for
// polkit) dial through it.
//
// Only unix: addresses ("unix:path=P", "unix:abstract=N") are supported:
// the system bus is a local socket, and a TCP bus is not one xpcd, which
// runs as root, should trust.
package dbusdial
