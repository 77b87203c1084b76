// Package login1 follows which users are logged in, from systemd-logind
// (the service org.freedesktop.login1 on the system bus), so that xpcd can
// make a user's domain when they log in: their LaunchAgents with
// RunAtLoad and the applications they registered start then, as launchd's
// per-user domain does at login, rather than when something first looks
// a name up in it.
//
// # The calls
//
// Watcher subscribes to the manager's UserNew signal (object
// /org/freedesktop/login1, interface org.freedesktop.login1.Manager) and
// asks ListUsers, whose answer a(uso) is each user's uid, name and object
// path. A signal is only a hint that the users may have changed: any
// client of the bus can send one, so Changed carries no uid, and the
// caller asks Users, a method call that only logind's own connection,
// the owner of org.freedesktop.login1, answers.
//
// # Bounds
//
// Users reads at most MaxUsers users. Signals are coalesced: Changed holds
// at most one pending hint, however many arrive.
package login1
