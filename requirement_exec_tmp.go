package xpc

import (
	"os"
	"strconv"
)

// TEMPORARY: stands in for the requirement branch's Peer.exeChanged and
// Requirement.recheck until it is merged; deleted then.

// exeChanged reports whether the peer's executable is no longer the one
// it ran at connect.
func (p *Peer) exeChanged() (bool, error) {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(p.PID) + "/exe")
	if err != nil {
		return true, err
	}
	return exe != p.Exe, nil
}

// recheck is the check made before a message of p's is handled.
func (r Requirement) recheck(p *Peer) error {
	if r.IsZero() {
		return nil
	}
	if p == nil {
		return &RequirementError{Requirement: r.text, Clause: r.text, Peer: "no peer", Err: errNoPeerTmp}
	}
	if changed, err := p.exeChanged(); err == nil && !changed {
		return nil
	}
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(p.PID) + "/exe")
	if exe != p.Exe {
		return &RequirementError{Requirement: r.text, Clause: r.text, Peer: p.String() + " now " + exe}
	}
	return r.Check(p)
}

var errNoPeerTmp = os.ErrNotExist
