package xpcd

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/codesign"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// bundleRead is what a registration takes from its bundle.
type bundleRead struct {
	root    string
	id      bundle.Identity
	def     *launchd.Job // the job: the main app's, or the agent's or daemon's plist
	program string       // its program, absolute
	digest  string       // the program's SHA-256 (daemons only), hexadecimal
	// jobDigest is the job's Fingerprint (daemons only) without its
	// Program, which is the bundle's path: what else it runs with.
	jobDigest string
}

// readRegistration reads the bundle at root with who's rights (never
// xpcd's) and returns the job of its service kind/plist. For a daemon it
// also checks that nobody but root can change the program
// (bootstrap.RuleProgramOwner: a daemon runs in the system domain) and
// takes its digest. A bundle or a plist that does not exist is
// ReasonNotFound; a malformed one ReasonBadRequest; the identity or the
// program refused, a rule.
func readRegistration(who *ident, trust *codesign.Verifier, root, kind, plist string) (*bundleRead, *opError) {
	if trust == nil {
		trust = codesign.Default()
	}
	var rd *bundleRead
	var oe *opError
	// (Asked here: on the thread that takes who's identity, Geteuid is
	// who's.)
	asRoot := os.Geteuid() == 0
	err := asUser(who, func() error {
		rd, oe = readBundleAs(trust, root, kind, plist, asRoot)
		return nil
	})
	if err != nil {
		return nil, &opError{reason: bootstrap.ReasonDenied, desc: fmt.Sprintf("bundle %s: cannot take uid %d's identity to read it: %v", root, who.uid, err)}
	}
	return rd, oe
}

// readBundleAs is readRegistration's work, on the thread that has taken
// the user's identity.
// asRoot: xpcd runs as root, and a daemon's program must be root's.
func readBundleAs(trust *codesign.Verifier, root, kind, plist string, asRoot bool) (*bundleRead, *opError) {
	b, err := bundle.Read(root)
	if err != nil {
		if errors.Is(err, bundle.ErrNotBundle) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, notFound("%v", err)
		}
		return nil, badRequest("%v", err)
	}
	id, err := b.Identify(trust)
	if err != nil {
		re := refusedBy(bootstrap.RuleAppIdentity, "bundle %s: %v", root, err)
		return nil, ruleOpError(re, "%s", re.Detail)
	}
	rd := &bundleRead{root: b.Root, id: id}
	switch kind {
	case bootstrap.AppKindMain:
		rd.def = &launchd.Job{Label: b.Identifier, Program: b.Executable, RunAtLoad: true, Path: b.Root}
	case bootstrap.AppKindAgent, bootstrap.AppKindDaemon:
		lp, have := b.Agent(plist), b.Agents
		where := "Library/LaunchAgents"
		if kind == bootstrap.AppKindDaemon {
			lp, have, where = b.Daemon(plist), b.Daemons, "Library/LaunchDaemons"
		}
		if lp == nil {
			return nil, notFound("%s", missingPlist(b, where, plist, have))
		}
		def := *lp.Job
		def.Path = lp.Path
		rd.def = &def
	default:
		return nil, badRequest("unknown service kind %q (want %s, %s or %s)", kind, bootstrap.AppKindMain, bootstrap.AppKindAgent, bootstrap.AppKindDaemon)
	}
	rd.program = rd.def.Executable()
	if kind != bootstrap.AppKindDaemon {
		return rd, nil
	}
	if asRoot {
		if err := checkTrusted(rd.program, []uint32{0}, false); err != nil {
			if errors.Is(err, errNotTrusted) {
				re := refusedBy(bootstrap.RuleProgramOwner, "daemon program %s: %v", rd.program, err)
				return nil, ruleOpError(re, "%s", re.Detail)
			}
			return nil, notFound("daemon program %s: %v", rd.program, unwrapPath(err))
		}
	}
	f, err := os.OpenFile(rd.program, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, notFound("daemon program %s: %v", rd.program, unwrapPath(err))
	}
	defer f.Close()
	sum, err := trust.Digest(f)
	if err != nil {
		return nil, badRequest("daemon program %s: %v", rd.program, err)
	}
	rd.digest = hex.EncodeToString(sum[:])
	job := *rd.def
	job.Program = ""
	rd.jobDigest = job.Fingerprint()
	return rd, nil
}

// missingPlist says that b has no plist in its directory where
// (Library/LaunchAgents or Library/LaunchDaemons), naming the directory as
// b's layout has it and the plists that are there, so that a name given
// without ".plist", or with a typo, shows at once.
func missingPlist(b *bundle.Bundle, where, plist string, have []*bundle.LaunchPlist) string {
	if b.Layout == bundle.Contents {
		where = "Contents/" + where
	}
	msg := fmt.Sprintf("bundle %s (%s) has no %s/%s", b.Root, b.Identifier, where, plist)
	if len(have) == 0 {
		return msg + " (it has no plist there)"
	}
	const shown = 8
	names := make([]string, 0, shown)
	for i, lp := range have {
		if i == shown {
			names = append(names, fmt.Sprintf("and %d more", len(have)-shown))
			break
		}
		names = append(names, lp.Name)
	}
	return msg + " (it has: " + strings.Join(names, ", ") + ")"
}

// bundleGone reports, reading as who, whether the bundle at root, or the
// plist a kind/plist service names in it, is gone: what makes a
// registration stale. It verifies no signature and hashes nothing, so
// that listing many registrations stays cheap.
func bundleGone(who *ident, root, kind, plist string) bool {
	gone := false
	err := asUser(who, func() error {
		b, err := bundle.Read(root)
		switch {
		case err != nil:
			gone = errors.Is(err, bundle.ErrNotBundle) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
		case kind == bootstrap.AppKindAgent:
			gone = b.Agent(plist) == nil
		case kind == bootstrap.AppKindDaemon:
			gone = b.Daemon(plist) == nil
		}
		return nil
	})
	return err == nil && gone
}

// checkPlistName refuses a plist name that is not a file name.
func checkPlistName(name string) *opError {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return badRequest("%q is not a plist file name", name)
	}
	return nil
}
