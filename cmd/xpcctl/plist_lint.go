package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
	"github.com/spf13/pflag"
)

var plistLintCommand = &command{
	name:    "plist lint",
	args:    "[--domain DOMAIN] FILE...",
	summary: "check job plists offline, as bootstrap would",
	help: `Checks each FILE ("-" for standard input) as a job definition, offline,
with the errors and warnings 'xpcctl bootstrap' of it would give: the
launchd.plist keys and values (a dictionary with Label and Program or
ProgramArguments), the file's owner and mode for the domain, and whether
the program can be executed. Prints "FILE: OK", or "FILE: " and each
problem on its own line; warnings ("FILE: warning: ...") do not make a
file bad. Exits with status 1 if any file is bad.

Unlike plutil -lint, which accepts any property list, lint gives a plist
launchd's meaning: a dictionary without a Label is bad. A file that is no
property list at all (empty, JSON, junk) is "not a property list".

--domain chooses the domain whose rules apply: the plist must belong to
root or to the domain's user (user: you; user/UID or gui/UID: that uid;
system: root) and be writable by nobody else. The default is user, where
agents are loaded without root. The program is checked with your own
rights, not its user's as xpcd does; standard input has no owner or mode
to check. What depends on the loaded jobs (a label or service name
already taken, a domain's job limit) cannot be checked offline.`,
	setup: setupPlistLint,
}

func setupPlistLint(fs *pflag.FlagSet) runFunc {
	domain := fs.String("domain", "user", "apply the rules of `DOMAIN`: system, user, user/UID or gui/UID")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		if len(pos) == 0 {
			return c.usageError(s, "no FILE")
		}
		owner, err := lintOwner(*domain)
		if err != nil {
			return c.usageError(s, err.Error())
		}
		status := exitOK
		for _, path := range pos {
			if !lintFile(terminal{s.out}, s.in, path, owner) {
				status = exitFail
			}
		}
		return status
	}
}

// lintOwner is the uid that owns domain, for the owner rule.
func lintOwner(domain string) (uint32, error) {
	switch domain {
	case "system":
		return 0, nil
	case "user":
		return uint32(os.Geteuid()), nil
	}
	for _, p := range []string{"user/", "gui/"} {
		if rest, ok := strings.CutPrefix(domain, p); ok {
			if uid, err := strconv.ParseUint(rest, 10, 32); err == nil {
				return uint32(uid), nil
			}
		}
	}
	return 0, fmt.Errorf("--domain %q: want system, user, user/UID or gui/UID", domain)
}

// lintFile prints path's problems, or "path: OK", and reports whether
// path is good.
func lintFile(w io.Writer, stdin io.Reader, path string, owner uint32) bool {
	switch {
	case path != "-":
		stdin = nil
	case stdin == nil:
		stdin, path = strings.NewReader(""), "<stdin>"
	default:
		path = "<stdin>"
	}
	errs, warns := lintProblems(stdin, path, owner)
	for _, warn := range warns {
		fmt.Fprintf(w, "%s: warning: %s\n", path, oneLine(warn))
	}
	for _, e := range errs {
		fmt.Fprintf(w, "%s\n", oneLine(e))
	}
	if len(errs) > 0 {
		return false
	}
	fmt.Fprintf(w, "%s: OK\n", path)
	return true
}

// lintProblems checks path as bootstrap into a domain owned by owner
// does (internal/xpcd's loadPlistFile and warnProgram), by the same
// functions: the errors, each naming the file, and the warnings. With
// stdin not nil, the plist is read from it, and path only names it: it
// has no owner or mode.
func lintProblems(stdin io.Reader, path string, owner uint32) (errs, warns []string) {
	var job *launchd.Job
	var err error
	if stdin != nil {
		var data []byte
		data, err = io.ReadAll(io.LimitReader(stdin, launchd.MaxFileSize+1))
		if err == nil {
			job, err = launchd.Parse(path, data)
		}
	} else {
		// O_NONBLOCK: opening a FIFO must not wait for a writer.
		f, oerr := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if oerr != nil {
			return []string{path + ": " + openReason(oerr)}, nil
		}
		defer f.Close()
		if fi, serr := f.Stat(); serr == nil {
			// The domain's xpcd runs as root or as its owner: both
			// are owner for the rule.
			if why := bootstrap.PlistFileProblem(fi, owner, owner); why != "" {
				return []string{path + ": " + why}, nil
			}
		}
		job, err = launchd.LoadFile(f, path)
	}
	if err != nil {
		for _, e := range launchd.Errors(err) {
			errs = append(errs, e.Error())
		}
		if errs == nil {
			errs = []string{path + ": " + err.Error()}
		}
		return errs, nil
	}
	if why := bootstrap.BundleProgramProblem(job.BundleProgram, job.Program); why != "" {
		return []string{path + ": BundleProgram: " + why}, nil
	}
	for _, w := range job.Warnings {
		warns = append(warns, w.String())
	}
	if why := bootstrap.ProgramProblem(job.Executable()); why != "" {
		warns = append(warns, why)
	}
	return nil, warns
}

// openReason is why a file could not be opened, without its path.
func openReason(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}
