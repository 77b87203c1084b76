package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/spf13/pflag"
)

var monitorCommand = &command{
	name:    "monitor",
	args:    "[--json] TARGET | --pid PID",
	summary: "show every message of a service's connections as it passes",
	help: `Shows every message on the connections of a service's listeners, in both
directions, as busctl monitor does for D-Bus: one line per message with the
time, the direction (→ into the service, ← out of it), the peer's pid, the
kind and id, the size of the encoded body, how many descriptors it carried,
the reply's latency, and the decoded body. TARGET is DOMAIN/LABEL; --pid
names the running instance with that pid instead.

xpcd is not on the message path: it hands the service a socket, and the
service's own runtime copies each message to it while the monitor lasts.
A job that is not running is monitored from its next instance on, and each
instance after. Only root and the domain's user may monitor a job (rule
monitor-access). A monitor that reads too slowly loses records, never slows
the service: the next line says how many were dropped. Bodies over 64 KiB are
shown truncated. Ctrl-C ends it.

` + instanceHelp,
	setup: setupMonitor,
}

func setupMonitor(fs *pflag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "print one JSON object per message (the body in tagged JSON)")
	pid := fs.Int64("pid", 0, "monitor the running instance with this `PID`")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		return runMonitor(ctx, s, c, pos, *pid, *asJSON)
	}
}

func runMonitor(ctx context.Context, s stdio, c *command, pos []string, pid int64, asJSON bool) int {
	req, what, ok := monitorRequest(pos, pid)
	if !ok {
		return c.usageError(s, "give a TARGET or --pid PID")
	}
	f, code, ok := openMonitor(ctx, s, c, req, what)
	if !ok {
		return code
	}
	defer f.Close()
	v := &monitorView{requests: map[reqKey]time.Time{}}
	return readMonitor(ctx, s, c, f, func(rec *xpc.Dictionary) error {
		var err error
		if asJSON {
			_, err = s.out.Write(append(v.json(rec), '\n'))
		} else {
			_, err = fmt.Fprintln(s.out, v.line(rec))
		}
		return err
	})
}

// monitorRequest makes OpMonitor's request from the positional arguments
// (a TARGET, or none with a pid), and says what it monitors; ok is false
// if they do not name one thing.
func monitorRequest(pos []string, pid int64) (req *xpc.Dictionary, what string, ok bool) {
	pidSet := pid != 0 // no process has pid 0
	if len(pos) > 1 || (len(pos) == 1) == pidSet {
		return nil, "", false
	}
	req = xpc.Dict(bootstrap.KeyOp, bootstrap.OpMonitor)
	if pidSet {
		req.Set(bootstrap.KeyPID, xpc.Int64(pid))
		return req, "pid " + strconv.FormatInt(pid, 10), true
	}
	req.Set(bootstrap.KeyTarget, xpc.String(pos[0]))
	return req, pos[0], true
}

// openMonitor attaches a monitor as req asks, says so on stderr, and
// returns the socket to read records from; or, with ok false, the exit
// status.
func openMonitor(ctx context.Context, s stdio, c *command, req *xpc.Dictionary, what string) (_ *os.File, code int, ok bool) {
	f, reply, err := attachMonitor(ctx, s.xpcd, req)
	if err != nil {
		return nil, c.failed(s, what, err), false
	}
	if st, _ := reply.String(bootstrap.KeyStatus); st == bootstrap.MonitorWaiting {
		fmt.Fprintf(s.err, "Monitoring %s: not running; waiting for its next instance. Ctrl-C ends.\n", what)
	} else {
		p, _ := reply.Int64(bootstrap.KeyPID)
		fmt.Fprintf(s.err, "Monitoring %s (pid %d). Ctrl-C ends.\n", what, p)
	}
	return f, exitOK, true
}

// attachMonitor makes the socket pair, sends xpcd req with one end, and
// returns the other end (non-blocking, pollable) with xpcd's reply.
func attachMonitor(ctx context.Context, inst instance, req *xpc.Dictionary) (*os.File, *xpc.Dictionary, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socket pair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "monitor"), os.NewFile(uintptr(fds[1]), "monitor-service")
	req.Set(bootstrap.KeySocket, xpc.NewFD(theirs))
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	reply, err := adminRequest(actx, inst, req)
	cancel()
	theirs.Close()
	if err != nil {
		ours.Close()
		return nil, nil, err
	}
	return ours, reply, nil
}

// readMonitor hands emit the records that arrive on f until ctx ends
// (exit status 0), emit fails, or every holder of the socket's other end
// has let it go (the job was unloaded, or xpcd stopped: 1).
func readMonitor(ctx context.Context, s stdio, c *command, f *os.File, emit func(*xpc.Dictionary) error) int {
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, bootstrap.MonitorRecordMax+4096)
	for {
		n, err := recvRecord(f, buf)
		switch {
		case err != nil && ctx.Err() != nil:
			return exitOK
		case err != nil:
			return c.fail(s, "%v", err)
		case n == 0:
			return c.fail(s, "the monitor ended: the job was unloaded, or xpcd stopped")
		}
		obj, err := xpc.Decode(buf[:n])
		rec, _ := obj.(*xpc.Dictionary)
		if err != nil || rec == nil {
			fmt.Fprintf(s.err, "xpcctl %s: a record that does not decode: %v\n", c.name, err)
			continue
		}
		if err := emit(rec); err != nil {
			return c.fail(s, "%v", err)
		}
	}
}

// recvRecord reads one datagram from f into buf, waiting in the runtime's
// poller (so that f's read deadline ends the wait). 0 bytes and no error
// is the end: every holder of the other end has closed it.
func recvRecord(f *os.File, buf []byte) (n int, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	rerr := rc.Read(func(fd uintptr) bool {
		n, _, err = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		return err != unix.EAGAIN
	})
	if rerr != nil {
		return 0, rerr
	}
	return n, err
}

// reqKey names a request: its connection and id.
type reqKey struct {
	conn int64
	id   uint64
}

// maxPendingRequests bounds the requests remembered for their replies'
// latency; past it the oldest are forgotten.
const maxPendingRequests = 4096

// monitorView turns records into lines, matching replies with their
// requests.
type monitorView struct {
	requests map[reqKey]time.Time
}

// record is what a record says, read once.
type record struct {
	at             time.Time
	dir, kind      string
	id, replyTo    uint64
	conn, pid, uid int64
	size, fds      int64
	body           []byte
	truncated      bool
	noReply        bool
	dropped        uint64
	latency        time.Duration // a reply's; -1 if its request was not seen
}

func (v *monitorView) read(d *xpc.Dictionary) record {
	var r record
	r.at, _ = d.Date(bootstrap.KeyMonTime)
	r.dir, _ = d.String(bootstrap.KeyMonDir)
	r.kind, _ = d.String(bootstrap.KeyMonKind)
	r.id, _ = d.Uint64(bootstrap.KeyMonID)
	r.replyTo, _ = d.Uint64(bootstrap.KeyMonReplyTo)
	r.conn, _ = d.Int64(bootstrap.KeyMonConn)
	r.pid, _ = d.Int64(bootstrap.KeyMonPID)
	r.uid, _ = d.Int64(bootstrap.KeyMonUID)
	r.size, _ = d.Int64(bootstrap.KeyMonSize)
	r.fds, _ = d.Int64(bootstrap.KeyMonFDs)
	r.body, _ = d.Data(bootstrap.KeyMonBody)
	r.truncated, _ = d.Bool(bootstrap.KeyMonTruncated)
	r.noReply, _ = d.Bool(bootstrap.KeyMonNoReply)
	r.dropped, _ = d.Uint64(bootstrap.KeyMonDropped)
	r.latency = -1
	switch r.kind {
	case bootstrap.MonRequest:
		if len(v.requests) >= maxPendingRequests {
			clear(v.requests) // replies never seen: their requests are forgotten
		}
		v.requests[reqKey{r.conn, r.id}] = r.at
	case bootstrap.MonReply:
		k := reqKey{r.conn, r.replyTo}
		if t, ok := v.requests[k]; ok {
			r.latency = r.at.Sub(t)
			delete(v.requests, k)
		}
	}
	return r
}

// line is a record as one line:
//
//	21:40:01.123456 → pid 1234 request #3 52 B 0 fds { count = 1, ... }
//	21:40:01.123789 ← pid 1234 reply #3 40 B 0 fds 333µs { count = 1, ... }
func (v *monitorView) line(d *xpc.Dictionary) string {
	r := v.read(d)
	var b strings.Builder
	if r.dropped > 0 {
		fmt.Fprintf(&b, "(%d messages not shown: the monitor fell behind)\n", r.dropped)
	}
	arrow := "→"
	if r.dir == bootstrap.MonOut {
		arrow = "←"
	}
	fmt.Fprintf(&b, "%s %s pid %d %s", r.at.Format("15:04:05.000000"), arrow, r.pid, r.kind)
	switch {
	case r.kind == bootstrap.MonRequest:
		fmt.Fprintf(&b, " #%d", r.id)
	case r.kind == bootstrap.MonReply:
		fmt.Fprintf(&b, " #%d", r.replyTo)
	}
	fmt.Fprintf(&b, " %d B %d fds", r.size, r.fds)
	if r.latency >= 0 {
		fmt.Fprintf(&b, " %v", r.latency)
	}
	switch {
	case r.noReply:
		b.WriteString(" (no reply)")
	case r.truncated:
		fmt.Fprintf(&b, " (body truncated to its first %d bytes)", len(r.body))
	default:
		if text, _, err := mirroredBody(r.body, int(r.fds)); err != nil {
			fmt.Fprintf(&b, " (body does not decode: %v)", err)
		} else {
			b.WriteString(" " + text)
		}
	}
	return b.String()
}

// json is a record as one JSON object; the body is in tagged JSON.
func (v *monitorView) json(d *xpc.Dictionary) []byte {
	r := v.read(d)
	o := map[string]any{
		"time": r.at.Format(time.RFC3339Nano), "dir": r.dir, "kind": r.kind, "conn": r.conn,
		"pid": r.pid, "uid": r.uid, "size": r.size, "fds": r.fds,
	}
	switch r.kind {
	case bootstrap.MonRequest:
		o["id"] = r.id
	case bootstrap.MonReply:
		o["reply_to"] = r.replyTo
		if r.latency >= 0 {
			o["latency_ns"] = r.latency.Nanoseconds()
		}
	}
	if r.dropped > 0 {
		o["dropped"] = r.dropped
	}
	switch {
	case r.noReply:
		o["no_reply"] = true
	case r.truncated:
		o["truncated"] = true
	default:
		if _, tj, err := mirroredBody(r.body, int(r.fds)); err != nil {
			o["body_error"] = err.Error()
		} else {
			o["body"] = json.RawMessage(tj)
		}
	}
	out, _ := json.Marshal(o)
	return out
}

// mirroredBody decodes a mirrored body and returns it formatted
// (xpc.Format, on one line) and in tagged JSON. Its descriptors were not
// passed on: each stands in as /dev/null while it is decoded, and shows
// as <fd>.
func mirroredBody(body []byte, nfds int) (text string, tagged []byte, err error) {
	if len(body) == 0 {
		return "{ }", []byte("{}"), nil
	}
	var fds []int
	for range min(nfds, 253) {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		fds = append(fds, fd)
	}
	var dec xpc.Decoder
	obj, err := dec.Decode(body, fds)
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return "", nil, err
	}
	text = strings.Join(strings.Fields(xpc.Format(obj)), " ")
	for _, fd := range fds {
		text = strings.ReplaceAll(text, "<fd: "+strconv.Itoa(fd)+">", "<fd>")
	}
	tagged, err = xpc.MarshalTaggedJSON(obj)
	_ = xpc.CloseAttachments(obj)
	return text, tagged, err
}
