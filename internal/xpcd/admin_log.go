package xpcd

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// OpLog: reading a job's log (joblog.go), and following it.

// mayReadLog reports whether a caller with uid may read the log of a job
// of domain dom (owned by owner): root any; a user their own user
// domain's, not the system domain's (bootstrap.RuleLogAccess). Logs say
// more than print does: a service's output is its own business.
func mayReadLog(uid uint32, dom string, owner uint32) bool {
	return uid == 0 || (dom != DomainSystem && uid == owner)
}

// logRequest: {"op":"log","target":DOMAIN/LABEL,"log_lines"?:N,
// "follow"?:true} -> {"log_lines":[...],"log_truncated"?:true}; with follow,
// then {"log_lines":[...]} for each record written, until the connection
// closes (bootstrap.OpLog).
func (ss *session) logRequest(ctx context.Context, msg *xpc.Message) {
	t, oe := ss.logTarget(msg.Body)
	if oe != nil {
		ss.fail(ctx, msg, oe)
		return
	}
	if !mayReadLog(ss.peer.UID, t.Domain, t.UID) {
		re := refusedBy(bootstrap.RuleLogAccess, "uid %d may not read the logs of %s", ss.peer.UID, t.Domain)
		ss.fail(ctx, msg, ruleOpError(re, "log %s: %s", t, re.Detail))
		return
	}
	n := int64(bootstrap.LogLinesDefault)
	if v, err := msg.Body.Int64(bootstrap.KeyLogLines); err == nil {
		if v < 0 {
			ss.fail(ctx, msg, badRequest("log: a negative number of lines"))
			return
		}
		n = min(v, bootstrap.LogLinesMax)
	}
	follow, _ := msg.Body.Bool(bootstrap.KeyFollow)
	ls := ss.m.logs
	if ls == nil {
		ss.fail(ctx, msg, notFound("log %s: this xpcd keeps no logs", t))
		return
	}
	if !follow {
		lines, truncated := ls.peek(t.Domain, t.Label).lastLines(int(n))
		ss.reply(ctx, msg, logReply(lines, truncated))
		return
	}
	if oe := ls.follow(ss, t.Domain, t.Label, msg, int(n)); oe != nil {
		ss.fail(ctx, msg, oe)
	}
}

// logTarget reads the target of a log request: DOMAIN/LABEL, or a job of
// a pid or apps domain. An Application instance's log is its user's
// (logDomain: one for all the user's applications), so pid/PID/LABEL
// names it only while that pid domain exists (its owner is known only
// then) and the caller may read it; apps/UID/LABEL names it always, as it
// names a User service's; apps/system/LABEL a System service's.
func (ss *session) logTarget(body *xpc.Dictionary) (Target, *opError) {
	s, _ := body.String(bootstrap.KeyTarget)
	if !isAppTarget(s) {
		return ss.targetArg(body, true)
	}
	dom, pid, label, oe := parseAppJobTarget("log", s) // apps_print.go
	if oe != nil {
		return Target{}, oe
	}
	switch {
	case pid > 0:
		var owner uint32
		if e := ss.do(func() {
			d := ss.m.appDomainNamed(dom)
			if d == nil || !mayReadApps(ss.peer.UID, d) {
				oe = notFound("log %s: no such domain", s)
				return
			}
			owner = d.owner
		}); e != nil {
			return Target{}, e
		}
		return Target{Domain: logDomain(dom, owner), UID: owner, Label: label}, oe
	case dom == DomainAppsSystem:
		return Target{Domain: dom, Label: label}, nil
	}
	uid, _ := strconv.ParseUint(strings.TrimPrefix(dom, appsDomainUser), 10, 32) // parseAppTarget checked it
	return Target{Domain: dom, UID: uint32(uid), Label: label}, nil
}

func logReply(lines []string, truncated bool) *xpc.Dictionary {
	d := xpc.Dict(bootstrap.KeyLogLines, logArray(lines))
	if truncated {
		d.Set(bootstrap.KeyLogTruncated, xpc.Bool(true))
	}
	return d
}

// follow makes ss follow jl: the reply (its last n lines) goes first,
// through the follower's channel, then every record written. The file is
// read under jl's lock, so that no record falls between the two.
func (ls *jobLogs) follow(ss *session, dom, label string, msg *xpc.Message, n int) *opError {
	ls.mu.Lock()
	if ls.follows[ss] != nil {
		ls.mu.Unlock()
		return badRequest("log: this connection follows a log already")
	}
	if ss.peer.UID != 0 && ls.nfollow[ss.bucket] >= maxLogFollowersPerUser {
		re := refusedBy(bootstrap.RuleLogFollowLimit, "%s follows %d logs already, the limit", bucketName(ss.bucket), ls.nfollow[ss.bucket])
		ls.mu.Unlock()
		return ruleOpError(re, "log: %s", re.Detail)
	}
	jl := ls.logs[logKey(dom, label)]
	if jl == nil {
		jl = ls.newLog(dom, label)
		ls.logs[logKey(dom, label)] = jl
	}
	f := &logFollower{ch: newChannel(ss.conn, logFollowLimit), bucket: ss.bucket, jl: jl}
	ls.follows[ss] = f
	ls.nfollow[ss.bucket]++
	// Counted now, under ls.mu, so that jl is not evicted as idle
	// before f is among its followers.
	jl.nfollowers.Add(1)
	ls.mu.Unlock()
	msg.Defer()
	jl.mu.Lock()
	defer jl.mu.Unlock()
	lines, truncated := jl.readTail(n)
	f.ch.send(outItem{reply: msg, msg: logReply(lines, truncated)})
	if jl.followers == nil {
		jl.followers = map[*logFollower]struct{}{}
	}
	ls.mu.Lock()
	still := ls.follows[ss] == f // not ended meanwhile (unfollow)
	ls.mu.Unlock()
	if still {
		jl.followers[f] = struct{}{}
	} else {
		jl.nfollowers.Add(-1)
	}
	return nil
}

// unfollow: the connection of ss has ended.
func (ls *jobLogs) unfollow(ss *session) {
	if ls == nil {
		return
	}
	ls.mu.Lock()
	f := ls.follows[ss]
	if f != nil {
		delete(ls.follows, ss)
		if ls.nfollow[f.bucket]--; ls.nfollow[f.bucket] <= 0 {
			delete(ls.nfollow, f.bucket)
		}
	}
	ls.mu.Unlock()
	if f == nil {
		return
	}
	f.jl.mu.Lock()
	f.jl.dropFollower(f)
	f.jl.mu.Unlock()
	f.ch.close()
	ls.mu.Lock()
	ls.evictLocked()
	ls.mu.Unlock()
}

// lastLines reads the lines of the last n records of the log's files.
func (jl *jobLog) lastLines(n int) ([]string, bool) {
	jl.mu.Lock()
	defer jl.mu.Unlock()
	return jl.readTail(n)
}

// readTail returns the lines of the last n records of the files (the
// rotated one, then the current one), of at most bootstrap.LogReplyMax
// bytes together, and whether records were left out for that bound;
// jl.mu is held.
func (jl *jobLog) readTail(n int) ([]string, bool) {
	if jl.path == "" || n == 0 {
		return nil, false
	}
	limit := int64(bootstrap.LogReplyMax)
	data, whole := readEnd(jl.path, limit)
	cut := !whole // data may begin inside a line
	if whole {
		var prev []byte
		prev, whole = readEnd(jl.path+".1", limit-int64(len(data)))
		// With no room left for the rotated file, nothing of it is
		// read, and the current file's first line is whole.
		cut = !whole && len(prev) > 0
		data = append(prev, data...)
	}
	if len(data) == 0 {
		return nil, !whole
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if cut {
		lines = lines[1:]
	}
	// n counts records, as journalctl -n counts entries: a panic or a
	// crash record comes whole, never as the tail of its further lines.
	for len(lines) > 0 && isFurtherLine(lines[0]) {
		lines = lines[1:]
	}
	start, records := len(lines), 0
	for start > 0 && records < n {
		start--
		if !isFurtherLine(lines[start]) {
			records++
		}
	}
	truncated := !whole && records < n
	lines = lines[start:]
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = string(l)
	}
	return out, truncated
}

// isFurtherLine reports whether l is a further line of a record (a
// panic's, a crash record's), which logRecord.format starts with a tab.
func isFurtherLine(l []byte) bool { return len(l) > 0 && l[0] == '\t' }

// readEnd reads the last max bytes of the file at path; whole: it had
// no more.
func readEnd(path string, max int64) ([]byte, bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return nil, true
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil, true
	}
	off := max64(0, st.Size()-max)
	b := make([]byte, st.Size()-off)
	k, err := f.ReadAt(b, off)
	if err != nil && err != io.EOF {
		return nil, true
	}
	return b[:k], off == 0
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// setLogKeys adds to a job's print its last log lines (bootstrap.KeyLog),
// when the caller may read its log, and how many records the journal did
// not take ("log_journal_drops").
func (ss *session) setLogKeys(d *xpc.Dictionary, dom string, owner uint32, label string) {
	if d == nil || !mayReadLog(ss.peer.UID, dom, owner) {
		return
	}
	lines, drops := ss.m.logs.lastLines(dom, label)
	if len(lines) > 0 {
		d.Set(bootstrap.KeyLog, logArray(lines))
	}
	if drops > 0 {
		d.Set("log_journal_drops", xpc.Int64(int64(drops)))
	}
}

// logArray is lines as the strings of a reply. A service's output is
// bytes: a NUL byte, or bytes that are not UTF-8 (binary output, Latin-1,
// a long line cut in a character), would make the whole reply fail to
// encode, so each is shown as U+FFFD. The files keep the bytes.
func logArray(lines []string) xpc.Array {
	arr := make(xpc.Array, len(lines))
	for i, l := range lines {
		if !utf8.ValidString(l) || strings.IndexByte(l, 0) >= 0 {
			l = strings.ReplaceAll(strings.ToValidUTF8(l, "\uFFFD"), "\x00", "\uFFFD")
		}
		arr[i] = xpc.String(l)
	}
	return arr
}
