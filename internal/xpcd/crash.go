package xpcd

import (
	"strings"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// Crash records. An instance that exits with a status other than 0, or is
// killed by a signal xpcd did not send (exitWhyOf), crashed: xpcd logs it
// at error level, with the status or signal and the last lines of its
// standard error (output.go keeps them), in its own log, the job's log and
// the journal. The record waits, at most crashOutputWait and off the
// loop, for the output readers to reach the end of the output, so that
// the process's last words come before it.

// crashOutputWait bounds how long a crash record waits for the output.
const crashOutputWait = time.Second

// crashed reports whether why is a crash's.
func crashed(why exitWhy) bool {
	return why.code == bootstrap.ReasonSignaled || (why.code == bootstrap.ReasonExited && why.status != 0)
}

// noteCrash writes the crash record of inst, if why is a crash.
func (m *supervisor) noteCrash(inst *instance, why exitWhy) {
	if !crashed(why) {
		return
	}
	out, log, logs := inst.out, m.log, m.logs
	dom, label, pid := logDomain(inst.job.dom.name, inst.job.dom.owner), inst.def.Label, inst.pid
	target := inst.job.target()
	go func() {
		var tail []string
		if out != nil {
			tail = out.lastErr(crashOutputWait)
		}
		text := crashText(why, tail)
		log.Error("crashed", "target", target, "pid", pid, "why", why.desc, "stderr", strings.Join(tail, "\n"))
		logs.record(dom, label, logRecord{at: time.Now(), pid: pid, stream: "xpcd", prio: prioErr, text: text})
	}()
}

// crashText is a crash record's text: what happened, then the last lines
// of standard error.
func crashText(why exitWhy, tail []string) string {
	var b strings.Builder
	b.WriteString("crashed: ")
	b.WriteString(why.desc)
	if len(tail) > 0 {
		b.WriteString("; the last lines of its standard error:")
		for _, l := range tail {
			b.WriteString("\n  ")
			b.WriteString(l)
		}
	}
	return b.String()
}
