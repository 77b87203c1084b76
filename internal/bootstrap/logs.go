package bootstrap

// Words of the service logs: a job's log as xpcd keeps it (its lines and
// crash records), read with OpLog.

// OpLog reads a job's log: {"op":"log","target":DOMAIN/LABEL,
// "log_lines"?:N,"follow"?:true}. The reply's KeyLogLines are the lines of
// the last N records (a panic's or a crash record's further lines, which
// start with a tab, come with it; LogLinesDefault when N is not given, at
// most LogLinesMax, and at most LogReplyMax bytes of lines). With
// KeyFollow, the connection then gets one {"log_lines":[...]} message for
// each record written, until it closes; one that falls behind gets
// {"overflow":true} and no more.
const OpLog = "log"

// Keys of OpLog's request and replies, and of a job's print.
const (
	// KeyLogLines: in a request, how many records; in a reply and a follow
	// message, the lines (strings, oldest first).
	KeyLogLines = "log_lines"
	// KeyLog: in a job's print, its last log records, each by its first
	// line (strings, oldest first), for a caller who may read its log.
	KeyLog = "log"
	// KeyFollow (true): go on sending the lines written from now on.
	KeyFollow = "follow"
	// KeyLogTruncated (true): in OpLog's reply, some of the lines asked
	// for were left out to bound the reply's size (LogReplyMax).
	KeyLogTruncated = "log_truncated"
)

// Bounds of OpLog.
const (
	// LogLinesDefault is how many records OpLog answers when the request
	// does not say (as journalctl -n).
	LogLinesDefault = 10
	// LogLinesMax is the most records one OpLog reply holds.
	LogLinesMax = 10000
	// LogReplyMax bounds the bytes of lines in one OpLog reply; the
	// oldest records asked for are left out past it.
	LogReplyMax = 512 << 10
)

// Rules of the service logs (KeyRule in error replies).
const (
	// RuleLogAccess: a job's log is read only by root and the user of the
	// job's user domain (the system domain's logs by root alone).
	RuleLogAccess = "log-access"
	// RuleLogFollowLimit: a user other than root may follow only so many
	// logs at once (OpLog with KeyFollow).
	RuleLogFollowLimit = "log-follow-limit"
)
