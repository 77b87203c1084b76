// Package dbustest starts a private dbus-daemon for a test, so that code
// which talks to services on the system bus (logind, NetworkManager,
// polkit) can be tested against fakes of them on a bus of its own.
//
// A test calls Start, exports its fake services on connections from
// Bus.Connect, claims their names with Own, and points the code under test
// at Bus.Addr. Start skips the test when dbus-daemon is not installed; the
// daemon is killed at the test's end, and with the test binary if that
// dies first.
package dbustest
