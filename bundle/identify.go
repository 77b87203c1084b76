package bundle

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/goxpc/xpc/codesign"
)

// Identity is who a bundle is: the key registrations are kept by.
type Identity struct {
	Identifier string // CFBundleIdentifier
	Team       string // the signed team, "" when unsigned
	// Signed: the main executable is signed by a trusted key for
	// Identifier.
	Signed bool
}

// String returns "org.example.app", or "org.example.app (team ABCDE12345)"
// when there is a team.
func (id Identity) String() string {
	if id.Team == "" {
		return id.Identifier
	}
	return id.Identifier + " (team " + id.Team + ")"
}

// Identify verifies the signature of the bundle's main executable with v
// (codesign.Verifier.Verify; the file is opened without following a
// symbolic link inside the bundle). A signature by a trusted key whose
// signed identifier is b.Identifier gives Signed true and the signed
// team. An unsigned executable gives Signed false and no error. Any other
// failure (a bad signature, an untrusted key, a signed identifier other
// than CFBundleIdentifier) is an *Error wrapping ErrBadBundle and the
// codesign error; an error opening the file is an *Error wrapping the
// file system's error.
func (b *Bundle) Identify(v *codesign.Verifier) (Identity, error) {
	id := Identity{Identifier: b.Identifier}
	if v == nil {
		return id, &Error{Path: b.Executable, Err: errors.New("no verifier")}
	}
	rel, err := filepath.Rel(b.Root, b.Executable)
	if err != nil || !filepath.IsLocal(rel) {
		return id, &Error{Path: b.Executable, Err: fmt.Errorf("%w: the executable is not inside %s", ErrBadBundle, b.Root)}
	}
	rd, err := openRoot(b.Root)
	if err != nil {
		return id, err
	}
	defer rd.close()
	f, err := rd.openFile(rel)
	if err != nil {
		return id, err
	}
	defer f.Close()
	info, err := v.Verify(f, b.Executable)
	switch {
	case errors.Is(err, codesign.ErrUnsigned):
		return id, nil
	case err != nil:
		return id, &Error{Path: b.Executable, Err: fmt.Errorf("%w: %w", ErrBadBundle, err)}
	case info.Identifier != b.Identifier:
		return id, &Error{Path: b.Executable, Err: fmt.Errorf("%w: signed for identifier %s, not CFBundleIdentifier %s", ErrBadBundle, info.Identifier, b.Identifier)}
	}
	id.Team, id.Signed = info.Team, true
	return id, nil
}
