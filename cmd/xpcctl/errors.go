package main

import (
	"errors"
	"strings"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// failed prints why a request failed, in the one shape every command that
// talks to xpcd or a service uses, and returns exitFail:
//
//	xpcctl VERB: SUBJECT: REASON: DESCRIPTION (rule R, domain D, peer P)
//
// SUBJECT is what the command was asked about (its last argument: a
// target, a domain, a service's name), left out when it names none;
// REASON is the refusal's word as the protocol spells it (not-found,
// denied, requirement-failed, launch-failed, ...), or the connection's
// kind (invalid, interrupted) when no reason was given; then xpcd's, or
// the library's, description, and the rule, domain and peer the refusal
// names where the description does not say them. An error that is not a
// refusal (no xpcd answers, a file that does not open) is its text alone.
func (c *command) failed(s stdio, subject string, err error) int {
	why := errorText(err)
	if subject != "" {
		why = subject + ": " + why
	}
	return c.fail(s, "%s", why)
}

// lastArg is the subject of failed: the last positional argument, or "".
func lastArg(pos []string) string {
	if len(pos) == 0 {
		return ""
	}
	return pos[len(pos)-1]
}

// errorText renders err as failed shows it: a refusal or failure xpcd
// replied (an error object, with the plist errors of a refused bootstrap
// on the same line), a connection's failure with its reason, or the error
// as it is without the library's "xpc: ".
func errorText(err error) string {
	var ce *xpc.ConnError
	var re *xpc.RemoteError
	switch {
	case errors.As(err, &ce) && ce.Reason != nil:
		r := ce.Reason
		word := r.Code
		if word == "" || word == xpc.ReasonUnknown {
			word = ce.Kind.Error()
		}
		text := refusalText(word, r.Description, r.Rule, r.Domain, r.Peer)
		if ce.Err != nil {
			text += ": " + trimPrefix(ce.Err)
		}
		return text
	case errors.As(err, &re) && !errors.Is(err, xpc.ErrReplyFailed):
		return objectText(re.Object) + loadErrors(re.Object)
	}
	return trimPrefix(err)
}

// loadErrors is "; " and each plist error of a refused bootstrap that the
// description does not hold already.
func loadErrors(eo *xpc.ErrorObject) string {
	desc := eo.Description()
	var b strings.Builder
	errs, _ := eo.Array(bootstrap.KeyErrors)
	for _, e := range errs {
		if d, ok := e.(*xpc.Dictionary); ok {
			if s, err := d.String(bootstrap.KeyError); err == nil && !strings.Contains(desc, s) {
				b.WriteString("; " + s)
			}
		}
	}
	return b.String()
}

// objectText renders an error object (an error reply, a refusal) as
// refusalText does: its reason, or else its kind, then its description,
// rule, domain and peer.
func objectText(eo *xpc.ErrorObject) string {
	str := func(k string) string { s, _ := eo.String(k); return s }
	word := str(bootstrap.KeyReason)
	if word == "" {
		word = str(bootstrap.KeyKind)
	}
	return refusalText(word, eo.Description(), str(bootstrap.KeyRule), str(bootstrap.KeyDomain), str(bootstrap.KeyPeer))
}

// refusalText is how every command shows why something was refused or
// failed: "REASON: DESCRIPTION", then the rule (or the requirement
// clause), the domain and the peer the refusal names, where the
// description does not say them already:
//
//	requirement-failed: org.x.helper may be looked up only by a process that meets "uid 0": ... fails "uid 0"
//	wrong-domain: org.x.helper is a system daemon, not in user/1000; connect with WithDomain(system) (domain system)
func refusalText(reason, desc, rule, domain, peer string) string {
	var b strings.Builder
	if reason != "" {
		b.WriteString(reason + ": ")
	}
	b.WriteString(desc)
	var more []string
	for _, kv := range [...][2]string{{"rule", rule}, {"domain", domain}, {"peer", peer}} {
		if kv[1] != "" && !strings.Contains(desc, kv[1]) {
			more = append(more, kv[0]+" "+kv[1])
		}
	}
	if len(more) > 0 {
		b.WriteString(" (" + strings.Join(more, ", ") + ")")
	}
	return b.String()
}

// trimPrefix drops the library's "xpc: " prefix: xpcctl prints its own.
func trimPrefix(err error) string {
	var ce *xpc.ConnError
	if errors.As(err, &ce) {
		return strings.TrimPrefix(ce.Error(), "xpc: ")
	}
	return strings.TrimPrefix(err.Error(), "xpc: ")
}
