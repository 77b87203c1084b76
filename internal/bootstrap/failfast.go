package bootstrap

// Words of the fail-fast refusals: xpcd tells the clients waiting for a
// service that it cannot be launched now, rather than let them wait out
// their deadlines. Such a refusal ends the wait, not the name: it carries
// KeyRetry, and the library makes it an interruption (the connection
// stays usable; the next send looks the name up again). Its reason is
// ReasonLaunchFailed, ReasonThrottled, ReasonDisabled, ReasonNotFound (the
// job was booted out), or why the instance ended before it checked the
// name in (ReasonExited, ReasonSignaled, ReasonKilled, ReasonUnknown).

const (
	// ReasonThrottled: the job's last instance ended before it checked
	// the name in (or its launch failed), and xpcd waits for
	// ThrottleInterval before it launches the job again; the description
	// says how the last one ended and when xpcd will try again.
	ReasonThrottled = "throttled"

	// KeyRetry (true), in a refused frame from xpcd: the refusal ends a
	// client's wait for the service, not its name; the client may look
	// the name up again.
	KeyRetry = "retry"
)
