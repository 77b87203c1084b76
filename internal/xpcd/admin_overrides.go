package xpcd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// Administrative requests on the enable/disable overrides: print-disabled,
// remove-disabled, enable, disable. A change is replied to once it is on
// disk (overrides.go).

// print-disabled: {"op":"print-disabled","domain":D?} ->
// {"domain":D,"overrides":{LABEL:disabled},"stale":[LABEL...]}: stale
// overrides are for jobs that are not loaded or whose plist is gone.
func opPrintDisabled(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	dom, owner, oe := ss.domainArg(body)
	if oe != nil {
		return nil, nil, oe
	}
	if !mayRead(ss.peer.UID, dom, owner) {
		return nil, nil, domainDenied(ss.peer.UID, "read", dom)
	}
	var ovs []overrideState
	if e := ss.do(func() { ovs = ss.m.overridesOf(dom) }); e != nil {
		return nil, nil, e
	}
	stale := staleOverrides(ovs, owner)
	o := xpc.NewDictionary(len(ovs))
	for _, ov := range ovs {
		o.Set(ov.label, xpc.Bool(ov.disabled))
	}
	reply := xpc.Dict(bootstrap.KeyDomain, dom)
	reply.Set(bootstrap.KeyOverrides, o)
	reply.Set(bootstrap.KeyStale, strArray(sortedKeys(stale)))
	return reply, nil, nil
}

// overrideState is one override and whether the job it is for still
// exists: loaded, with its plist on disk.
type overrideState struct {
	label    string
	disabled bool
	plist    string // of the loaded job; "" if none is loaded
}

// overridesOf returns a domain's overrides with their jobs' plists (on the
// loop), and staleOverrides says which are stale (outside the loop: it
// looks at the file system).
func (m *supervisor) overridesOf(dom string) []overrideState {
	var out []overrideState
	d := m.domains[dom]
	for _, l := range sortedKeys(m.overrides[dom]) {
		o := overrideState{label: l, disabled: m.overrides[dom][l]}
		if d != nil && d.jobs[l] != nil {
			o.plist = d.jobs[l].def.Path
		}
		out = append(out, o)
	}
	return out
}

// The plists are looked at as the domain's user (owner), who named them: a
// root xpcd tells nobody whether a path they cannot see exists.
func staleOverrides(ovs []overrideState, owner uint32) map[string]string {
	stale := map[string]string{}
	var id *ident
	if owner != 0 {
		id = callerIdent(owner, owner, false)
	}
	asUser(id, func() error {
		for _, o := range ovs {
			if o.plist == "" {
				stale[o.label] = ""
				continue
			}
			if _, err := os.Stat(o.plist); errors.Is(err, fs.ErrNotExist) {
				stale[o.label] = o.plist
			}
		}
		return nil
	})
	return stale
}

// remove-disabled: {"op":"remove-disabled","domain":D?} ->
// {"removed":[LABEL...]}: the stale overrides (see print-disabled) are
// deleted, once that is on disk.
func opRemoveDisabled(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	dom, owner, oe := ss.domainArg(body)
	if oe != nil {
		return nil, nil, oe
	}
	if !mayModify(ss.peer.UID, dom, owner) {
		return nil, nil, domainDenied(ss.peer.UID, "change", dom)
	}
	if oe := ss.m.refuseReadOnly(bootstrap.OpRemoveDisabled + " " + dom); oe != nil {
		return nil, nil, oe
	}
	var ovs []overrideState
	if e := ss.do(func() { ovs = ss.m.overridesOf(dom) }); e != nil {
		return nil, nil, e
	}
	stale := staleOverrides(ovs, owner)
	var removed []string
	res := make(chan error, 1)
	if e := ss.do(func() {
		m := ss.m
		d := m.domains[dom]
		r := &overrideRequest{done: func(err error) { res <- err }}
		for _, label := range sortedKeys(stale) {
			if _, ok := m.overrides[dom][label]; !ok {
				continue
			}
			// Still stale? A job may have been loaded meanwhile.
			if d != nil && d.jobs[label] != nil && d.jobs[label].def.Path != stale[label] {
				continue
			}
			r.changes = append(r.changes, overrideChange{dom: dom, label: label, remove: true})
			removed = append(removed, label)
		}
		if len(removed) > 0 {
			m.changeOverrides(r)
		}
	}); e != nil {
		return nil, nil, e
	}
	reply := xpc.NewDictionary(1)
	reply.Set(bootstrap.KeyRemoved, strArray(removed))
	if len(removed) == 0 {
		return reply, nil, nil
	}
	return nil, waitSaved(bootstrap.OpRemoveDisabled+" "+dom, res, func() *xpc.Dictionary { return reply }), nil
}

// enable, disable: {"op":"enable"|"disable","target":DOMAIN/LABEL} ->
// {"status":"enabled"|"disabled","loaded":bool}. A label the domain does
// not know (knownLabel) is refused with not-found, and no override is
// stored for it. The override is written
// before it applies and before the reply: if it cannot be written, the
// request fails with bootstrap.ReasonIO and nothing changes. It holds across
// restarts and reloads, for a job loaded now or later. A disabled job is
// not launched (lookups of its names fail with not-found, saying it is
// disabled; KeepAlive does not restart it) but an instance already running
// is left to finish. Enabling a job that starts at load starts it.
func opEnable(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	return setEnabled(ss, body, false)
}

func opDisable(ss *session, body *xpc.Dictionary) (*xpc.Dictionary, waitFunc, *opError) {
	return setEnabled(ss, body, true)
}

func setEnabled(ss *session, body *xpc.Dictionary, disable bool) (*xpc.Dictionary, waitFunc, *opError) {
	t, oe := ss.targetArg(body, true)
	if oe != nil {
		return nil, nil, oe
	}
	if !mayModify(ss.peer.UID, t.Domain, t.UID) {
		return nil, nil, domainDenied(ss.peer.UID, "change", t.Domain)
	}
	op, status := bootstrap.OpEnable, "enabled"
	if disable {
		op, status = bootstrap.OpDisable, "disabled"
	}
	if oe := ss.m.refuseReadOnly(op + " " + t.String()); oe != nil {
		return nil, nil, oe
	}
	if oe := ss.knownLabel(t, disable); oe != nil {
		return nil, nil, oe
	}
	res := make(chan error, 1)
	loaded := false                  // written on the loop before res
	bucket := ss.m.buckets.of(t.UID) // the user database, off the loop
	if e := ss.do(func() {
		m := ss.m
		if m.userMode && m.domains[t.Domain] == nil {
			_, oe = m.served(t.Domain, t.UID)
			return
		}
		if oe = m.roomForOverride(t, bucket); oe != nil {
			return
		}
		m.changeOverrides(&overrideRequest{
			changes: []overrideChange{{dom: t.Domain, label: t.Label, disabled: disable}},
			done: func(err error) {
				if err == nil {
					loaded = m.applyDisabled(t.Domain, t.Label)
				}
				res <- err
			},
		})
	}); e != nil {
		return nil, nil, e
	}
	if oe != nil {
		return nil, nil, oe
	}
	return nil, waitSaved(op+" "+t.String(), res, func() *xpc.Dictionary {
		return xpc.Dict(bootstrap.KeyStatus, status, bootstrap.KeyLoaded, loaded)
	}), nil
}

// waitSaved waits for a change of the overrides to be written and
// committed (res), and replies with reply(), or with bootstrap.ReasonIO
// naming the file and the cause: then nothing changed.
func waitSaved(what string, res <-chan error, reply func() *xpc.Dictionary) waitFunc {
	return func(ctx context.Context) (*xpc.Dictionary, *opError) {
		select {
		case err := <-res:
			if err != nil {
				return nil, &opError{reason: bootstrap.ReasonIO, desc: fmt.Sprintf("%s: %v; nothing changed", what, err)}
			}
			return reply(), nil
		case <-ctx.Done():
			return nil, &opError{reason: bootstrap.ReasonIO, desc: fmt.Sprintf("%s: gave up waiting for the state to be written: %v", what, ctx.Err())}
		}
	}
}

// refuseReadOnly refuses a change of the overrides (what) when the state
// is read-only.
func (m *supervisor) refuseReadOnly(what string) *opError {
	why := m.stateReadOnly()
	if why == "" {
		return nil
	}
	return &opError{reason: bootstrap.ReasonReadOnlyState,
		desc: fmt.Sprintf("%s: refused, the state is read-only (%s): the change could not be kept", what, why)}
}
