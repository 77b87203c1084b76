package xpcd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/goxpc/xpc/launchd"
)

// DomainSystem is the name of the system domain.
const DomainSystem = "system"

// UserDomain returns the name of uid's user domain, "user/UID".
func UserDomain(uid uint32) string { return "user/" + strconv.FormatUint(uint64(uid), 10) }

// ParseDomain returns the canonical name of a domain ("system" or
// "user/UID"; "gui/UID" is the same as "user/UID") and its owner's uid (0
// for system).
func ParseDomain(s string) (name string, uid uint32, err error) {
	if s == DomainSystem {
		return DomainSystem, 0, nil
	}
	kind, rest, ok := strings.Cut(s, "/")
	if ok && (kind == "pid" || kind == "apps") {
		return "", 0, appDomainError(s) // apps_print.go
	}
	if !ok || (kind != "user" && kind != "gui") {
		return "", 0, fmt.Errorf("domain %q: want system, user/UID or gui/UID", s)
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	if err != nil || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return "", 0, fmt.Errorf("domain %q: %q is not a uid", s, rest)
	}
	return UserDomain(uint32(n)), uint32(n), nil
}

// Target is what an administrative request names: a domain, or one job in
// it (Label not empty).
type Target struct {
	Domain string // canonical
	UID    uint32 // the domain's owner
	Label  string // "" for the whole domain
}

// String returns "DOMAIN" or "DOMAIN/LABEL".
func (t Target) String() string {
	if t.Label == "" {
		return t.Domain
	}
	return t.Domain + "/" + t.Label
}

// ParseTarget parses "system", "system/LABEL", "user/UID", "user/UID/LABEL"
// (or gui/UID...).
func ParseTarget(s string) (Target, error) {
	var dom, label string
	if strings.HasPrefix(s, DomainSystem+"/") {
		dom, label = DomainSystem, s[len(DomainSystem)+1:]
	} else if s == DomainSystem {
		dom = s
	} else {
		parts := strings.SplitN(s, "/", 3)
		dom = strings.Join(parts[:min(2, len(parts))], "/")
		if len(parts) == 3 {
			label = parts[2]
		}
	}
	name, uid, err := ParseDomain(dom)
	if err != nil {
		return Target{}, fmt.Errorf("target %q: %w", s, err)
	}
	if label != "" || strings.HasSuffix(s, "/") {
		if err := launchd.CheckLabel(label); err != nil {
			return Target{}, fmt.Errorf("target %q: %w", s, err)
		}
	}
	return Target{Domain: name, UID: uid, Label: label}, nil
}

// mayRead reports whether a caller with uid may look up names in, and read
// the jobs of, the domain owned by owner: anyone may use system; a user
// domain is its owner's and root's.
func mayRead(uid uint32, dom string, owner uint32) bool {
	return uid == 0 || dom == DomainSystem || dom == DomainAppsSystem || uid == owner
}

// mayModify reports whether a caller with uid may change the domain (load,
// unload, enable, disable, start, stop jobs): root any; a user only their
// own user domain.
func mayModify(uid uint32, dom string, owner uint32) bool {
	return uid == 0 || (dom != DomainSystem && uid == owner)
}
