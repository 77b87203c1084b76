package xpcd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goxpc/xpc/internal/bootstrap"
	"golang.org/x/sys/unix"
)

// maxLinks bounds the symbolic links followed on one path, as the kernel's
// ELOOP does.
const maxLinks = 40

// errNotTrusted is what checkTrusted's refusals wrap: a path that someone
// other than the trusted owners could change.
var errNotTrusted = errors.New("path may be changed by someone not trusted")

// checkTrusted checks that nobody but owners can change what path names:
// path, every directory above it, and every symbolic link on the way (and
// what those lead to) must belong to one of owners and be writable by
// nobody else. A directory writable by others but with the sticky bit set
// (like /tmp) is accepted, since others cannot remove or rename what they
// do not own in it, and the next component must belong to an owner anyway.
// With noLinks, path itself must not be a symbolic link. A component that
// does not exist ends the walk with an error wrapping fs.ErrNotExist, once
// everything above it has passed.
func checkTrusted(path string, owners []uint32, noLinks bool) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s: not an absolute path", path)
	}
	if err := trustedInode("/", owners); err != nil {
		return err
	}
	return walkPath(path, func(next string, st *unix.Stat_t, final bool) error {
		if err := trusted(next, st, owners); err != nil {
			return err
		}
		if noLinks && final && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return fmt.Errorf("%w: %s is a symbolic link", errNotTrusted, next)
		}
		return nil
	})
}

// walkPath follows the absolute path from / as the kernel resolves it,
// calling visit with each component it reaches, lstat'ed (before a
// symbolic link is followed); final is true for path's own last
// component, reached through no link. It stops at visit's first error, or
// returns lstat's (an *fs.PathError naming the component) or readlink's.
func walkPath(path string, visit func(next string, st *unix.Stat_t, final bool) error) error {
	rest := splitPath(path)
	cur, links := "/", 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		var st unix.Stat_t
		if err := unix.Lstat(next, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: next, Err: err}
		}
		if err := visit(next, &st, len(rest) == 0 && links == 0); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return &fs.PathError{Op: "resolve", Path: path, Err: unix.ELOOP}
		}
		target, err := os.Readlink(next)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(splitPath(target), rest...)
	}
	return nil
}

func splitPath(p string) []string { return strings.Split(p, "/") }

func trustedInode(path string, owners []uint32) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	return trusted(path, &st, owners)
}

// trusted checks one inode: owned by one of owners, and writable by nobody
// else (but for a sticky directory; a symbolic link's own mode means
// nothing).
func trusted(path string, st *unix.Stat_t, owners []uint32) error {
	if !slices.Contains(owners, st.Uid) {
		return fmt.Errorf("%w: %s belongs to uid %d, want %s", errNotTrusted, path, st.Uid, ownerList(owners))
	}
	typ := st.Mode & unix.S_IFMT
	if typ == unix.S_IFLNK || st.Mode&0o022 == 0 {
		return nil
	}
	if typ == unix.S_IFDIR && st.Mode&unix.S_ISVTX != 0 {
		return nil
	}
	return fmt.Errorf("%w: %s is writable by group or others (mode %04o)", errNotTrusted, path, st.Mode&0o7777)
}

func ownerList(owners []uint32) string {
	var s []string
	for _, o := range owners {
		if o == 0 {
			s = append(s, "root")
		} else {
			s = append(s, fmt.Sprintf("uid %d", o))
		}
	}
	return strings.Join(slices.Compact(s), " or ")
}

// prepareDirs makes sure, in a root xpcd, that nobody but root can change its
// directories (bootstrap.RuleDirOwner): XPCD_ROOT, the run and state
// directories, LaunchAgents and LaunchDaemons, and every directory above them,
// must belong to root and be writable by nobody else (a sticky directory such
// as /tmp excepted), and none of the five may be a symbolic link. Otherwise a
// user who owns XPCD_ROOT could plant links that make xpcd change root's
// files, or state that xpcd would act on. The run and state directories are
// made (runMode, 0700) between two checks, so that one made by someone else in
// the meantime is caught. A state directory that cannot be made (a read-only
// file system) is not an error: the state store starts read-only without it. A
// xpcd that is not root checks nothing: it can do no more than its user can.
func prepareDirs(p bootstrap.Paths, runMode os.FileMode) error {
	if os.Geteuid() != 0 {
		return nil
	}
	mustExist := map[string]bool{}
	check := func() error {
		for _, d := range []string{p.Root, p.RunDir, p.StateDir, p.Agents, p.Daemons} {
			if d == "" {
				continue
			}
			err := checkTrusted(d, []uint32{0}, true)
			if err == nil || !mustExist[d] && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if errors.Is(err, errNotTrusted) {
				return refusedBy(bootstrap.RuleDirOwner, "%v", err)
			}
			return err
		}
		return nil
	}
	if err := check(); err != nil {
		return err
	}
	if err := os.MkdirAll(p.RunDir, runMode); err != nil {
		return err
	}
	mustExist[p.RunDir] = true
	if err := os.MkdirAll(p.StateDir, 0o700); err == nil {
		mustExist[p.StateDir] = true
	} else if !cannotWrite(err) {
		return err
	}
	return check()
}
