// Package login1test is a fake systemd-logind for tests, on a private
// dbus-daemon (internal/dbustest): it lists the users it is told and sends
// UserNew as logind does at a login.
package login1test
