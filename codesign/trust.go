package codesign

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"
	"golang.org/x/sys/unix"
)

// maxKeySize bounds a public-key file (a minisign one has about 113
// bytes).
const maxKeySize = 4096

// KeyError is an entry of the trust directory, or the directory itself,
// whose keys are not trusted, and why: a key file that does not parse, is
// not a regular file, or could be changed by someone other than root and
// the process's own user. The other keys are trusted all the same.
type KeyError struct {
	Path string // the key file, or the directory
	Err  error
}

func (e *KeyError) Error() string { return "codesign: trust: " + e.Path + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *KeyError) Unwrap() error { return e.Err }

// TrustedKey is a key of the trust directory.
type TrustedKey struct {
	ID   string // the key id, as FormatKeyID writes it
	Path string // the file it was read from
}

// FormatKeyID writes a minisign key id as Info.KeyID has it: 16
// upper-case hexadecimal digits.
func FormatKeyID(id uint64) string { return fmt.Sprintf("%016X", id) }

// trustFile is a key file as it was looked at.
type trustFile struct {
	path string
	key  fileKey
}

// trustSnapshot is the trust directory as read at one time.
type trustSnapshot struct {
	dir      fileKey     // the directory (keyAbsent: there is none)
	files    []trustFile // every *.pub in it, trusted or not
	keys     map[uint64][]minisign.PublicKey
	trusted  []TrustedKey
	skipped  []*KeyError
	sum      string // the trusted keys, to tell whether a new read changed them
	gen      uint64 // changes whenever sum does
	unstable bool   // something in it changed too recently to be sure of it
}

// loadTrust reads the trust directory dir at time now.
func loadTrust(dir string, now time.Time) *trustSnapshot {
	s := &trustSnapshot{keys: map[uint64][]minisign.PublicKey{}}
	skip := func(path string, err error) { s.skipped = append(s.skipped, &KeyError{Path: path, Err: err}) }
	dk, err := statFollow(dir)
	switch {
	case err != nil:
		skip(dir, err)
		s.unstable = true
		return s
	case dk.kind == keyAbsent:
		s.dir = dk
		return s
	}
	s.dir = dk
	if dk.mode&unix.S_IFMT != unix.S_IFDIR {
		skip(dir, errors.New("not a directory"))
		return s
	}
	if err := checkOwner(dk); err != nil {
		skip(dir, err)
		return s
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		skip(dir, err)
		s.unstable = true
		return s
	}
	var sum []string
	s.unstable = !dk.stableAt(now)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".pub") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		pub, k, err := readKey(path)
		s.files = append(s.files, trustFile{path: path, key: k})
		s.unstable = s.unstable || !k.stableAt(now)
		if err != nil {
			skip(path, err)
			continue
		}
		s.keys[pub.ID()] = append(s.keys[pub.ID()], pub)
		s.trusted = append(s.trusted, TrustedKey{ID: FormatKeyID(pub.ID()), Path: path})
		sum = append(sum, pub.String())
	}
	slices.Sort(sum)
	s.sum = strings.Join(sum, "\n")
	return s
}

// readKey reads one public-key file.
func readKey(path string) (minisign.PublicKey, fileKey, error) {
	var pub minisign.PublicKey
	text, k, err := readSmall(path, maxKeySize)
	switch {
	case errors.Is(err, errAbsent):
		return pub, k, errors.New("removed while being read")
	case err != nil:
		return pub, k, err
	}
	if err := checkOwner(k); err != nil {
		return pub, k, err
	}
	if err := pub.UnmarshalText(text); err != nil {
		return pub, k, fmt.Errorf("not a minisign public key: %w", err)
	}
	return pub, k, nil
}

// checkOwner refuses a file or directory that someone other than root and
// the process's user could change.
func checkOwner(k fileKey) error {
	if k.uid != 0 && int(k.uid) != os.Geteuid() {
		return errors.New("owned by uid " + strconv.FormatUint(uint64(k.uid), 10) + ", neither root nor this process's user")
	}
	if k.mode&0o022 != 0 {
		return fmt.Errorf("writable by group or others (mode %#o)", k.mode&0o7777)
	}
	return nil
}

// current reports whether the directory and its key files are as s saw
// them: one stat of the directory (whose mtime changes when a file is
// added, removed or renamed) and one of each key file (whose ctime
// changes when it is rewritten in place).
func (s *trustSnapshot) current(dir string) bool {
	if k, err := statFollow(dir); err != nil || k != s.dir {
		return false
	}
	for _, f := range s.files {
		if k, err := statPath(f.path); err != nil || k != f.key {
			return false
		}
	}
	return true
}

// trust returns the trust directory as it is now, reading it again only
// when it changed since it was last read, or changed too recently then.
func (v *Verifier) trust() *trustSnapshot {
	v.trustMu.Lock()
	defer v.trustMu.Unlock()
	if s := v.snap; s != nil && !s.unstable && s.current(v.dir) {
		return s
	}
	s := loadTrust(v.dir, v.now())
	if old := v.snap; old != nil && old.sum == s.sum {
		s.gen = old.gen
	} else {
		v.gen++
		s.gen = v.gen
	}
	v.snap = s
	return s
}

// TrustedKeys reads the trust directory (if it changed) and returns the
// keys it trusts, and the entries it skipped and why.
func (v *Verifier) TrustedKeys() ([]TrustedKey, []*KeyError) {
	s := v.trust()
	return slices.Clone(s.trusted), slices.Clone(s.skipped)
}
