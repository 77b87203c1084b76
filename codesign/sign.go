package codesign

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"aead.dev/minisign"
	"golang.org/x/sys/unix"
)

// Sign signs f's contents with key, as id, and returns the signature: the
// text of a minisign signature file (prehashed, BLAKE2b-512) whose trusted
// comment is id's with the time of signing, e.g.
// "identifier=org.example.app team=ABCDE12345 timestamp=1767225600". It
// reads f through its descriptor without moving its offset, and fails if
// f changes meanwhile.
func Sign(f *os.File, key minisign.PrivateKey, id Identity) ([]byte, error) {
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("codesign: %w", err)
	}
	k, err := statFile(f)
	if err != nil {
		return nil, fmt.Errorf("codesign: %s: %w", f.Name(), err)
	}
	if !k.regular() {
		return nil, fmt.Errorf("codesign: %s: not a regular file", f.Name())
	}
	mr := minisign.NewReader(io.NewSectionReader(f, 0, k.size))
	if err := readAll(mr, f, k); err != nil {
		return nil, fmt.Errorf("codesign: %s: %w", f.Name(), err)
	}
	untrusted := "signature from key " + FormatKeyID(key.ID())
	return mr.SignWithComments(key, id.comment(time.Now()), untrusted), nil
}

// checkSignature refuses what Verify would not read as a signature.
func checkSignature(sig []byte) error {
	if len(sig) > MaxSignatureSize {
		return fmt.Errorf("codesign: signature larger than %d bytes", MaxSignatureSize)
	}
	if _, err := parseSignature(sig); err != nil {
		return fmt.Errorf("codesign: %w: %w", ErrBadSignature, err)
	}
	return nil
}

// WriteBeside writes sig, a signature from Sign, to path+Suffix, replacing
// it atomically (a temporary file renamed over it), mode 0644.
func WriteBeside(path string, sig []byte) error {
	if err := checkSignature(sig); err != nil {
		return err
	}
	name := path + Suffix
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("codesign: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, removes nothing
	_, err = tmp.Write(sig)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		return fmt.Errorf("codesign: writing %s: %w", name, err)
	}
	return nil
}

// WriteXattr stores sig, a signature from Sign, in f's extended attribute
// XattrName (which Verify prefers to a signature file beside f).
func WriteXattr(f *os.File, sig []byte) error {
	if err := checkSignature(sig); err != nil {
		return err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("codesign: %s: %w", f.Name(), err)
	}
	var xerr error
	if err := rc.Control(func(fd uintptr) { xerr = unix.Fsetxattr(int(fd), XattrName, sig, 0) }); err != nil {
		return fmt.Errorf("codesign: %s: %w", f.Name(), err)
	}
	if xerr != nil {
		return fmt.Errorf("codesign: %s: setting xattr %s: %w", f.Name(), XattrName, xerr)
	}
	return nil
}

// WriteKeyPair makes a new key pair and writes it as minisign files:
// prefix+".key", the private key, unencrypted, mode 0600 (whoever can
// read it can sign as any identity the trust directory's owners accept
// from it), and prefix+".pub", the public key, mode 0644, for trust
// directories. It never replaces an existing file.
func WriteKeyPair(prefix string) (minisign.PublicKey, error) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		return pub, fmt.Errorf("codesign: %w", err)
	}
	privText, err := priv.MarshalText()
	if err != nil {
		return pub, fmt.Errorf("codesign: %w", err)
	}
	pubText, err := pub.MarshalText()
	if err != nil {
		return pub, fmt.Errorf("codesign: %w", err)
	}
	if err := writeNew(prefix+".key", append(privText, '\n'), 0o600); err != nil {
		return pub, err
	}
	if err := writeNew(prefix+".pub", append(pubText, '\n'), 0o644); err != nil {
		os.Remove(prefix + ".key")
		return pub, err
	}
	return pub, nil
}

// writeNew creates name, which must not exist, with data and mode.
func writeNew(name string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("codesign: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode) // whatever the umask
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("codesign: writing %s: %w", name, err)
	}
	return nil
}

// ReadPrivateKey reads an unencrypted minisign private key file, such as
// WriteKeyPair writes.
func ReadPrivateKey(path string) (minisign.PrivateKey, error) {
	var key minisign.PrivateKey
	text, _, err := readSmall(path, maxKeySize)
	var bad badSource
	switch {
	case errors.Is(err, errAbsent):
		return key, fmt.Errorf("codesign: %s: %w", path, os.ErrNotExist)
	case errors.As(err, &bad):
		return key, fmt.Errorf("codesign: %s: %w", path, bad)
	case err != nil:
		return key, fmt.Errorf("codesign: %w", err)
	}
	if minisign.IsEncrypted(text) {
		return key, fmt.Errorf("codesign: %s: the key is encrypted; only unencrypted keys are supported", path)
	}
	if err := key.UnmarshalText(text); err != nil {
		return key, fmt.Errorf("codesign: %s: not a minisign private key: %w", path, err)
	}
	return key, nil
}
