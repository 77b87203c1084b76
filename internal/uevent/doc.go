// Package uevent reads the kernel's device events (uevents) from a
// NETLINK_KOBJECT_UEVENT socket and matches them against launch-event
// descriptors (launchd.StreamUEvent).
//
// # Messages
//
// The kernel broadcasts each event to multicast group 1 as
// "ACTION@DEVPATH\0KEY=VALUE\0...", the properties including ACTION,
// DEVPATH, SUBSYSTEM and SEQNUM. Parse reads one such message into an
// Event, within MaxMessage bytes and MaxProps properties; anything else is
// an error (ErrMalformed). udev rebroadcasts events in a binary format of
// its own that begins "libudev": those, and every message whose sender is
// not the kernel (netlink port id 0), are not read (Listener.Read skips
// them).
//
// # Listening
//
// Listen opens and binds the socket; Listener.Read waits for the next
// kernel event until its context ends, through Go's poller (no thread is
// held while it waits); Close releases the socket. Run does all three on
// the caller's goroutine, handing each event to a function, until its
// context ends.
//
// # Matching
//
// A descriptor is a dictionary of property names to strings; it matches an
// event when every property it names is present and equal to the string,
// or matches it as a shell pattern (path.Match), as launchd/events.go
// validates descriptors. Compile turns a descriptor into a Matcher once, so
// that matching an event costs no allocation.
package uevent
