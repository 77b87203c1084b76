package xpcd

import (
	"fmt"
	"path/filepath"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// A job whose program does not exist, or cannot be executed, is loaded
// (launchd loads it too), with a warning in bootstrap's reply and in
// print's "warnings" for as long as it holds: print looks again each time,
// so a program installed later clears it. The program is looked at as the
// job's user (asUser): a path that user cannot search "cannot be
// checked", which tells them nothing they could not find out themselves.

// programJob is what the program check needs of a job, taken on the loop.
type programJob struct {
	def   *launchd.Job
	dom   string
	owner uint32
}

func programJobOf(j *job) *programJob {
	return &programJob{def: j.def, dom: j.dom.name, owner: j.dom.owner}
}

// warnProgram adds the warning of pj's program, if it has one, to reply's
// bootstrap.KeyWarnings, off the loop. A print by a user of a job that is
// not theirs (a system daemon's) is not looked at: the check would be
// made with another's rights.
func (ss *session) warnProgram(reply *xpc.Dictionary, pj *programJob) {
	if reply == nil || pj == nil {
		return
	}
	if uid := ss.peer.UID; uid != 0 && (pj.dom == DomainSystem || pj.owner != uid) {
		return
	}
	id, err := jobIdent(ss.m.root, pj.dom, pj.owner, pj.def, nil)
	if err != nil {
		return // the launch fails by its rule, which print shows
	}
	w := programWarning(id, pj.def.Executable())
	if w == "" {
		return
	}
	ws, _ := reply.Get(bootstrap.KeyWarnings).(xpc.Array)
	reply.Set(bootstrap.KeyWarnings, append(ws, xpc.String(w)))
}

// programWarning says why exe, a job's program, cannot be executed by
// id, as it stands now ("program /x does not exist; launches will fail"),
// or "" if it can.
func programWarning(id *ident, exe string) string {
	if !filepath.IsAbs(exe) {
		return "" // refused at load
	}
	var w string
	if err := asUser(id, func() error {
		w = bootstrap.ProgramProblem(exe)
		return nil
	}); err != nil {
		return fmt.Sprintf("program %s cannot be checked: %v", exe, err)
	}
	return w
}
