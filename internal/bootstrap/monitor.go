package bootstrap

// Monitors (docs/XPCD.md, "Monitoring messages"; docs/design/monitor.md):
// the words of xpcctl monitor's request and of the records a service
// mirrors to a monitor.

// OpMonitor is, on the bootstrap connection, xpcctl monitor's request: it
// carries one end of a SOCK_SEQPACKET socket pair (KeySocket) and names
// the job to watch (KeyTarget, DOMAIN/LABEL) or its running process
// (KeyPID). The reply says KeyStatus MonitorAttached (KeyPID: the
// instance's) or MonitorWaiting (the job is not running; its next
// instance gets the monitor). On a service's check-in channel, xpcd sends
// it (one-way) with the socket: mirror the service's messages to it.
const OpMonitor = "monitor"

// Values of KeyStatus in OpMonitor's reply.
const (
	MonitorAttached = "attached"
	MonitorWaiting  = "waiting"
)

// Rules of OpMonitor's refusals (KeyRule).
const (
	// RuleMonitorAccess: only root and the user of a user domain may
	// monitor the domain's jobs; only root a system job.
	RuleMonitorAccess = "monitor-access"
	// RuleMonitorLimit: a job may have only so many monitors, and a user
	// other than root only so many over all jobs.
	RuleMonitorLimit = "monitor-limit"
)

// Keys of a mirror record: one datagram on the monitor's socket, an
// encoded XPC dictionary, per message a service's listener connection
// sent or received.
const (
	KeyMonTime      = "time"      // date: when the service sent or read it
	KeyMonDir       = "dir"       // MonIn (the service read it) or MonOut (it sent it)
	KeyMonKind      = "kind"      // MonMessage, MonRequest or MonReply
	KeyMonID        = "id"        // uint64: a request's id
	KeyMonReplyTo   = "reply_to"  // uint64: the id of the request a reply answers
	KeyMonNoReply   = "no_reply"  // bool: the reply says the service will not answer
	KeyMonConn      = "conn"      // int64: the connection, unique among the service's open ones
	KeyMonPID       = "pid"       // int64: the peer's pid
	KeyMonUID       = "uid"       // int64: the peer's uid
	KeyMonSize      = "size"      // int64: the encoded body's size in bytes
	KeyMonFDs       = "fds"       // int64: descriptors the message carried (not passed on)
	KeyMonBody      = "body"      // data: the encoded body, at most MonitorBodyMax bytes
	KeyMonTruncated = "truncated" // bool: body is the first MonitorBodyMax bytes only
	KeyMonDropped   = "dropped"   // uint64: records dropped (socket full) before this one
)

// Values of KeyMonDir and KeyMonKind.
const (
	MonIn      = "in"
	MonOut     = "out"
	MonMessage = "message"
	MonRequest = "request"
	MonReply   = "reply"
)

// MonitorBodyMax bounds the body a mirror record carries.
const MonitorBodyMax = 64 << 10

// MonitorRecordMax bounds a whole mirror record: its body and the rest.
const MonitorRecordMax = MonitorBodyMax + 1024
