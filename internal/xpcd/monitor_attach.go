package xpcd

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/sock"
)

// Message monitors (xpcctl monitor; docs/design/monitor.md). xpcd is not on
// the message path: it only hands a monitor's socket to the job's running
// instance, on its check-in channel, and to each instance after it as it
// checks in; the service's runtime mirrors its messages to the socket.
// xpcd keeps its own copy of the socket while the monitor lasts, and lets
// go of it when the monitor hangs up, the job is unloaded, or xpcd stops.
// (internal/xpcd/monitor.go is the memory-pressure monitor, another
// thing.)

// Limits of monitors (bootstrap.RuleMonitorLimit). Each costs the service
// a copy of every message, and xpcd a descriptor and a goroutine.
const (
	// maxMonitorsPerJob is the most monitors one job may have, root's
	// included.
	maxMonitorsPerJob = 4
	// maxMonitorsPerUser is the most monitors a user other than root may
	// have over all jobs.
	maxMonitorsPerUser = 16
)

// monitorSub is one attached monitor: xpcd's copy of its socket.
type monitorSub struct {
	job    *job
	uid    uint32
	bucket uint32
	f      *os.File  // non-blocking; closed by dropMonitor
	given  *instance // the last instance it was handed to
	gone   bool      // dropped (loop)
}

// monitorTable is the supervisor's monitors, by job. Owned by the loop.
type monitorTable struct {
	byJob map[*job][]*monitorSub
}

// mayMonitor reports whether uid may monitor the jobs of domain dom, whose
// owner is owner: root any; a user those of their own user domain.
func mayMonitor(uid uint32, dom string, owner uint32) bool {
	return uid == 0 || (dom != DomainSystem && uid == owner)
}

func monitorDenied(uid uint32, what string) *opError {
	re := refusedBy(bootstrap.RuleMonitorAccess, "uid %d may not monitor %s: only root and the domain's user may", uid, what)
	return ruleOpError(re, "monitor: %s", re.Detail)
}

// opMonitor: {"op":"monitor","target":DOMAIN/LABEL | "pid":PID,
// "socket":FD} -> {"status":"attached","pid":PID} or
// {"status":"waiting"}. Permission is checked first (for a pid, once the
// loop has found its job); then the socket must be an AF_UNIX
// SOCK_SEQPACKET socket.
func opMonitor(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	var t Target
	pid, perr := body.Int64(bootstrap.KeyPID)
	if perr != nil {
		var oe *opError
		if t, oe = parseTargetArg(body, true); oe != nil {
			return nil, nil, badRequest("monitor: %s, or a pid", oe.desc)
		}
		if !mayMonitor(ss.peer.UID, t.Domain, t.UID) {
			return nil, nil, monitorDenied(ss.peer.UID, t.String())
		}
	}
	end, _ := body.Get(bootstrap.KeySocket).(*xpc.FD)
	if end == nil || end.File() == nil {
		return nil, nil, badRequest("monitor: no socket (%s): send one end of a SOCK_SEQPACKET socket pair", bootstrap.KeySocket)
	}
	f, oe := monitorSocket(end)
	if oe != nil {
		return nil, nil, oe
	}
	if perr != nil {
		ss.ensure(t.Domain, t.UID)
	}
	sub := &monitorSub{uid: ss.peer.UID, bucket: ss.bucket, f: f}
	var reply *xpc.Dictionary
	if e := ss.do(func() { reply, oe = ss.m.attachMonitor(sub, t, pid, perr == nil) }); e != nil {
		oe = e
	}
	if oe != nil {
		f.Close()
		return nil, nil, oe
	}
	return reply, nil, nil
}

// monitorSocket returns xpcd's own copy of the monitor's socket end,
// non-blocking, or a bad request if it is not a SOCK_SEQPACKET socket.
func monitorSocket(end *xpc.FD) (*os.File, *opError) {
	fd, err := sock.DupConn(end.File())
	if err != nil {
		return nil, badRequest("monitor: the socket: %v", err)
	}
	if err := sock.CheckSeqpacket(fd); err != nil {
		unix.Close(fd)
		return nil, badRequest("monitor: the descriptor is not one end of a SOCK_SEQPACKET socket pair: %v", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, badRequest("monitor: the socket: %v", err)
	}
	return os.NewFile(uintptr(fd), "monitor"), nil
}

// attachMonitor finds the job (t, or the instance whose pid is pid when
// byPID), checks that sub's user may monitor it and has room, and
// attaches sub: at once to a running instance that has checked in, or
// else to the next instance as it checks in.
func (m *supervisor) attachMonitor(sub *monitorSub, t Target, pid int64, byPID bool) (*xpc.Dictionary, *opError) {
	if m.closing {
		// detachAll may have let go of the monitors already.
		return nil, &opError{reason: bootstrap.ReasonShuttingDown, desc: "monitor: xpcd is stopping"}
	}
	var j *job
	if byPID {
		inst := m.byPID[int(pid)]
		if inst == nil || inst.job.removed {
			return nil, notFound("monitor: pid %d is not a process xpcd launched", pid)
		}
		j = inst.job
		if !mayMonitor(sub.uid, j.dom.name, j.dom.owner) {
			return nil, monitorDenied(sub.uid, fmt.Sprintf("pid %d (%s)", pid, j.target()))
		}
	} else {
		var oe *opError
		if j, oe = m.findJob(t, sub.uid, false); oe != nil {
			return nil, oe
		}
	}
	if oe := m.monitorRoom(sub, j); oe != nil {
		return nil, oe
	}
	sub.job = j
	if m.mon.byJob == nil {
		m.mon.byJob = map[*job][]*monitorSub{}
	}
	m.mon.byJob[j] = append(m.mon.byJob[j], sub)
	m.bg.Add(1)
	go m.watchMonitor(sub)
	m.log.Info("monitor attached", "target", j.target(), "uid", sub.uid)
	if inst := j.inst; inst != nil && inst.ch != nil && len(inst.names) > 0 && inst.stopWhy == "" {
		m.giveMonitor(inst, sub)
		return xpc.Dict(bootstrap.KeyStatus, bootstrap.MonitorAttached, bootstrap.KeyPID, int64(inst.pid)), nil
	}
	return xpc.Dict(bootstrap.KeyStatus, bootstrap.MonitorWaiting), nil
}

// monitorRoom refuses sub if j, or sub's user (root aside), has as many
// monitors as allowed (bootstrap.RuleMonitorLimit).
func (m *supervisor) monitorRoom(sub *monitorSub, j *job) *opError {
	if n := len(m.mon.byJob[j]); n >= maxMonitorsPerJob {
		re := refusedBy(bootstrap.RuleMonitorLimit, "%s has %d monitors already, the limit", j.target(), n)
		return ruleOpError(re, "monitor: %s", re.Detail)
	}
	if sub.uid == 0 {
		return nil
	}
	n := 0
	for _, subs := range m.mon.byJob {
		for _, o := range subs {
			if o.uid != 0 && o.bucket == sub.bucket {
				n++
			}
		}
	}
	if n >= maxMonitorsPerUser {
		re := refusedBy(bootstrap.RuleMonitorLimit, "%s has %d monitors already, the limit", bucketName(sub.bucket), n)
		return ruleOpError(re, "monitor: %s", re.Detail)
	}
	return nil
}

// giveMonitors hands inst, which has checked in, every monitor of its job
// it does not have yet.
func (m *supervisor) giveMonitors(inst *instance) {
	for _, sub := range m.mon.byJob[inst.job] {
		if sub.given != inst {
			m.giveMonitor(inst, sub)
		}
	}
}

// giveMonitor sends inst a duplicate of sub's socket on its check-in
// channel. A send that fails loses nothing: xpcd keeps its copy for the
// next instance.
func (m *supervisor) giveMonitor(inst *instance, sub *monitorSub) {
	sub.given = inst
	fd, err := sock.DupConn(sub.f)
	if err != nil {
		return
	}
	end := xpc.NewFD(os.NewFile(uintptr(fd), "monitor"))
	msg := xpc.Dict(bootstrap.KeyOp, bootstrap.OpMonitor)
	msg.Set(bootstrap.KeySocket, end)
	if !inst.ch.send(outItem{msg: msg, fd: end}) {
		end.Close()
	}
}

// watchMonitor waits, on a goroutine of its own, for the monitor to hang
// up (it sends nothing, so a read returns only then, or once xpcd has
// closed its copy), and then has the loop drop it.
func (m *supervisor) watchMonitor(sub *monitorSub) {
	defer m.bg.Done()
	var b [64]byte
	for {
		if _, err := sub.f.Read(b[:]); err != nil {
			break
		}
	}
	m.post(func() { m.dropMonitor(sub) })
}

// dropMonitor forgets sub and closes xpcd's copy of its socket. The
// instances that have one keep mirroring until they see the hang-up
// themselves. It is idempotent.
func (m *supervisor) dropMonitor(sub *monitorSub) {
	if sub.gone {
		return
	}
	sub.gone = true
	sub.f.Close()
	subs := m.mon.byJob[sub.job]
	kept := subs[:0]
	for _, o := range subs {
		if o != sub {
			kept = append(kept, o)
		}
	}
	clear(subs[len(kept):])
	if len(kept) == 0 {
		delete(m.mon.byJob, sub.job)
	} else {
		m.mon.byJob[sub.job] = kept
	}
}

// dropMonitors drops the monitors of j (unloaded), or of every job when j
// is nil (xpcd stops).
func (m *supervisor) dropMonitors(j *job) {
	var subs []*monitorSub
	for o, ss := range m.mon.byJob {
		if j == nil || o == j {
			subs = append(subs, ss...)
		}
	}
	for _, sub := range subs {
		m.dropMonitor(sub)
	}
}
