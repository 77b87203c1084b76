// Package polkittest is a fake of polkit's authority (the service
// org.freedesktop.PolicyKit1) for tests, exported on a bus of the test's
// own (internal/dbustest): it records each check it is asked and answers
// as the test says, authorized, not, a challenge, an error, or never
// (until the check is cancelled, as polkitd does).
package polkittest
