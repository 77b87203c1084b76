// Package polkit asks polkit's authority (the service
// org.freedesktop.PolicyKit1 on the system bus) whether a process may do
// an action: xpcd asks it before it starts a daemon a user registered
// (action org.goxpc.xpcd.approve-daemon, ActionApproveDaemon), so that on
// a desktop an administrator approves it in a real authorization dialog.
//
// # The call
//
// Authority.Authorize calls CheckAuthorization on the authority's object
// (authPath), interface org.freedesktop.PolicyKit1.Authority, with:
//
//	subject          (sa{sv})  ("unix-process", {"pid": uint32, "start-time": uint64, "uid": int32})
//	action_id        s         the action, as declared in a .policy file
//	details          a{ss}     what the authorization dialog and rules may show
//	flags            u         1, allow user interaction: an authentication agent may ask
//	cancellation_id  s         unique on this connection
//
// and reads its answer (bba{ss}): is_authorized, is_challenge, details.
// The start time, in clock ticks since boot (field 22 of /proc/PID/stat),
// makes the subject one process, not whatever process has the pid later.
//
// # Answers and errors
//
//   - authorized: true, nil.
//   - not authorized (the rules say no, or authentication failed): false,
//     nil.
//   - a challenge the authority could not put to anyone (no
//     authentication agent in the subject's session): ErrChallenge.
//   - the dialog dismissed (detail polkit.dismissed): ErrDismissed.
//   - the authority gone, or not on the bus: ErrUnavailable.
//   - an error from the authority, or an answer of the wrong shape:
//     ErrFailed, wrapping the dbus.Error when there is one.
//   - a request that cannot be sent (pid, uid, action id, details):
//     ErrInvalid, before anything is sent.
//   - the context ended: its error; CancelCheckAuthorization is sent, so
//     the dialog goes away.
//   - the Authority closed: ErrClosed.
//
// # Bounds
//
// A person may take a while to type a password, so one Authorize waits at
// most MaxWait when its context has no earlier deadline; at most
// MaxPending run at once (the next waits for one to end, within its
// context); a request's details are bounded (MaxDetails, MaxDetailsBytes).
// Replies are bounded by the bus's maximum message size; only their three
// fields are read.
package polkit
