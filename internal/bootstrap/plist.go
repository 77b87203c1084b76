package bootstrap

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// The checks xpcd makes of a job definition when it loads one into a
// domain, beyond the launchd package's validation, shared with xpcctl's
// plist lint so that the two cannot say different things of one file.
// Bootstrap and lint apply them in the same order: PlistFileProblem on the
// opened file, then the launchd package's parse; for a job that loaded,
// ProgramProblem on its executable.

// PlistFileProblem says why the job definition in the file fi describes
// may not be loaded into a domain owned by owner, by an xpcd running as
// self, or "" if it may: the file must belong to root, the owner or self,
// and be writable by nobody else (launchd's rule, RulePlistOwner: whoever
// can write a job definition can run code as its user). The reason names
// the rule.
func PlistFileProblem(fi fs.FileInfo, owner, self uint32) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if st.Uid != 0 && st.Uid != owner && st.Uid != self {
		return fmt.Sprintf("dubious ownership: owned by uid %d, want root or uid %d (rule %s)", st.Uid, owner, RulePlistOwner)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Sprintf("dubious permissions %v: writable by group or others (rule %s)", fi.Mode().Perm(), RulePlistOwner)
	}
	return ""
}

// ProgramProblem says why exe, a job's program, cannot be executed with
// the rights of the calling thread, as it stands now ("program /x does not
// exist; launches will fail"), or "" if it can. xpcd calls it as the
// job's user; a job whose program fails it is loaded (launchd loads it
// too), with the reason as a warning.
func ProgramProblem(exe string) string {
	var st unix.Stat_t
	err := unix.Stat(exe, &st)
	switch {
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
		return fmt.Sprintf("program %s does not exist; launches will fail", exe)
	case errors.Is(err, unix.EACCES):
		return fmt.Sprintf("program %s cannot be checked: its user cannot search a directory on its path; launches will fail", exe)
	case err != nil:
		return fmt.Sprintf("program %s cannot be checked: %v", exe, err)
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return fmt.Sprintf("program %s is a directory; launches will fail", exe)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Sprintf("program %s is not a regular file; launches will fail", exe)
	}
	if err := unix.Faccessat(unix.AT_FDCWD, exe, unix.X_OK, unix.AT_EACCESS); err != nil {
		return fmt.Sprintf("program %s is not executable by its user; launches will fail", exe)
	}
	return ""
}
